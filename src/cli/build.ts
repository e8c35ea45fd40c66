import { buildImage, type BuildEvent } from "../image/build.ts";
import { formatBytes, loadAndPlan, type Command } from "./context.ts";

export const buildCommand: Command = {
  name: "build",
  summary: "build the image the config describes",
  usage: `layerpack build [config] [-o PATH] [-q]

  -o, --output PATH  override output.path
  -q, --quiet        print only the output path`,
  maxPositionals: 1,
  options: { output: { type: "string", short: "o" }, quiet: { type: "boolean", short: "q" } },
  async run({ io, values, positionals }) {
    const { spec, closure, plan, configDir } = await loadAndPlan(io, positionals[0], { output: values.output as string | undefined });
    const started = performance.now();
    const onEvent = values.quiet
      ? undefined
      : (e: BuildEvent) => {
          if (e.type === "layer-done") io.err(`layer ${e.index + 1}/${e.count}: ${e.blob.digest.slice(7, 19)} ${formatBytes(e.blob.size)}\n`);
        };
    const result = await buildImage({ spec, closure, plan, configDir, onEvent });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    if (!values.quiet) {
      const bytes = result.layers.reduce((n, l) => n + l.size, 0);
      io.err(`built ${result.repoTag} (${result.layers.length} layers, ${formatBytes(bytes)}, ${seconds} s), image id ${result.imageId}\n`);
    }
    io.out(`${result.output}\n`);
    return 0;
  },
};
