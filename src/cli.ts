/**
 * The command line: parses arguments, runs the stages, prints. The only module that decides exit codes.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { LayerpackError, SpecError } from "./errors.ts";
import { loadSpec } from "./spec/load.ts";
import { resolveClosure } from "./store/closure.ts";
import { planLayers } from "./plan/index.ts";
import { planToJson, planToYaml } from "./plan/serialize.ts";
import { buildImage, type BuildEvent } from "./image/build.ts";

const USAGE = `Usage: layerpack <command> [config] [options]

Commands:
  build [config]     build the image the config describes
  plan [config]      print the layer plan (YAML; --json for JSON)

Options:
  -c, --config FILE  config file (default: image.config.{ts,mts,js,mjs,yaml,yml,json}, .layerpackrc*,
                     package.json#layerpack in the current directory)
  -o, --output PATH  override output.path
      --json         plan: print JSON instead of YAML
  -q, --quiet        build: print only the output path
  -h, --help         show this help
  -V, --version      show the version
`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  cwd: string;
  env: Record<string, string | undefined>;
}

const defaultIo = (): Io => ({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  cwd: process.cwd(),
  env: process.env,
});

function formatError(err: unknown): string {
  if (!(err instanceof LayerpackError)) return `layerpack: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`;
  let text = `layerpack: ${err.message}\n`;
  // Causes that add information (an errno message not already quoted) are shown below the message.
  let cause = err.cause;
  while (cause instanceof Error && !(err instanceof SpecError)) {
    if (!err.message.includes(cause.message)) text += `  caused by: ${cause.message}\n`;
    cause = cause.cause;
  }
  return text;
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

async function load(configArg: string | undefined, io: Io, outputOverride?: string) {
  const loaded = await loadSpec({ cwd: io.cwd, configPath: configArg, env: io.env });
  const spec = outputOverride ? { ...loaded.config, output: { ...loaded.config.output, path: outputOverride } } : loaded.config;
  const closure = await resolveClosure(spec, { configDir: loaded.configDir });
  const plan = planLayers(spec, closure);
  return { ...loaded, spec, closure, plan };
}

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        output: { type: "string", short: "o" },
        json: { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (err) {
    io.err(`layerpack: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    io.out(`layerpack ${pkg.version}\n`);
    return 0;
  }
  const [command, configPositional, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    io.out(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (rest.length > 0 || (configPositional && values.config)) {
    io.err(`layerpack: too many arguments\n\n${USAGE}`);
    return 2;
  }
  const configArg = values.config ?? configPositional;
  try {
    switch (command) {
      case "plan": {
        const { plan } = await load(configArg, io, values.output);
        io.out(values.json ? planToJson(plan) : planToYaml(plan));
        return 0;
      }
      case "build": {
        const { spec, closure, plan, configDir } = await load(configArg, io, values.output);
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
      }
      default:
        io.err(`layerpack: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    io.err(formatError(err));
    return 1;
  }
}
