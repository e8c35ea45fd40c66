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
import type { CachedLayer, LayerCache } from "../cache/cache.ts";
import { canonicalJson, imageConfig, type HistoryEntry } from "./config.ts";
import { createBlobFile, LayerSink, type BlobResult, type BlobTarget } from "./sink.ts";
import { writeLayer, type LayerContent, type LayerContext } from "./layer.ts";
import { layerKey } from "./layer-key.ts";
import { checkOutputDir, writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import { ImageView } from "./view.ts";
import { MEDIA_TYPES, type BuiltImage, type LayerBlob, type LayerDescriptor } from "./types.ts";

export type BuildEvent =
  | { type: "layer-start"; index: number; count: number; items: number; bytes: number }
  | { type: "layer-done"; index: number; count: number; blob: BlobResult; cached: boolean }
  | { type: "progress"; bytes: number }
  | { type: "output"; path: string; upToDate: boolean };

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
  onEvent?: (event: BuildEvent) => void;
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
  layers: LayerDescriptor[];
  stats: BuildStats;
}

/** Seconds since the epoch of an RFC 3339 time. */
export function epochSeconds(created: string): number {
  return Math.floor(Date.parse(created) / 1000);
}

/** The default tag: a digest of the plan, so it changes exactly when the layer contents' description does. */
export function planTag(plan: LayerPlan): string {
  return createHash("sha256").update(canonicalJson(plan)).digest("hex").slice(0, 32);
}

export function layerContent(layer: PlannedLayer): LayerContent {
  if (layer.kind === "customisation") return { items: [], entries: layer.entries };
  return { items: layer.items.map((i) => i.path), entries: layer.entries ?? [] };
}

function historyComment(layer: PlannedLayer): string {
  if (layer.kind === "customisation") return `customisation: ${layer.entries.length} entries`;
  const names = layer.items.map((i) => path.posix.basename(i.path).slice(33));
  const shown = names.length > 8 ? `${names.slice(0, 8).join(", ")}, ... (${names.length} items)` : names.join(", ");
  return `store: ${shown}`;
}

/** Layers whose NAR size suggests a tar near the 8 GiB ustar limit are written to a file first (see docker-archive). */
const STREAM_LIMIT = 6 * 1024 ** 3;

async function produceLayer(target: BlobTarget, content: LayerContent, spec: ImageSpec, ctx: LayerContext): Promise<BlobResult> {
  const sink = new LayerSink(target, spec.compression);
  sink.onBytes = ctx.onBytes;
  try {
    await writeLayer(sink, content, ctx);
    return await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

interface Job {
  index: number;
  layer: PlannedLayer;
  content: LayerContent;
  bytes: number;
  key: string;
}

interface Prepared {
  spec: ImageSpec;
  output: string;
  created: string;
  entrypoint: string | undefined;
  ctx: LayerContext;
  mediaType: string;
  jobs: Job[];
}

function prepare(input: BuildInput): Prepared {
  const { spec, closure, plan } = input;
  const output = path.resolve(spec.output.path);
  checkOutputDir(output);
  const created = spec.created ?? "1970-01-01T00:00:01Z";
  const onEvent = input.onEvent;
  const ctx: LayerContext = {
    store: closure.store,
    mtime: epochSeconds(created),
    sourceDir: input.configDir,
    onBytes: onEvent && ((bytes) => onEvent({ type: "progress", bytes })),
  };
  const entrypoint = resolveEntrypoint(spec, closure);
  if (entrypoint) new ImageView(closure, plan.layers.flatMap((l) => layerContent(l).entries)).checkEntrypoint(entrypoint);
  const jobs = plan.layers.map((layer, index) => {
    const content = layerContent(layer);
    return { index, layer, content, bytes: layer.kind === "store" ? layer.size : 0, key: layerKey(content, ctx, spec.compression) };
  });
  return { spec, output, created, entrypoint, ctx, mediaType: MEDIA_TYPES[spec.compression], jobs };
}

function finishImage(p: Prepared, plan: LayerPlan, layers: LayerDescriptor[]): BuiltImage & { repoTag: string } {
  const history: HistoryEntry[] = p.jobs.map((j) => ({ created: p.created, created_by: "layerpack", comment: historyComment(j.layer) }));
  const config = Buffer.from(
    canonicalJson(imageConfig({ spec: p.spec, entrypoint: p.entrypoint, created: p.created, diffIds: layers.map((l) => l.diffId), history })),
  );
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  const repoTag = `${p.spec.name}:${p.spec.tag ?? planTag(plan)}`;
  return { config, configDigest, repoTags: [repoTag], layers, repoTag };
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
  let blob: BlobResult;
  try {
    blob = await produceLayer(target, job.content, p.spec, p.ctx);
  } catch (err) {
    fs.closeSync(target.fd);
    fs.rmSync(temp, { force: true });
    throw err;
  }
  fs.closeSync(target.fd);
  return cache.putLayer(job.key, temp, { ...describe(blob, p.mediaType), tarSize: blob.tarSize });
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
  for (const job of p.jobs) {
    const hit = cache.getLayer(job.key);
    if (hit) blobs.set(job.index, hit);
  }
  const misses = p.jobs.filter((j) => !blobs.has(j.index)).sort((a, b) => b.bytes - a.bytes || a.index - b.index);
  await runPool(misses, input.concurrency ?? os.availableParallelism(), async (job) => {
    input.onEvent?.({ type: "layer-start", index: job.index, count, items: job.content.items.length, bytes: job.bytes });
    const built = await buildIntoCache(job, p, cache);
    blobs.set(job.index, built);
    stats.rebuilt++;
    stats.bytesWritten += built.size;
    input.onEvent?.({ type: "layer-done", index: job.index, count, blob: built, cached: false });
  });
  for (const job of p.jobs) {
    if (misses.includes(job)) continue;
    stats.reused++;
    input.onEvent?.({ type: "layer-done", index: job.index, count, blob: blobs.get(job.index)!, cached: true });
  }
  const layers = p.jobs.map((j) => describe(blobs.get(j.index)!, p.mediaType));
  const image = finishImage(p, input.plan, layers);

  const stampFile = path.join(cache.dir, "outputs", `${createHash("sha256").update(p.output).digest("hex")}.json`);
  const before = outputStamp(p.output, image);
  if (before !== undefined && fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === before) {
    stats.upToDate = true;
    input.onEvent?.({ type: "output", path: p.output, upToDate: true });
    return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, layers, stats };
  }
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
  return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, layers, stats };
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
            blob = await produceLayer(target, job.content, p.spec, p.ctx);
            archive.addLayerFile({ ...describe(blob, p.mediaType), file });
          } finally {
            fs.closeSync(target.fd);
            fs.rmSync(file, { force: true });
          }
        } else {
          blob = await archive.addLayer(p.mediaType, (target) => produceLayer(target, job.content, p.spec, p.ctx));
        }
        stats.rebuilt++;
        stats.bytesWritten += blob.size;
        input.onEvent?.({ type: "layer-done", index: job.index, count, blob, cached: false });
        layers.push(describe(blob, p.mediaType));
      }
      const image = finishImage(p, input.plan, layers);
      archive.finish(image);
      input.onEvent?.({ type: "output", path: p.output, upToDate: false });
      return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, layers, stats };
    } finally {
      archive.close();
    }
  });
}

export async function buildImage(input: BuildInput): Promise<BuildResult> {
  const p = prepare(input);
  return input.cache ? buildCached(input, p, input.cache) : buildStreaming(input, p);
}
