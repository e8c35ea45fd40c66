import { buildResolved } from "../image/multi-platform.ts";
import { withPushHost } from "../registry/auth.ts";
import { parseReference } from "../registry/reference.ts";
import { formatBytes } from "../util/format.ts";
import { jsonLine } from "./events.ts";
import { LayerpackError } from "../errors.ts";
import { transportOf } from "../oci/name.ts";
import { pushFrom } from "./push-from.ts";
import { cacheDirFromOptions, lazyCacheFromOptions, cacheOptions, cacheSourcesOption, loadAndPlan, tagOption, UsageError, warn, withTags, type Command } from "./context.ts";
import { jobsOption } from "./build.ts";
import { Progress, progressMode } from "./progress.ts";

export const pushCommand: Command = {
  name: "push",
  usage: `layerpack push [config] [--to REGISTRY/NAME[:TAG]] [--tag T]... [--insecure] [-q | --json] [--cache-dir DIR | --no-cache] [-j N] [--cache-from REF]... [--no-cache-from]
       layerpack push --from IMAGE --to REGISTRY/NAME[:TAG] [--tag T]... [--insecure] [-q | --json] [--cache-dir DIR | --no-cache]

      --from IMAGE      push this existing image instead of building one: docker-archive:PATH, oci:DIR[:REF],
                        oci-archive:PATH[:REF], docker://HOST/NAME[:TAG|@DIGEST], or a plain path; without a tag in
                        --to or --tag, its own tags
      --to REF          where to push (default: output.ref of a config with output.format registry); without a
                        tag, the image's tags (tag, tags) are pushed
      --insecure        plain HTTP to the --to registry only (registries on 127.0.0.1/localhost are reached over HTTP
                        without it); cache sources and a --from image on other registries keep HTTPS
      --tag T           push under tag T instead of the config's tag(s); repeat for several
  -q, --quiet           print only the pushed references with the manifest digest
      --json            print build and push events as JSON lines
      --cache-dir DIR   layer cache; unchanged layers are neither rebuilt nor uploaded again
      --no-cache        build every layer into a temporary cache, removed afterwards
  -j, --jobs N          layers built at once (default: the number of cores)
      --cache-from REF  reuse layers whose cache record REF (docker://HOST/NAME:TAG or oci:DIR[:REF]) holds, without reading them;
                        repeat for several; the push target's own tag is always one (see cache.from)
      --no-cache-from   no cache sources at all (not the config's cache.from, nor the target's tag)
Credentials: LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD, else the auth files in this order:
REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json
(auths, credHelpers, credsStore); they are never printed.`,
  maxPositionals: 1,
  options: { from: { type: "string" }, to: { type: "string" }, insecure: { type: "boolean" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" }, ...tagOption, ...cacheOptions },
  async run({ io, values, positionals, signal }) {
    const given = values.to as string | undefined;
    // docker://HOST/NAME:TAG, as skopeo and the image names of --from, --cache-from and base: write it, is the
    // registry reference itself; a layout or archive is no push target (oci:out read as the Docker Hub repository
    // "oci" with the tag "out").
    const to = given?.startsWith("docker://") ? given.slice("docker://".length) : given;
    const transport = to === undefined ? undefined : transportOf(to);
    if (transport !== undefined) {
      throw new UsageError(`--to ${given}: push sends to a registry (--to REGISTRY/NAME[:TAG], or docker://REGISTRY/NAME[:TAG]), not to ${transport}:; to write the image to a file or directory, run build with output.format docker-archive, oci-archive or oci-layout and -o PATH`);
    }
    // A bad reference is refused before any work.
    let target: ReturnType<typeof parseReference> | undefined;
    try {
      target = to !== undefined ? parseReference(to) : undefined;
    } catch (err) {
      // A malformed --to is a usage error (exit 2), like any other bad argument.
      if (err instanceof LayerpackError) throw new UsageError(`--to: ${err.message}`);
      throw err;
    }
    // A tag in --to wins over every other: --tag beside it would be dropped without a word.
    const tagged = Array.isArray(values.tag) ? values.tag.filter((t) => t !== target?.tag) : [];
    if (target?.tag !== undefined && tagged.length > 0) {
      throw new UsageError(`--to ${given} names the tag ${target.tag}, and --tag ${tagged[0]} another; give the tags in one place (--to without a tag and --tag for each, or one --to per push)`);
    }
    if (typeof values.from === "string") {
      if (positionals.length > 0) throw new UsageError("give either a config to build or --from IMAGE, not both");
      if (target === undefined) throw new UsageError("push --from: give --to REGISTRY/NAME[:TAG]");
      const given = withTags({ tags: [] as string[] }, values).tags;
      const result = await pushFrom({
        from: values.from,
        to: target,
        tags: given,
        cwd: io.cwd,
        env: withPushHost(io.env, target.registry),
        insecure: Boolean(values.insecure),
        ...(values.json ? { onEvent: (e) => io.out(jsonLine(e)) } : {}),
        // Mount hints kept in the cache directory, as for a build's push (nothing is built: no cache is opened).
        ...(values["no-cache"] ? {} : optionalCacheDir(io, values)),
        signal,
      });
      const refs = result.references.map((r) => `${r}@${result.digest}`).join("\n");
      if (values.json) io.out(jsonLine({ type: "pushed", references: result.references, digest: result.digest, uploaded: result.uploaded, uploadedBytes: result.uploadedBytes, mounted: result.mounted, existing: result.existing }));
      else {
        // As a build's push: the summary on stderr, the references on stdout, for scripts.
        if (!values.quiet) io.err(`pushed ${result.references.join(", ")}: ${result.uploaded} blobs uploaded (${formatBytes(result.uploadedBytes)}), ${result.mounted} mounted, ${result.existing} already there; manifest ${result.digest}\n`);
        io.out(`${refs}\n`);
      }
      return 0;
    }
    // Options first, before a TS config's code runs: a usage error is exit 2 at once.
    const concurrency = jobsOption(values.jobs);
    const cacheFrom = cacheSourcesOption(values);
    withTags({}, values);
    const openCache = lazyCacheFromOptions(io, values);
    // A base image on the registry pushed to is read with the push's credentials (auth.ts).
    const loaded = await loadAndPlan(io, positionals[0], { cache: openCache, signal, ...(target ? { env: withPushHost(io.env, target.registry) } : {}) });
    const cache = openCache();
    const output = loaded.spec.output;
    const ref = to ?? (output.format === "registry" ? output.ref : undefined);
    if (ref === undefined) throw new UsageError("give --to REGISTRY/NAME[:TAG], or set output.format: registry and output.ref in the config");
    const insecure = Boolean(values.insecure) || (output.format === "registry" && output.insecure === true);
    const spec = { ...withTags(loaded.spec, values), output: { format: "registry" as const, ref, ...(insecure ? { insecure } : {}) } };
    const progress = new Progress(io, progressMode(io, values));
    progress.start();
    const result = await buildResolved({
      spec,
      closure: loaded.closure,
      plan: loaded.plan,
      configDir: loaded.configDir,
      inputs: loaded.inputs,
      cache,
      concurrency,
      cacheFrom,
      onEvent: progress.event,
      env: io.env,
      signal,
      config: loaded,
    }, loaded.platforms);
    progress.summary(result);
    if (!values.json) for (const warning of result.warnings ?? []) warn(io, warning);
    return 0;
  },
};

/** The cache directory for push --from's mount hints, when there is one (no home directory: no hints). */
function optionalCacheDir(io: Parameters<typeof cacheDirFromOptions>[0], values: Parameters<typeof cacheDirFromOptions>[1]): { cacheDir?: string } {
  try {
    return { cacheDir: cacheDirFromOptions(io, values) };
  } catch {
    return {};
  }
}
