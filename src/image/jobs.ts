/**
 * The layer jobs of one build: what each layer holds, its cache key, and producing it (tar -> sink) once, with the
 * NAR facts and matched perms that writing it learns. Shared by the cached, streaming and OCI paths of build.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan, PlannedLayer } from "../plan/types.ts";
import { resolveEntrypoint } from "../plan/custom.ts";
import type { CachedLayer, LayerCache } from "../cache/cache.ts";
import { canonicalJson, imageConfig, onBase, type HistoryEntry } from "./config.ts";
import { baseKey } from "./base.ts";
import { specPlatform } from "../oci/platform.ts";
import { createBlobFile, LayerSink, type BlobResult, type BlobTarget } from "./sink.ts";
import { writeLayer, type LayerContent, type LayerContext, type LayerWriteResult } from "./layer.ts";
import { databaseFor, type NarFacts } from "../database/index.ts";
import { imageUser } from "../plan/accounts.ts";
import { layerKey, layerKeys } from "./layer-key.ts";
import { imageAnnotations } from "./annotations.ts";
import { checkOutputDir, collectStaleBeside } from "./atomic.ts";
import { checkOutputPath, protectedPaths } from "./output-guard.ts";
import { sbomFilePaths } from "./sbom-output.ts";
import { ImageView } from "./view.ts";
import { MEDIA_TYPES, type BuiltImage, type KeyedWarning, type LayerDescriptor } from "./types.ts";
import { parseReference } from "../registry/reference.ts";
import type { BuildInput, BuildStats } from "./build.ts";
import { sha256Hex, sha256Digest } from "../util/digest.ts";
import { narDigest } from "../store/nar.ts";
import { hostPath } from "../store/path.ts";

/** Seconds since the epoch of an RFC 3339 time. */
export function epochSeconds(created: string): number {
  return Math.floor(Date.parse(created) / 1000);
}

/** The default tag: a digest of the plan, so it changes exactly when the layer contents' description does. */
export function planTag(plan: LayerPlan): string {
  return sha256Hex(canonicalJson(plan)).slice(0, 32);
}

export function layerContent(layer: PlannedLayer, closure?: Closure): LayerContent {
  if (layer.kind === "customisation") return { items: [], entries: layer.entries };
  if (layer.kind === "root-system") {
    if (!closure?.rootSystem) throw new BuildError(`the plan has a root-system layer (${layer.source}), but the closure has no root system listing`);
    return { items: [], entries: [], rootSystem: closure.rootSystem.entries };
  }
  const items = closure ? closureItems(closure) : undefined;
  return { items: layer.items.map((i) => i.path), facts: layer.items.map((i) => `${i.size}:${items?.get(i.path)?.narHash ?? ""}`), entries: layer.entries ?? [] };
}

/** An item's NAR facts as the closure's source gives them (a store database does), if it does. */
export function closureNar(closure: Closure, item: string): NarFacts | undefined {
  const it = closureItems(closure).get(item);
  return it?.narHash !== undefined ? { hash: it.narHash, size: it.narSize } : undefined;
}

/** A closure's items by path, made once per closure (every layer of a build asks). */
const itemCache = new WeakMap<Closure, Map<string, Closure["items"][number]>>();
function closureItems(closure: Closure): Map<string, Closure["items"][number]> {
  let m = itemCache.get(closure);
  if (!m) {
    m = new Map(closure.items.map((it) => [it.path, it]));
    itemCache.set(closure, m);
  }
  return m;
}

function historyComment(layer: PlannedLayer): string {
  if (layer.kind === "customisation") return `customisation: ${layer.entries.length} ${layer.entries.length === 1 ? "entry" : "entries"}`;
  if (layer.kind === "root-system") return `root system: ${layer.files} ${layer.files === 1 ? "entry" : "entries"}`;
  const names = layer.items.map((i) => path.posix.basename(i.path).slice(33));
  const shown = names.length > 8 ? `${names.slice(0, 8).join(", ")}, ... (${names.length} items)` : names.join(", ");
  return `store: ${shown}`;
}

/** Layers whose NAR size suggests a tar near the 8 GiB ustar limit are written to a file first (see docker-archive). */
export const STREAM_LIMIT = 6 * 1024 ** 3;

async function produceLayer(target: BlobTarget, content: LayerContent, how: { compression: ImageSpec["compression"]; ctx: LayerContext }): Promise<BlobResult & LayerWriteResult> {
  const { compression, ctx } = how;
  const sink = new LayerSink(target, compression);
  sink.onBytes = ctx.onBytes;
  try {
    const facts = await writeLayer(sink, content, ctx);
    return { ...(await sink.finish()), ...facts };
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/**
 * Produces a job's layer and remembers what writing it learnt (NAR facts, matched perms). A layer holding the
 * store database without store items (the customisation layer) waits for every other layer's NAR facts: its
 * database bytes, and so its cache key, are made first.
 */
export async function produceJob(target: BlobTarget, job: Job, p: Prepared): Promise<BlobResult & LayerWriteResult> {
  if (job.base) throw new BuildError(`layer ${job.index + 1} of the base image is missing from the layer cache or damaged there; build again to fetch it`);
  if (job.needsDb) prepareDatabase(job, p);
  const ctx = { ...(job.ctx ?? p.ctx), hashNar: p.wantNar };
  const blob = await produceLayer(target, job.content, { compression: p.spec.compression, ctx });
  // Host files (paths sources, the root system) are keyed by their content before they are read: if one changed
  // meanwhile, the bytes written match neither key, and caching them would poison the cache.
  const hostInputs = job.content.entries.some((e) => e.type === "file" && e.source !== undefined) || (job.content.rootSystem?.length ?? 0) > 0;
  if (hostInputs && layerKey(job.content, ctx, p.spec.compression) !== job.key) {
    throw new BuildError(`layer ${job.index + 1}: a file it copies from this host changed while it was being written; build again`);
  }
  recordFacts(p, blob);
  return blob;
}

/**
 * The diff_id this host's inputs give a job's layer, and the NAR facts learnt on the way: its tar made here (read,
 * tarred and hashed, not compressed, written nowhere). A cache source's layer is another machine's word for what the
 * inputs give; it is taken only when it unpacks to this (remote-cache.ts), which costs a read of the items but
 * spares their compression.
 */
export async function localDiffId(job: Job, p: Prepared): Promise<{ diffId: string; nar: Record<string, NarFacts> }> {
  if (job.needsDb) prepareDatabase(job, p);
  // (No progress bytes: the layer is not written, and a build of it after all would count them again.)
  const { onBytes: _progress, ...base } = job.ctx ?? p.ctx;
  const ctx = { ...base, hashNar: true };
  const fd = fs.openSync("/dev/null", "w");
  try {
    const blob = await produceLayer({ fd, label: "/dev/null", position: 0 }, job.content, { compression: "none", ctx });
    return { diffId: blob.diffId, nar: blob.nar ?? {} };
  } finally {
    fs.closeSync(fd);
  }
}

export function recordFacts(p: Prepared, facts: { nar?: Record<string, NarFacts> | undefined; permsMatched?: string[] | undefined }): void {
  Object.assign(p.nar, facts.nar ?? {});
  for (const g of facts.permsMatched ?? []) p.permsMatched.add(g);
}

/**
 * The NAR facts of `items` that `known` (a cache hit's) lacks: from the closure where its source has the hash, else
 * hashed from the store. Undefined when nothing is missing.
 */
export async function missingNar(p: Prepared, items: readonly string[], known: Readonly<Record<string, NarFacts>> | undefined): Promise<Record<string, NarFacts> | undefined> {
  let out: Record<string, NarFacts> | undefined;
  for (const item of items) {
    if (known?.[item] !== undefined) continue;
    const given = closureNar(p.closure, item);
    out ??= {};
    if (given !== undefined) out[item] = given;
    else {
      // Between items: Ctrl-C is heard, and a closure of many GB does not hold the process silently.
      await new Promise((resolve) => setImmediate(resolve));
      p.ctx.signal?.throwIfAborted();
      out[item] = narDigest(hostPath(p.closure.store, item), { label: item });
    }
  }
  return out;
}

/** Makes the database bytes of a job's generated entries from the NAR facts gathered so far; sets its key. */
export function prepareDatabase(job: Job, p: Prepared): void {
  if (job.ctx) return;
  const generated = new Map<string, Buffer>();
  for (const e of job.content.entries) {
    if (e.type === "file" && e.generated !== undefined) generated.set(e.path, databaseFor(e.generated, p.closure, { nar: p.nar, registrationTime: p.ctx.mtime }));
  }
  job.ctx = { ...p.ctx, generated };
  ({ key: job.key, portable: job.portableKey } = layerKeys(job.content, job.ctx, p.spec.compression));
}

export interface Job {
  index: number;
  layer: PlannedLayer;
  content: LayerContent;
  bytes: number;
  key: string;
  /** The key without on-disk identities, for cache records other machines read (layer-key.ts: layerKeys). */
  portableKey: string;
  /** Holds generated entries but no store items: built after the others (see produceJob). */
  needsDb: boolean;
  /** This job's context when it differs from the shared one (generated bytes). */
  ctx?: LayerContext;
  /** A base image's layer (image/base.ts): taken from the cache as it is, never built. */
  base?: boolean;
}

export interface Prepared {
  spec: ImageSpec;
  closure: Closure;
  /** NAR facts of the store items of the layers built or reused so far. */
  nar: Record<string, NarFacts>;
  /** Whether the image has a store database, so every store layer must know its NAR facts. */
  wantNar: boolean;
  permsMatched: Set<string>;
  output: string;
  created: string;
  entrypoint: string | undefined;
  ctx: LayerContext;
  mediaType: string;
  jobs: Job[];
  /** The base image's config, when the plan has a base (attachBase). */
  baseConfig?: Record<string, unknown>;
  /** Where CI variables for annotations are read (BuildInput.env, else process.env). */
  env: Record<string, string | undefined>;
  /** Problems that did not stop the build (an unreachable cache source, a dangling link), for BuildResult.warnings. */
  warnings: (string | KeyedWarning)[];
}

/** What the output must keep clear of: the build's inputs, the store and the cache. */
export function prepare(input: BuildInput): Prepared {
  const { spec, closure, plan } = input;
  // A registry output is its reference (checked before any work); the others are paths.
  const outPath = spec.output.path;
  if (spec.output.format !== "registry" && (outPath === undefined || outPath === "-")) {
    throw new BuildError(`output.path is ${outPath === undefined ? "not set" : "- (standard output)"}: buildImage writes a file or directory; loadSpec fills in ./<name>.tar, the command line streams -`);
  }
  const output = spec.output.format === "registry" ? spec.output.ref! : path.resolve(outPath!);
  if (spec.output.format === "registry") parseReference(output);
  else {
    checkOutputDir(output, input.outputLabel);
    const guarded = protectedPaths(input);
    checkOutputPath({ output, directory: spec.output.format === "oci-layout", protected: guarded, streamHint: "-o - writes the archive to standard output", ...(input.outputLabel ? { label: input.outputLabel } : {}) });
    // The SBOM files beside an archive are outputs too: a FIFO or /dev/zero there would block or flood the build.
    if (spec.output.format === "docker-archive") for (const file of sbomFilePaths(output, spec)) checkOutputPath({ output: file, directory: false, protected: guarded, label: `sbom: the SBOM file ${file}`, what: "the SBOM", remedy: "remove it, or give output.path another name" });
    collectStaleBeside(output);
  }
  const created = spec.created ?? "1970-01-01T00:00:01Z";
  const onEvent = input.onEvent;
  const ctx: LayerContext = {
    store: closure.store,
    mtime: epochSeconds(created),
    sourceDir: input.configDir,
    onBytes: onEvent && ((bytes) => onEvent({ type: "progress", bytes })),
    signal: input.signal,
    perms: spec.perms ?? [],
  };
  const entrypoint = resolveEntrypoint(spec, closure);
  // On a base image the entrypoint or a link's target may be one of the base's files, which the view of our
  // layers cannot see.
  const view = plan.base ? undefined : new ImageView(closure, plan.layers.flatMap((l) => layerContent(l, closure).entries));
  if (entrypoint && view) view.checkEntrypoint(entrypoint, spec.entrypoint);
  const p: Prepared = {
    spec: { ...spec, user: imageUser(spec, closure) },
    closure,
    nar: {},
    wantNar: false,
    permsMatched: new Set(),
    output,
    created,
    entrypoint,
    ctx,
    mediaType: MEDIA_TYPES[spec.compression],
    jobs: [],
    warnings: view ? view.danglingLinks(spec) : [],
    env: input.env ?? process.env,
  };
  // An SBOM gives every item's NAR hash, and so does the cache record pushed to a registry (what a later runner's
  // database needs): cache hits must know them too. Other builds skip hashing, and the record an OCI layout keeps
  // then holds no NAR facts (outputs.ts), whatever the cache held.
  p.wantNar = spec.sbom !== undefined || (spec.cache.publish && spec.output.format === "registry");
  p.jobs = plan.layers.map((layer, index): Job => {
    const content = layerContent(layer, closure);
    const generates = content.entries.some((e) => e.type === "file" && e.generated !== undefined);
    p.wantNar ||= generates;
    const needsDb = generates && content.items.length === 0;
    // With max 1 the database is made inside the layer, after its items; their paths already key it.
    const jobCtx: LayerContext | undefined =
      generates && !needsDb ? { ...ctx, generate: (e, own) => databaseFor(e.type === "file" ? e.generated! : "guix-database", closure, { nar: { ...p.nar, ...own }, registrationTime: ctx.mtime }) } : undefined;
    const bytes = layer.kind === "store" || layer.kind === "root-system" ? layer.size : 0;
    const keys = needsDb ? { key: "", portable: "" } : layerKeys(content, jobCtx ?? ctx, spec.compression);
    const job: Job = { index, layer, content, bytes, key: keys.key, portableKey: keys.portable, needsDb };
    if (jobCtx) job.ctx = jobCtx;
    return job;
  });
  return p;
}

export function finishImage(p: Prepared, plan: LayerPlan, layers: LayerDescriptor[]): BuiltImage & { repoTag: string } {
  const ours = p.jobs.filter((j) => !j.base);
  const history: HistoryEntry[] = ours.map((j) => ({ created: p.created, created_by: "layerpack", comment: historyComment(j.layer) }));
  const platform = plan.platform ?? specPlatform(p.spec);
  const made = imageConfig({ spec: p.spec, entrypoint: p.entrypoint, created: p.created, diffIds: layers.map((l) => l.diffId), history, platform });
  const config = Buffer.from(canonicalJson(p.baseConfig ? onBase(made, p.baseConfig, p.spec) : made));
  const configDigest = sha256Digest(config);
  const repoTags = imageRepoTags(p.spec, plan);
  return { config, configDigest, repoTags, layers, repoTag: repoTags[0]!, annotations: imageAnnotations(p.spec, p.created, p.env) };
}

/** The image's `name:tag`s: tag, then tags; without either, the plan's digest (planTag). */
export function imageRepoTags(spec: ImageSpec, plan: LayerPlan): string[] {
  const tags = [...new Set([...(spec.tag !== undefined ? [spec.tag] : []), ...(spec.tags ?? [])])];
  return (tags.length > 0 ? tags : [planTag(plan)]).map((t) => `${spec.name}:${t}`);
}

export const describe = (b: { digest: string; diffId: string; size: number }, mediaType: string): LayerDescriptor => ({
  digest: b.digest,
  diffId: b.diffId,
  size: b.size,
  mediaType,
});

/**
 * Prepends the base image's layers (already in `cache`) as jobs that are never built: the rest of the build (cache
 * hits, outputs, pushes) treats them as reused layers.
 */
export function attachBase(p: Prepared, layers: CachedLayer[], config: Record<string, unknown>): void {
  const base = layers.map((l, i): Job => ({
    index: i,
    // A placeholder: base jobs are never built, and their history comes from the base's config.
    layer: { kind: "customisation", entries: [] },
    content: { items: [], entries: [] },
    bytes: 0,
    key: baseKey(l.digest),
    portableKey: baseKey(l.digest),
    needsDb: false,
    base: true,
  }));
  p.jobs = [...base, ...p.jobs.map((j) => ({ ...j, index: j.index + base.length }))];
  p.baseConfig = config;
}

/** The media type of a job's blob: a base layer keeps its own. */
export const mediaTypeOf = (job: Job, blob: { mediaType: string }, p: Prepared): string => (job.base ? blob.mediaType : p.mediaType);

/** Builds one missing layer into the cache. */
async function buildIntoCache(job: Job, p: Prepared, cache: LayerCache): Promise<CachedLayer> {
  const temp = cache.tempPath(`layer-${job.index}`);
  const target = createBlobFile(temp);
  let blob: BlobResult & LayerWriteResult;
  try {
    blob = await produceJob(target, job, p);
  } catch (err) {
    fs.closeSync(target.fd);
    fs.rmSync(temp, { force: true });
    throw err;
  }
  fs.closeSync(target.fd);
  return cache.putLayer(job.key, temp, cacheRecord(job, blob, p.mediaType));
}

/**
 * buildIntoCache as a build reports it: the layer-start and layer-done events, and the layer counted as built
 * in `stats` (every path that builds a layer: a miss, a damaged cached copy, a blob a cache source lost).
 */
export async function buildCounted(job: Job, p: Prepared, how: { cache: LayerCache; onEvent: BuildInput["onEvent"]; stats: BuildStats }): Promise<CachedLayer> {
  const { cache, onEvent, stats } = how;
  const count = p.jobs.length;
  onEvent?.({ type: "layer-start", index: job.index, count, items: job.content.items.length, bytes: job.bytes });
  const built = await buildIntoCache(job, p, cache);
  stats.rebuilt++;
  stats.bytesWritten += built.size;
  stats.tarBytes += built.tarSize;
  onEvent?.({ type: "layer-done", index: job.index, count, blob: built, cached: false });
  return built;
}

/** What the cache keeps about a layer besides its blob: digests, sizes and what writing it learnt. */
export function cacheRecord(job: Job, blob: BlobResult & Partial<LayerWriteResult> & Pick<CachedLayer, "nar">, mediaType: string): Omit<CachedLayer, "file" | "offset"> {
  const perms = blob.permsMatched ?? [];
  return {
    ...describe(blob, mediaType),
    tarSize: blob.tarSize,
    ...(job.content.items.length > 0 && blob.nar && Object.keys(blob.nar).length > 0 ? { nar: blob.nar } : {}),
    ...(perms.length > 0 ? { permsMatched: perms } : {}),
  };
}


