/**
 * The execute stage: plan + closure -> image. Each layer is a job keyed by what shapes its bytes (layer-key.ts).
 * With a cache, hits are reused without reading the store; misses are built concurrently (largest first, up to the
 * number of cores, so compression runs on every core) into cache blobs, then the output is assembled from blobs.
 * Without a cache, layers stream straight into the docker archive, each byte written once.
 */
import * as fs from "node:fs";
import { BuildError } from "../errors.ts";
import * as os from "node:os";
import * as path from "node:path";
import type { ImageSpec } from "../config/schema.ts";
import { atKey, type Locate } from "../config/format.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan } from "../plan/types.ts";
import { LayerCache, type CachedLayer } from "../cache/cache.ts";
import { createBlobFile, type BlobResult } from "./sink.ts";
import type { LayerWriteResult } from "./layer.ts";
import { unmatchedPermsWarnings } from "./perms.ts";
import { writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import type { BuiltImage, LayerDescriptor } from "./types.ts";
import type { Image } from "../oci/image.ts";
import { builtImage } from "./image-value.ts";
import type { PushEvent, PushResult } from "../registry/push.ts";
import { baseLayers } from "./base.ts";
import { specPlatform } from "../oci/platform.ts";
import { imageRepoTags, attachBase, buildCounted, cacheRecord, describe, finishImage, mediaTypeOf, prepare, missingNar, prepareDatabase, produceJob, recordFacts, STREAM_LIMIT, type Job, type Prepared } from "./jobs.ts";
import { archiveContent, dockerOutput, ociOutput, upToDateFile, writeStamp, type CachedRun } from "./outputs.ts";
import { runPool } from "../util/pool.ts";
import { sbomArtifacts, sbomDocuments, sbomFormats, writeSbomFiles } from "./sbom-output.ts";
import { cacheSourceNames, loadCacheSources, reuseFromSources, type RemoteCache } from "./remote-cache.ts";
import { parseReference } from "../registry/reference.ts";
import { checkRegistryReachable, registryEnv } from "../registry/output.ts";
import { tempName } from "../util/temp.ts";

export { epochSeconds, layerContent, planTag } from "./jobs.ts";

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
  /** The config file, then the files it reads (imports, previous plan): the output may never replace one. */
  inputs?: string[];
  /** How errors about the output name it (`-o FILE` when the command line gave it); default `output.path PATH`. */
  outputLabel?: string;
  /** Layer cache; without one every layer is built and streamed into the output. */
  cache?: LayerCache;
  /** Layers built at once; default: the number of cores. */
  concurrency?: number;
  /** Aborts the build; partial files are removed and the previous output stays. */
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** Where registry credentials are looked up (output.format registry); default process.env. */
  env?: Record<string, string | undefined>;
  /** Cache sources besides the config's `cache.from` (image/remote-cache.ts); false: none at all, not even those. */
  cacheFrom?: string[] | false;
  /** One platform's image of a multi-platform build (image/multi-platform.ts): pushed by digest, or its blobs
   * added to the layout, but no tag or ref name points at it. */
  untagged?: boolean;
  /** The loaded config (loadSpec's result): errors and warnings about its keys then give their file:line:column. */
  config?: { path: string; locate: Locate };
}

export interface BuildStats {
  rebuilt: number;
  reused: number;
  /** Bytes of layer blobs written (new layers only). */
  bytesWritten: number;
  /** The output already held exactly this image and was left alone. */
  upToDate: boolean;
  /** Layers reused from a cache source (counted in `reused` too): neither read nor compressed here. */
  remote: number;
  /** Tar bytes of the layers built: about the store bytes read. */
  tarBytes: number;
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
  /** The image as a value (src/oci/image.ts), for writeImage to send elsewhere without building again. */
  image: Image;
  /** A multi-platform build (image/multi-platform.ts): each platform's image; imageId is then the index's digest. */
  platforms?: { platform: { os: string; architecture: string; variant?: string }; imageId: string; layers: LayerDescriptor[] }[];
  /** SBOM files written beside a docker archive (`sbom:`); other outputs carry them as artifacts. */
  sbomFiles?: string[];
  /** The digests of the artifact manifests (SBOMs) an OCI layout or archive got for this image. */
  artifacts?: string[];
  /** Problems that did not stop the build (e.g. a `perms` glob that matched nothing), for the caller to show. */
  warnings?: string[];
}

async function buildCached(input: BuildInput, p: Prepared, cache: LayerCache): Promise<BuildResult> {
  if (input.plan.base) {
    const platform = input.plan.platform ?? specPlatform(input.spec);
    const base = await baseLayers(input.plan.base, { cwd: input.configDir, cache, platform, ...(input.env ? { env: input.env } : {}), signal: input.signal });
    attachBase(p, base.layers, base.config);
  }
  const count = p.jobs.length;
  const blobs = new Map<number, CachedLayer>();
  const stats: BuildStats = { rebuilt: 0, reused: 0, bytesWritten: 0, upToDate: false, remote: 0, tarBytes: 0 };
  // A hit that lacks NAR facts this build needs (a push after a build) gets them from the items on disk: reading
  // them is far cheaper than building the layer again.
  const lookup = async (job: Job) => {
    const hit = cache.getLayer(job.key);
    if (!hit) return;
    const nar = p.wantNar ? await missingNar(p, job.content.items, hit.nar) : undefined;
    if (nar) cache.addNar(job.key, hit, nar);
    blobs.set(job.index, nar ? { ...hit, nar: { ...hit.nar, ...nar } } : hit);
    recordFacts(p, { ...hit, nar: { ...hit.nar, ...nar } });
  };
  for (const job of p.jobs) if (!job.needsDb) await lookup(job);
  const remote = await openCacheSources(input, p);
  const pushed = p.spec.output.format === "registry" ? parseReference(p.output) : undefined;
  const target = pushed ? { registry: pushed.registry, repository: pushed.repository } : undefined;
  if (remote) stats.remote += await reuseFromSources(remote, { p, cache, blobs, ...(target ? { target } : {}) });
  // Streaming into the archive writes each new layer once, but one after another: worth it unless several layers
  // need gzip, whose CPU cost is better spread over the cores.
  const missing = p.jobs.filter((j) => !j.needsDb && !blobs.has(j.index)).length;
  if (p.spec.output.format === "docker-archive" && missing > 0 && (p.spec.compression !== "gzip" || missing === 1)) {
    return streamArchive(input, p, { cache, hits: blobs, lookup });
  }
  const build = async (job: Job) => {
    blobs.set(job.index, await buildCounted(job, p, { cache, onEvent: input.onEvent, stats }));
  };
  const misses = p.jobs.filter((j) => !j.needsDb && !blobs.has(j.index)).sort((a, b) => b.bytes - a.bytes || a.index - b.index);
  await runPool(misses, input.concurrency ?? os.availableParallelism(), build);
  // The layers holding the database, once every NAR fact is known: keyed by the database's bytes.
  for (const job of p.jobs.filter((j) => j.needsDb)) {
    prepareDatabase(job, p);
    await lookup(job);
    if (!blobs.has(job.index) && remote) stats.remote += await reuseFromSources(remote, { p, cache, blobs, jobs: [job], ...(target ? { target } : {}) });
    if (blobs.has(job.index)) continue;
    misses.push(job);
    await build(job);
  }
  for (const job of p.jobs) {
    if (misses.includes(job)) continue;
    stats.reused++;
    input.onEvent?.({ type: "layer-done", index: job.index, count, blob: blobs.get(job.index)!, cached: true });
  }
  const layers = p.jobs.map((j) => describe(blobs.get(j.index)!, mediaTypeOf(j, blobs.get(j.index)!, p)));
  const image = finishImage(p, input.plan, layers);

  // Files are stamped; a layout is checked by its index and blobs (ociOutput); a registry by HEAD requests.
  const stamped = p.spec.output.format === "docker-archive" || p.spec.output.format === "oci-archive";
  // An OCI archive's SBOMs are part of its stamp: made once, for the check and for the write that may follow.
  const sboms = p.spec.output.format === "oci-archive" ? sbomDocuments(p, image) : undefined;
  const content = sboms ? archiveContent(image, sbomArtifacts(sboms, image)) : undefined;
  if (stamped && upToDateFile(cache, p.output, { image, content })) {
    stats.upToDate = true;
    input.onEvent?.({ type: "output", path: p.output, upToDate: true });
    return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats, image: fromBlobs(image, p, blobs) };
  }
  const run: CachedRun = { input, p, cache, blobs, fresh: new Set(misses.map((j) => j.index)), stats, ...(sboms ? { sboms } : {}) };
  if (p.spec.output.format !== "docker-archive") return ociOutput(run, image);
  await dockerOutput(run, image);
  input.onEvent?.({ type: "output", path: p.output, upToDate: false });
  return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats, image: fromBlobs(image, p, blobs) };
}

/** The cache sources' records, when the build has any sources (a registry output always has its own tag). */
async function openCacheSources(input: BuildInput, p: Prepared): Promise<RemoteCache | undefined> {
  const { names, quiet } = cacheSourceNames(input, imageRepoTags(p.spec, input.plan));
  if (names.length === 0) return undefined;
  const platform = input.plan.platform ?? specPlatform(input.spec);
  const remote = await loadCacheSources(names, {
    cwd: input.configDir,
    quiet,
    platform,
    signal: input.signal,
    ...(input.env ? { env: input.env } : {}),
    ...(p.spec.output.format === "registry" && p.spec.output.insecure ? { insecureRegistry: parseReference(p.output).registry } : {}),
  });
  p.warnings.push(...remote.warnings.splice(0));
  return remote.size > 0 ? remote : undefined;
}

/** The built image as a value, its layers read from the cache's blobs and packs. */
const fromBlobs = (image: BuiltImage, p: Prepared, blobs: Map<number, CachedLayer>): Image =>
  builtImage(image, { source: p.output, kind: "docker-archive", where: (i) => ({ file: blobs.get(p.jobs[i]!.index)!.file, offset: blobs.get(p.jobs[i]!.index)!.offset ?? 0 }) });

/**
 * Streams the docker archive in layer order: cached layers are copied in, the others written straight into it, each
 * byte once. With a cache, the finished archive becomes a pack of it (hard link), so its new layers are cached
 * without being written twice.
 */
interface StreamOptions {
  /** Where the finished archive becomes a pack; without one nothing is cached. */
  cache?: LayerCache;
  /** Cached layers to copy in, by job index. */
  hits?: Map<number, CachedLayer>;
  /** Looks a database job up in the cache once its key is known. */
  lookup?: (job: Job) => Promise<void>;
}

async function streamArchive(input: BuildInput, p: Prepared, opts: StreamOptions = {}): Promise<BuildResult> {
  const { cache, hits = new Map<number, CachedLayer>(), lookup } = opts;
  const count = p.jobs.length;
  const stats: BuildStats = { rebuilt: 0, reused: 0, bytesWritten: 0, upToDate: false, remote: 0, tarBytes: 0 };
  return writeAtomically(p.output, async (temp) => {
    const archive = new DockerArchiveWriter(temp, p.ctx.mtime);
    try {
      const layers: LayerDescriptor[] = [];
      const records: { key: string; digest: string; record: Omit<CachedLayer, "file" | "offset"> }[] = [];
      for (const job of p.jobs) {
        if (job.needsDb) {
          prepareDatabase(job, p);
          await lookup?.(job);
        }
        const hit = hits.get(job.index);
        if (hit && archive.addLayerFile(hit)) {
          stats.reused++;
          input.onEvent?.({ type: "layer-done", index: job.index, count, blob: hit, cached: true });
          layers.push(describe(hit, mediaTypeOf(job, hit, p)));
          // A layer from an older pack moves to this one, so the older pack can go once nothing points at it.
          if (hit.offset !== undefined) records.push({ key: job.key, digest: hit.digest, record: cacheRecord(job, hit, p.mediaType) });
          continue;
        }
        if (hit) cache?.dropLayer(job.key, hit);
        input.onEvent?.({ type: "layer-start", index: job.index, count, items: job.content.items.length, bytes: job.bytes });
        let blob: BlobResult & LayerWriteResult;
        if (job.bytes > STREAM_LIMIT) {
          const file = `${temp}.layer-${job.index}`;
          const target = createBlobFile(file);
          try {
            blob = await produceJob(target, job, p);
            if (!archive.addLayerFile({ ...describe(blob, p.mediaType), file })) throw new BuildError(`layer ${job.index + 1}: cannot copy ${file} into the archive`);
          } finally {
            fs.closeSync(target.fd);
            fs.rmSync(file, { force: true });
          }
        } else {
          blob = await archive.addLayer(p.mediaType, (target) => produceJob(target, job, p));
        }
        stats.rebuilt++;
        stats.bytesWritten += blob.size;
        stats.tarBytes += blob.tarSize;
        input.onEvent?.({ type: "layer-done", index: job.index, count, blob, cached: false });
        layers.push(describe(blob, p.mediaType));
        records.push({ key: job.key, digest: blob.digest, record: cacheRecord(job, blob, p.mediaType) });
      }
      const image = finishImage(p, input.plan, layers);
      archive.finish(image);
      if (cache) {
        cache.adoptPack(temp, records.map((r) => ({ key: r.key, offset: archive.offsetOf(r.digest)!, layer: r.record })));
        writeStamp(cache, image, { output: p.output, written: temp });
      }
      input.onEvent?.({ type: "output", path: p.output, upToDate: false });
      // The layers stay where they were written: inside the archive, at their offsets.
      const offsets = layers.map((l) => archive.offsetOf(l.digest)!);
      const value = builtImage(image, { source: p.output, kind: "docker-archive", where: (i) => ({ file: p.output, offset: offsets[i]! }) });
      return { output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers, stats, image: value };
    } finally {
      archive.close();
    }
  });
}

export async function buildImage(given: BuildInput): Promise<BuildResult> {
  const input = { ...given, env: registryEnv(given.spec, given.env ?? process.env) };
  const p = prepare(input);
  // One platform of several: buildPlatforms checked the registry once for all of them.
  if (!input.untagged) await checkRegistryReachable(input.spec, input.env, input.signal);
  let result = await buildPrepared(input, p);
  if (p.spec.output.format === "docker-archive" && sbomFormats(p.spec).length > 0) {
    const image = { config: result.image.configBytes(), configDigest: result.imageId, repoTags: result.repoTags, repoTag: result.repoTag, layers: result.layers };
    result = { ...result, sbomFiles: await writeSbomFiles(result.output, sbomDocuments(p, image)) };
  }
  const warnings = [...p.warnings, ...unmatchedPermsWarnings(input.spec.perms ?? [], p.permsMatched)].map((w) => (typeof w === "string" ? w : atKey(input.config?.locate, w.key, w.text)));
  return warnings.length > 0 ? { ...result, warnings } : result;
}

async function buildPrepared(input: BuildInput, p: Prepared): Promise<BuildResult> {
  if (input.cache) return buildCached(input, p, input.cache);
  // A base image's layers come through the cache, so a build on one always has one.
  if (p.spec.output.format === "docker-archive" && !input.plan.base) return streamArchive(input, p);
  // OCI outputs are assembled from blobs: without a cache, a temporary one (beside a file output, so layout blobs
  // can be hard links) is removed afterwards.
  const base = p.spec.output.format === "registry" ? os.tmpdir() : path.dirname(p.output);
  const dir = path.join(base, tempName(".layerpack-nocache"));
  fs.mkdirSync(dir);
  try {
    return await buildCached(input, p, new LayerCache(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
