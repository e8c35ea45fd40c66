import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildResolved } from "../image/multi-platform.ts";
import { collectStale, isStale, tempName } from "../util/temp.ts";
import { BuildError } from "../errors.ts";
import { cacheSourcesOption, lazyCacheFromOptions, cacheOptions, loadAndPlan, tagOption, UsageError, warn, withTags, type Command } from "./context.ts";
import { Progress, progressMode } from "./progress.ts";

export const buildCommand: Command = {
  name: "build",
  usage: `layerpack build [config] [-o PATH] [--tag T]... [-q | --json] [--cache-dir DIR | --no-cache] [-j N]
                       [--cache-from REF]... [--no-cache-from] [--previous FILE]

  -o, --output PATH      override output.path; - writes the archive (docker or OCI, as output.format says) to standard output (a pipe)
  -q, --quiet            print only the output path
      --tag T            tag the image T instead of the config's tag(s); repeat for several
      --json             print build events as JSON lines
      --cache-dir DIR    layer cache (default $LAYERPACK_CACHE_DIR, $XDG_CACHE_HOME/layerpack, ~/.cache/layerpack)
      --no-cache         build every layer and stream it into the output; the cache is neither read nor written
  -j, --jobs N           layers built at once (default: the number of cores)
      --cache-from REF   reuse layers whose cache record REF (docker://HOST/NAME:TAG or oci:DIR[:REF], pushed by layerpack) holds:
                         fetched instead of compressed here (taken only if it unpacks to the tar of this host's store); repeatable
      --no-cache-from    ignore cache sources, the config's cache.from included
      --previous FILE    sticky plan: keep this plan file's grouping where still valid (overrides layers.previous)`,
  maxPositionals: 1,
  options: { output: { type: "string", short: "o" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" }, previous: { type: "string" }, ...tagOption, ...cacheOptions },
  async run({ io, values, positionals, signal }) {
    if (values.output === "") throw new UsageError("-o needs a path, or - for standard output");
    // Every option is checked before the config is loaded (a TS config runs code): a usage error is exit 2 at once.
    const concurrency = jobsOption(values.jobs);
    const cacheFrom = cacheSourcesOption(values);
    withTags({}, values);
    if (values.output === "-" && io.stdoutIsTTY) throw new UsageError("-o -: standard output is a terminal; pipe it (layerpack build -o - | podman load) or give a file");
    const openCache = lazyCacheFromOptions(io, values);
    const loaded = await loadAndPlan(io, positionals[0], { output: values.output as string | undefined, cache: openCache, previous: values.previous as string | undefined, signal });
    const { closure, plan, configDir, inputs } = loaded;
    const cache = openCache();
    const toStdout = loaded.spec.output.path === "-";
    // A docker archive's SBOMs are files beside it (an OCI archive holds them inside), and standard output has no beside.
    if (toStdout && loaded.spec.sbom !== undefined && loaded.spec.output.format === "docker-archive") {
      throw new UsageError("-o -: sbom: writes its files beside a docker archive, and standard output has no beside; give -o FILE, or output.format: oci-archive, which holds them inside");
    }
    // Again for output.path "-" in the config itself (-o - was checked before loading).
    if (toStdout && io.stdoutIsTTY) throw new UsageError("-o -: standard output is a terminal; pipe it (layerpack build -o - | podman load) or give a file");
    // The archive is written with positioned writes (headers after their data): to a temp file, then streamed out.
    // What a killed stream left (SIGKILL, a crash: the archive, or the temp file it was being written as) is the
    // size of an image: collected by the next one.
    if (toStdout) collectStale(os.tmpdir(), (n) => /^\.?layerpack-stdout-/.test(n) && isStale(n));
    const temp = toStdout ? path.join(os.tmpdir(), `${tempName("layerpack-stdout")}.tar`) : undefined;
    const tagged = withTags(loaded.spec, values);
    const spec = temp ? { ...tagged, output: { ...tagged.output, path: temp } } : tagged;
    const progress = new Progress(io, progressMode(io, values), { stdoutTaken: toStdout });
    progress.start();
    try {
      const outputLabel = typeof values.output === "string" && !toStdout ? { outputLabel: `-o ${values.output}` } : {};
      const result = await buildResolved({ spec, closure, plan, configDir, inputs, cache, concurrency, cacheFrom, onEvent: progress.event, env: io.env, signal, config: loaded, ...outputLabel }, loaded.platforms);
      for (const warning of result.warnings ?? []) warn(io, warning);
      if (temp) {
        await io.pipeOut(temp, signal).catch((err: NodeJS.ErrnoException) => {
          if (signal?.aborted) throw err;
          if (err.code === "EPIPE") throw new BuildError("-o -: the reading end of standard output closed before the whole archive was written to it");
          throw new BuildError(`-o -: writing the archive to standard output failed: ${err.message}`, { cause: err });
        });
        progress.summary({ ...result, output: "-" });
      } else progress.summary(result);
    } finally {
      if (temp) fs.rmSync(temp, { force: true });
    }
    return 0;
  },
};

export function jobsOption(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--jobs must be a whole number of at least 1, not ${String(value)}`);
  return n;
}
