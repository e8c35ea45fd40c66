/**
 * The execute stage: plan + closure -> image. Each layer is a job keyed by what shapes its bytes (layer-key.ts).
 * With a cache, hits are reused without reading the store; misses are built concurrently (largest first, up to the
 * number of cores, so compression runs on every core) into cache blobs, then the output is assembled from blobs.
 * Without a cache, layers stream straight into the docker archive, each byte written once.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { BuildError } from "../errors.ts";
import type { ImageSpec } from "../spec/schema.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan, PlannedLayer } from "../plan/types.ts";
import { resolveEntrypoint } from "../plan/custom.ts";
import { LayerCache, type CachedLayer } from "../cache/cache.ts";
import { canonicalJson, imageConfig, type HistoryEntry } from "./config.ts";
import { createBlobFile, LayerSink, type BlobResult, type BlobTarget } from "./sink.ts";
import { writeLayer, type LayerContent, type LayerContext, type LayerWriteResult } from "./layer.ts";
import { databaseFor, type NarFacts } from "../database/index.ts";
import { imageUser } from "../plan/accounts.ts";
import { unmatchedPermsWarnings } from "./perms.ts";
import { layerKey } from "./layer-key.ts";
import { checkOutputDir, writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import { ImageView } from "./view.ts";
import { MEDIA_TYPES, type BuiltImage, type LayerBlob, type LayerDescriptor } from "./types.ts";
import { fileHasDigest, ociLayoutHas, writeOciArchive, writeOciLayout, type ImageBlobs } from "./oci-layout.ts";
import { parseReference } from "../registry/reference.ts";
import { pushToRegistry } from "../registry/output.ts";
import type { PushEvent, PushResult } from "../registry/push.ts";

export type BuildEvent =
  | { type: "layer-start"; index: number; count: number; items: number; bytes: number }
  | { type: "layer-done"; index: number; count: number; blob: BlobResult; cached: boolean }
  | { type: "progress"; bytes: number }
  | { type: "output"; path: string; upToDate: boolean }
  | PushEvent;

export interface BuildInput {
  spec: ImageSpec;
  closure: Closure;
  plan: LayerPlan;
  /** Directory relative `paths[].source` files are read from. */
  configDir: string;
  /** Layer cache; without one every layer is built and streamed into the output. */
  cache?: LayerCache;
  /** Layers built at once; default: the number of cores. */
  concurrency?: number;
  /** Aborts the build; partial files are removed and the previous output stays. */
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** Where registry credentials are looked up (output.format registry); default process.env. */
  env?: Record<string, string | undefined>;
}

export interface BuildStats {
  rebuilt: number;
  reused: number;
  /** Bytes of layer blobs written (new layers only). */
  bytesWritten: number;
  /** The output already held exactly this image and was left alone. */
  upToDate: boolean;
}

export interface BuildResult {
  output: string;
  /** `sha256:<hex>` of the config: the image ID. */
  imageId: string;
  repoTag: string;
  /** Every `name:tag` (tag, then tags). */
  repoTags: string[];
  layers: LayerDescriptor[];
  stats: BuildStats;
  /** What a registry push sent (output.format registry). */
  push?: PushResult;
  /** Problems that did not stop the build (e.g. a `perms` glob that matched nothing), for the caller to show. */
  warnings?: string[];
}

/** Seconds since the epoch of an RFC 3339 time. */
export function epochSeconds(created: string): number {
  return Math.floor(Date.parse(created) / 1000);
}

/** The default tag: a digest of the plan, so it changes exactly when the layer contents' description does. */
export function planTag(plan: LayerPlan): string {
  return createHash("sha256").update(canonicalJson(plan)).digest("hex").slice(0, 32);
}

export function layerContent(layer: PlannedLayer, closure?: Closure): LayerContent {
  if (layer.kind === "customisation") return { items: [], entries: layer.entries };
  if (layer.kind === "root-system") {
    if (!closure?.rootSystem) throw new BuildError(`the plan has a root-system layer (${layer.source}), but the closure has no root system listing`);
    return { items: [], entries: [], rootSystem: closure.rootSystem.entries };
  }
  return { items: layer.items.map((i) => i.path), entries: layer.entries ?? [] };
}

function historyComment(layer: PlannedLayer): string {
  if (layer.kind === "customisation") return `customisation: ${layer.entries.length} entries`;
  if (layer.kind === "root-system") return `root system: ${layer.files} entries`;
  const names = layer.items.map((i) => path.posix.basename(i.path).slice(33));
  const shown = names.length > 8 ? `${names.slice(0, 8).join(", ")}, ... (${names.length} items)` : names.join(", ");
  return `store: ${shown}`;
}

/** Layers whose NAR size suggests a tar near the 8 GiB ustar limit are written to a file first (see docker-archive). */
const STREAM_LIMIT = 6 * 1024 ** 3;

async function produceLayer(target: BlobTarget, content: LayerContent, spec: ImageSpec, ctx: LayerContext): Promise<BlobResult & LayerWriteResult> {
  const sink = new LayerSink(target, spec.compression);
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
async function produceJob(target: BlobTarget, job: Job, p: Prepared): Promise<BlobResult & LayerWriteResult> {
  if (job.needsDb) prepareDatabase(job, p);
  const blob = await produceLayer(target, job.content, p.spec, job.ctx ?? p.ctx);
  recordFacts(p, blob);
  return blob;
}

function recordFacts(p: Prepared, facts: { nar?: Record<string, NarFacts> | undefined; permsMatched?: string[] | undefined }): void {
  Object.assign(p.nar, facts.nar ?? {});
  for (const g of facts.permsMatched ?? []) p.permsMatched.add(g);
}

/** Makes the database bytes of a job's generated entries from the NAR facts gathered so far; sets its key. */
function prepareDatabase(job: Job, p: Prepared): void {
  if (job.ctx) return;
  const generated = new Map<string, Buffer>();
  for (const e of job.content.entries) {
    if (e.type === "file" && e.generated !== undefined) generated.set(e.path, databaseFor(e.generated, p.closure, p.nar, p.ctx.mtime));
  }
  job.ctx = { ...p.ctx, generated };
  job.key = layerKey(job.content, job.ctx, p.spec.compression);
}

interface Job {
  index: number;
  layer: PlannedLayer;
  content: LayerContent;
  bytes: number;
  key: string;
  /** Holds generated entries but no store items: built after the others (see produceJob). */
  needsDb: boolean;
  /** This job's context when it differs from the shared one (generated bytes). */
  ctx?: LayerContext;
}

interface Prepared {
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
}

function prepare(input: BuildInput): Prepared {
  const { spec, closure, plan } = input;
  // A registry output is its reference (checked before any work); the others are paths.
  const output = spec.output.format === "registry" ? spec.output.ref! : path.resolve(spec.output.path!);
  if (spec.output.format === "registry") parseReference(output);
  else checkOutputDir(output);
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
  if (entrypoint) new ImageView(closure, plan.layers.flatMap((l) => layerContent(l, closure).entries)).checkEntrypoint(entrypoint);
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
  };
  p.jobs = plan.layers.map((layer, index): Job => {
    const content = layerContent(layer, closure);
    const generates = content.entries.some((e) => e.type === "file" && e.generated !== undefined);
    p.wantNar ||= generates;
    const needsDb = generates && content.items.length === 0;
    // With max 1 the database is made inside the layer, after its items; their paths already key it.
    const jobCtx: LayerContext | undefined =
      generates && !needsDb ? { ...ctx, generate: (e, own) => databaseFor(e.type === "file" ? e.generated! : "guix-database", closure, { ...p.nar, ...own }, ctx.mtime) } : undefined;
    const bytes = layer.kind === "store" || layer.kind === "root-system" ? layer.size : 0;
    const job: Job = { index, layer, content, bytes, key: needsDb ? "" : layerKey(content, jobCtx ?? ctx, spec.compression), needsDb };
    if (jobCtx) job.ctx = jobCtx;
    return job;
  });
  return p;
}

function finishImage(p: Prepared, plan: LayerPlan, layers: LayerDescriptor[]): BuiltImage & { repoTag: string } {
  const history: HistoryEntry[] = p.jobs.map((j) => ({ created: p.created, created_by: "layerpack", comment: historyComment(j.layer) }));
  const config = Buffer.from(
    canonicalJson(imageConfig({ spec: p.spec, entrypoint: p.entrypoint, created: p.created, diffIds: layers.map((l) => l.diffId), history })),
  );
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  const tags = [...new Set([...(p.spec.tag !== undefined ? [p.spec.tag] : []), ...(p.spec.tags ?? [])])];
  const repoTags = (tags.length > 0 ? tags : [planTag(plan)]).map((t) => `${p.spec.name}:${t}`);
  return { config, configDigest, repoTags, layers, repoTag: repoTags[0]! };
}

const describe = (b: { digest: string; diffId: string; size: number }, mediaType: string): LayerDescriptor => ({
  digest: b.digest,
  diffId: b.diffId,
  size: b.size,
  mediaType,
});

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
  const facts = { ...(job.content.items.length > 0 ? { nar: blob.nar } : {}), ...(blob.permsMatched.length > 0 ? { permsMatched: blob.permsMatched } : {}) };
  return cache.putLayer(job.key, temp, { ...describe(blob, p.mediaType), tarSize: blob.tarSize, ...facts });
}

/** Runs `work` over `jobs`, largest first, at most `limit` at a time; the first failure stops new work. */
async function runPool<T>(jobs: T[], limit: number, work: (job: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        await work(job);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failed !== undefined) throw failed;
}

/** Identity of a written output, so a rebuild that would write the same bytes again can leave it alone. */
function outputStamp(file: string, image: BuiltImage): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return canonicalJson({ image: image.configDigest, tags: image.repoTags, layers: image.layers.map((l) => l.digest), size: `${st.size}`, ino: `${st.ino}`, mtime: `${st.mtimeNs}` });
  } catch {
    return undefined;
  }
}

async function buildCached(input: BuildInput, p: Prepared, cache: LayerCache): Promise<BuildResult> {
  const count = p.jobs.length;
  const blobs = new Map<number, CachedLayer>();
  const stats: BuildStats = { rebuilt: 0, reused: 0, bytesWritten: 0, upToDate: false };
  // A hit is usable when it knows its items' NAR facts, or nothing needs them.
  const lookup = (job: Job) => {
    const hit = cache.getLayer(job.key);
    if (hit && (!p.wantNar || job.content.items.every((it) => hit.nar?.[it] !== undefined))) {
      blobs.set(job.index, hit);
      recordFacts(p, hit);
    }
  };
  for (const job of p.jobs) if (!job.needsDb) lookup(job);
  const build = async (job: Job) => {
    input.onEvent?.({ type: "layer-start", index: job.index, count, items: job.content.items.length, bytes: job.bytes });
    const built = await buildIntoCache(job, p, cache);
    blobs.set(job.index, built);
    stats.rebuilt++;
    stats.bytesWritten += built.size;
    input.onEvent?.({ type: "layer-done", index: job.index, count, blob: built, cached: false });
  };
  const misses = p.jobs.filter((j) => !j.needsDb && !blobs.has(j.index)).sort((a, b) => b.bytes - a.bytes || a.index - b.index);
  await runPool(misses, input.concurrency ?? os.availableParallelism(), build);
  // The layers holding the database, once every NAR fact is known: keyed by the database's bytes.
  for (const job of p.jobs.filter((j) => j.needsDb)) {
    prepareDatabase(job, p);
    lookup(job);
    if (blobs.has(job.index)) continue;
    misses.push(job);
    await build(job);
  }
  for (const job of p.jobs) {
    if (misses.includes(job)) continue;
    stats.reused++;
    input.onEvent?.({ type: "layer-done", index: job.index, count, blob: blobs.get(job.index)!, cached: true });
  }
  const layers = p.jobs.map((j) => describe(blobs.get(j.index)!, p.mediaType));
  const image = finishImage(p, input.plan, layers);

  const stampFile = path.join(cache.dir, "outputs", `${createHash("sha256").update(p.output).digest("hex")}.json`);
  // Files are stamped; a layout is checked by its index and blobs (ociOutput); a registry by HEAD requests.
  const stamped = p.spec.output.format === "docker-archive" || p.spec.output.format === "oci-archive";
  const before = stamped ? outputStamp(p.output, image) : undefined;
  if (before !== undefined && fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === before) {
    stats.upToDate = true;
    input.onEvent?.({ type: "output", path: p.output, upToDate: true });
    return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats };
  }
  if (p.spec.output.format !== "docker-archive") return ociOutput(input, p, cache, image, blobs, new Set(misses.map((j) => j.index)), stats, stampFile);
  await writeAtomically(p.output, async (temp) => {
    const archive = new DockerArchiveWriter(temp, p.ctx.mtime);
    try {
      for (const job of p.jobs) {
        let blob: LayerBlob = blobs.get(job.index)!;
        if (!archive.addLayerFile(blob)) {
          // The cached blob is damaged: forget it and build the layer again.
          cache.dropLayer(job.key, blob.digest);
          blob = await buildIntoCache(job, p, cache);
          stats.rebuilt++;
          stats.reused--;
          stats.bytesWritten += blob.size;
          if (!archive.addLayerFile(blob)) throw new BuildError(`layer ${job.index + 1}: the rebuilt blob ${blob.file} does not match its digest`);
        }
      }
      archive.finish(image);
    } finally {
      archive.close();
    }
  });
  const after = outputStamp(p.output, image);
  if (after !== undefined) {
    fs.mkdirSync(path.dirname(stampFile), { recursive: true });
    fs.writeFileSync(stampFile, after);
  }
  input.onEvent?.({ type: "output", path: p.output, upToDate: false });
  return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats };
}

/**
 * OCI layout / archive and registry outputs, assembled from cache blobs. A reused blob is checked against its
 * digest when an output reads it (a push reads only what the registry lacks); a damaged one is built again.
 */
async function ociOutput(
  input: BuildInput,
  p: Prepared,
  cache: LayerCache,
  image: BuiltImage & { repoTag: string },
  blobs: Map<number, CachedLayer>,
  fresh: Set<number>,
  stats: BuildStats,
  stampFile: string,
): Promise<BuildResult> {
  const format = p.spec.output.format;
  const result = (push?: PushResult): BuildResult => ({
    output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers: image.layers, stats, ...(push ? { push } : {}),
  });
  if (format === "oci-layout" && ociLayoutHas(p.output, image)) {
    stats.upToDate = true;
    input.onEvent?.({ type: "output", path: p.output, upToDate: true });
    return result();
  }
  const layerFile = async (index: number): Promise<string> => {
    const job = p.jobs[index]!;
    const blob = blobs.get(index)!;
    if (fresh.has(index) || (await fileHasDigest(blob.file, blob.digest, blob.size))) return blob.file;
    cache.dropLayer(job.key, blob.digest);
    const rebuilt = await buildIntoCache(job, p, cache);
    if (rebuilt.digest !== blob.digest) throw new BuildError(`layer ${index + 1} was rebuilt as ${rebuilt.digest}, not ${blob.digest}: did the store change?`);
    blobs.set(index, rebuilt);
    fresh.add(index);
    stats.rebuilt++;
    stats.reused--;
    stats.bytesWritten += rebuilt.size;
    return rebuilt.file;
  };
  const withFiles: ImageBlobs = { ...image, layerFile };
  let push: PushResult | undefined;
  if (format === "oci-layout") await writeOciLayout(withFiles, p.output);
  else if (format === "oci-archive") await writeOciArchive(withFiles, p.output, p.ctx.mtime);
  else {
    push = await pushToRegistry(withFiles, p.spec.output, { env: input.env, cacheDir: cache.dir, onEvent: input.onEvent });
  }
  const after = format === "oci-archive" ? outputStamp(p.output, image) : undefined;
  if (after !== undefined) {
    fs.mkdirSync(path.dirname(stampFile), { recursive: true });
    fs.writeFileSync(stampFile, after);
  }
  input.onEvent?.({ type: "output", path: p.output, upToDate: false });
  return result(push);
}

/** No cache: every layer streams straight into the archive, sequentially. */
async function buildStreaming(input: BuildInput, p: Prepared): Promise<BuildResult> {
  const count = p.jobs.length;
  const stats: BuildStats = { rebuilt: 0, reused: 0, bytesWritten: 0, upToDate: false };
  return writeAtomically(p.output, async (temp) => {
    const archive = new DockerArchiveWriter(temp, p.ctx.mtime);
    try {
      const layers: LayerDescriptor[] = [];
      for (const job of p.jobs) {
        input.onEvent?.({ type: "layer-start", index: job.index, count, items: job.content.items.length, bytes: job.bytes });
        let blob: BlobResult;
        if (job.bytes > STREAM_LIMIT) {
          const file = `${temp}.layer-${job.index}`;
          const target = createBlobFile(file);
          try {
            blob = await produceJob(target, job, p);
            archive.addLayerFile({ ...describe(blob, p.mediaType), file });
          } finally {
            fs.closeSync(target.fd);
            fs.rmSync(file, { force: true });
          }
        } else {
          blob = await archive.addLayer(p.mediaType, (target) => produceJob(target, job, p));
        }
        stats.rebuilt++;
        stats.bytesWritten += blob.size;
        input.onEvent?.({ type: "layer-done", index: job.index, count, blob, cached: false });
        layers.push(describe(blob, p.mediaType));
      }
      const image = finishImage(p, input.plan, layers);
      archive.finish(image);
      input.onEvent?.({ type: "output", path: p.output, upToDate: false });
      return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats };
    } finally {
      archive.close();
    }
  });
}

export async function buildImage(input: BuildInput): Promise<BuildResult> {
  const p = prepare(input);
  const result = await buildPrepared(input, p);
  const warnings = unmatchedPermsWarnings(input.spec.perms ?? [], p.permsMatched);
  return warnings.length > 0 ? { ...result, warnings } : result;
}

async function buildPrepared(input: BuildInput, p: Prepared): Promise<BuildResult> {
  if (input.cache) return buildCached(input, p, input.cache);
  if (p.spec.output.format === "docker-archive") return buildStreaming(input, p);
  // OCI outputs are assembled from blobs: without a cache, a temporary one (beside a file output, so layout blobs
  // can be hard links) is removed afterwards.
  const base = p.spec.output.format === "registry" ? os.tmpdir() : path.dirname(p.output);
  const dir = fs.mkdtempSync(path.join(base, ".layerpack-nocache-"));
  try {
    return await buildCached(input, p, new LayerCache(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
