/**
 * Load, resolve and plan: the stages before execution, as one call for the commands and watch mode. Each stage
 * stays a separate function over plain data; this only wires them with the options they share.
 */
import * as path from "node:path";
import * as fs from "node:fs";
import { loadSpec, type LoadResult } from "./config/load.ts";
import { locateConfigError } from "./config/format.ts";
import { resolveClosure } from "./store/closure.ts";
import { planLayers } from "./plan/index.ts";
import { previousPlanFor } from "./plan/plan-file.ts";
import { memoPlan, planKey } from "./plan/memo.ts";
import type { LayerCache } from "./cache/cache.ts";
import { heldByBase, resolveBase } from "./image/base.ts";
import type { PlatformBuild } from "./image/multi-platform.ts";
import { specPlatform } from "./oci/platform.ts";
import { transportOf } from "./oci/name.ts";
import { platformSpecs } from "./config/platforms.ts";
import { planPlatforms } from "./plan/platforms.ts";
import { planFingerprint } from "./plan/fingerprint.ts";
import { sha256Digest } from "./util/digest.ts";
import { aboutConfigKey, BuildError, LayerpackError, PlanError } from "./errors.ts";
import { compressedArchiveName, type ImageSpec } from "./config/schema.ts";
import type { Closure } from "./store/types.ts";
import { registryEnv } from "./registry/output.ts";

export interface PipelineOptions {
  cwd: string;
  configPath?: string | undefined;
  env: Record<string, string | undefined>;
  /** Overrides output.path (relative to cwd). */
  output?: string | undefined;
  /**
   * Remembers scan results and plans between runs. A function is called once the config is found and loaded (a
   * command run where there is no config creates no cache directory); it may be called again and must then return
   * the same cache.
   */
  cache?: LayerCache | (() => LayerCache | undefined) | undefined;
  /** Previous plan file for sticky planning (relative to cwd); default: the config's layers.previous. */
  previous?: string | undefined;
  /** Problems that did not stop the stages, for the caller to show. */
  onWarning?: ((message: string) => void) | undefined;
  /** Called once the config is loaded, before anything it names is read (watch takes its inputs' stamps there). */
  afterLoad?: ((loaded: { path: string; dependencies: readonly string[] }) => void) | undefined;
  /** Stops loading a TS/JS config (Ctrl-C; the stages after it are quick or take their own signal). */
  signal?: AbortSignal | undefined;
}

/** Load and resolve: the spec (output.path overridden if asked) and its closure. */
export async function loadResolve(o: PipelineOptions) {
  const loaded = await loadSpec({ cwd: o.cwd, configPath: o.configPath, env: o.env, signal: o.signal });
  for (const w of loaded.warnings) o.onWarning?.(w);
  o.afterLoad?.(loaded);
  // `-o -` is standard output, not a file named "-".
  const compressed = o.output ? compressedArchiveName(loaded.config.output.format, o.output) : undefined;
  if (compressed !== undefined) throw new LayerpackError(`-o ${o.output}: ${compressed}`);
  if (o.output) checkOutputOverride(o.output, loaded.config.output.format);
  const spec = o.output ? { ...loaded.config, output: { ...loaded.config.output, path: o.output === "-" ? "-" : path.resolve(o.cwd, o.output) } } : loaded.config;
  const scanMemo = cacheOf(o)?.scanMemo();
  const closure = await located({ loaded, spec, platform: 0 }, async () => {
    checkSources(spec, loaded.configDir);
    // With platforms, the first platform's closure (loadResolvePlan resolves the others).
    return resolveClosure(platformSpecs(spec)[0]!, { configDir: loaded.configDir, ...(scanMemo ? { scanMemo } : {}), ...(o.onWarning ? { onWarning: o.onWarning } : {}) });
  });
  return { ...loaded, spec, closure };
}

/** The cache the options give, opened now if it is given as a function (PipelineOptions.cache). */
const cacheOf = (o: PipelineOptions): LayerCache | undefined => (typeof o.cache === "function" ? o.cache() : o.cache);

/** `-o` where the config's output cannot go: a registry push has no file, and a layout is a directory, no stream. */
function checkOutputOverride(output: string, format: ImageSpec["output"]["format"]): void {
  // oci:DIR and the like name images for skopeo, inspect and diff: as a path it is a file of that name, never a layout.
  const transport = transportOf(output);
  if (transport !== undefined) {
    throw new LayerpackError(`-o ${output}: -o takes a path, and ${transport}: is how image names are written (skopeo, inspect, diff); for ${transport === "oci" ? "an OCI layout set output.format: oci-layout" : "another format set output.format"} and give -o the path alone (./${output} for a file of that very name)`);
  }
  if (format === "registry") throw new LayerpackError(`-o ${output}: the config pushes to a registry (output.format: registry), which writes no file; to write one, set output.format to docker-archive, oci-archive or oci-layout`);
  if (format === "oci-layout" && output === "-") throw new LayerpackError("-o -: the config writes an OCI layout, a directory, which standard output cannot carry; set output.format: oci-archive (or docker-archive) to stream the image as one file");
}

/**
 * Runs a stage after loading; its failures about a host file the config names are given the key's position (a
 * platform's own profile or roots under platforms[i]).
 */
async function located<T>({ loaded, spec, platform }: { loaded: Pick<LoadResult, "path" | "locate">; spec: ImageSpec; platform: number }, stage: () => Promise<T>): Promise<T> {
  try {
    return await stage();
  } catch (e) {
    const own = spec.platforms?.[platform];
    const key = e instanceof LayerpackError ? e.configKey : undefined;
    if (own && key && (key[0] === "profile" || key[0] === "roots") && own[key[0]] !== undefined) aboutConfigKey(e as LayerpackError, ["platforms", platform, ...key]);
    throw locateConfigError(loaded, e);
  }
}

/**
 * The base image, its failures about the `base` key (a missing archive, a registry that refuses): said at its
 * line:column. A base of zstd layers under a docker-archive output is refused here, before planning, so that plan
 * and check fail as the build would.
 */
async function baseFor(spec: ImageSpec, name: string, o: { cwd: string; env: PipelineOptions["env"]; cache: LayerCache | undefined; signal: AbortSignal | undefined }) {
  let resolved;
  try {
    resolved = await resolveBase(name, { cwd: o.cwd, env: registryEnv(spec, o.env), platform: specPlatform(spec), ...(o.cache ? { cache: o.cache } : {}), signal: o.signal });
  } catch (err) {
    throw err instanceof LayerpackError && err.configKey === undefined ? aboutConfigKey(err, ["base"]) : err;
  }
  if (spec.output.format === "docker-archive" && resolved.layers.some((l) => l.mediaType.endsWith("+zstd"))) {
    throw aboutConfigKey(new BuildError(`${name} has zstd layers, which a docker archive cannot carry (docker and containerd mislabel them); write an OCI output (output.format: oci-layout, oci-archive or registry)`), ["base"]);
  }
  return resolved;
}

/** Host files the paths entries copy exist and are regular files: said before any layer is written, at the key. */
function checkSources(spec: ImageSpec, configDir: string): void {
  spec.paths.forEach((entry, i) => {
    if (entry.type !== "file" || entry.source === undefined) return;
    const source = path.resolve(configDir, entry.source);
    let st: fs.Stats;
    try {
      st = fs.statSync(source);
    } catch (cause) {
      const missing = (cause as NodeJS.ErrnoException).code === "ENOENT";
      throw aboutConfigKey(new BuildError(`${source}: ${missing ? "no such file" : (cause as Error).message}`, { cause }), ["paths", i, "source"]);
    }
    if (!st.isFile()) throw aboutConfigKey(new BuildError(`${source} is not a regular file`), ["paths", i, "source"]);
  });
}

export type { PlatformBuild };

async function loadResolvePlanPlatforms(o: PipelineOptions, loaded: Awaited<ReturnType<typeof loadResolve>>) {
  const { spec, closure: first, ...rest } = loaded;
  const scanMemo = cacheOf(o)?.scanMemo();
  const images: { spec: ImageSpec; closure: Closure }[] = [];
  for (const [i, s] of platformSpecs(spec).entries()) {
    const resolve = () => resolveClosure(s, { configDir: rest.configDir, ...(scanMemo ? { scanMemo } : {}), ...(o.onWarning ? { onWarning: o.onWarning } : {}) });
    images.push({ spec: s, closure: i === 0 ? first : await located({ loaded: rest, spec, platform: i }, resolve) });
  }
  // Planning's failures about a key (two paths entries defining one path) are given at its line:column.
  const plan = await located({ loaded: rest, spec, platform: 0 }, async () => planPlatforms(images));
  const platforms: PlatformBuild[] = images.map((im, i) => ({ ...im, plan: plan.platforms![i]! }));
  const inputs = [rest.path, ...rest.dependencies.filter((d) => d !== rest.path)];
  // Every platform's fingerprint, in order: `check` fails when any of them moves.
  const fingerprint = () => sha256Digest(JSON.stringify(platforms.map((pb) => planFingerprint(pb.spec, pb.closure))));
  return { ...rest, spec, closure: images[0]!.closure, plan, previous: { missing: false } as ReturnType<typeof previousPlanFor>, inputs, platforms, fingerprint };
}

export async function loadResolvePlan(o: PipelineOptions) {
  const loadedAll = await loadResolve(o);
  if (loadedAll.spec.platforms !== undefined) {
    if (o.previous !== undefined || loadedAll.spec.layers.previous !== undefined) throw new PlanError("layers.previous (sticky plans) is not supported with platforms yet: the platforms' plans are made together, afresh");
    return loadResolvePlanPlatforms(o, loadedAll);
  }
  const { spec, closure, ...loaded } = loadedAll;
  // Sticky plans: --previous, else layers.previous (see previousPlanFor).
  const previous = previousPlanFor({ spec, configDir: loaded.configDir, cwd: o.cwd, explicit: o.previous });
  // The base image first: its layers fetched into the cache, the store paths it holds known before planning.
  const resolved = spec.base === undefined ? undefined : await located({ loaded, spec, platform: 0 }, () => baseFor(spec, spec.base!, { cwd: loaded.configDir, env: o.env, cache: cacheOf(o), signal: o.signal }));
  // An item counts as the base's only when the base holds it whole and with the closure's NAR size (heldByBase).
  const base = resolved && { image: resolved.image, id: resolved.id, layers: resolved.layers, paths: heldByBase(resolved, closure) };
  // Planning's failures about a key (two paths entries defining one path) are given at its line:column.
  const plan = await located({ loaded, spec, platform: 0 }, async () =>
    memoPlan(
      cacheOf(o),
      () => planKey(spec, closure, { previous: previous.plan, base: base && { ...base, items: base.paths } }),
      () => planLayers(spec, closure, { ...(previous.plan ? { previous: previous.plan } : {}), ...(base ? { base } : {}) }),
    ),
  );
  // The files the build is configured from, the config first: an output may never replace one (BuildInput.inputs).
  const inputs = [loaded.path, ...loaded.dependencies.filter((d) => d !== loaded.path), ...(previous.file ? [previous.file] : [])];
  const fingerprint = () => planFingerprint(spec, closure, plan.base);
  return { ...loaded, spec, closure, plan, previous, inputs, platforms: undefined as PlatformBuild[] | undefined, fingerprint };
}
