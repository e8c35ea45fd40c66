/**
 * Writing the output from cache blobs: the docker archive, OCI layout or archive, or a registry push. A reused blob
 * is checked against its digest when an output reads it (a push reads only what the registry lacks); a damaged one
 * is built again. File outputs are stamped so that a rebuild of the same image leaves them alone.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";
import type { CachedLayer, LayerCache } from "../cache/cache.ts";
import { placeFile, readCacheFile } from "../cache/files.ts";
import { canonicalJson } from "./config.ts";
import { writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import { OCI_MEDIA_TYPES, type BuiltImage } from "./types.ts";
import { builtImage } from "./image-value.ts";
import { fileHasDigest, ociLayoutHas, ociManifest, writeOciArchive, writeOciLayout, type ImageBlobs } from "./oci-layout.ts";
import type { PushResult } from "../registry/push.ts";
import { outputClient } from "../registry/client.ts";
import { attachArtifact } from "../oci/referrers.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { sha256Digest } from "../util/digest.ts";
import { sbomArtifacts, sbomDocuments, type SbomDocument } from "./sbom-output.ts";
import { CACHE_ARTIFACT_TYPE, CACHE_RECORD_ANNOTATION, makeRecord, recordBytes } from "../cache/record.ts";
import { buildCounted, type Job, type Prepared } from "./jobs.ts";
import type { BuildInput, BuildResult, BuildStats } from "./build.ts";
import { sha256Hex } from "../util/digest.ts";
import { makeDirs } from "../util/dirs.ts";

/**
 * Identity of a written output, so a rebuild that would write the same bytes again can leave it alone: what the
 * file holds (the image, its tags and layers, and `content`, the digest of the rest: an OCI archive's manifest,
 * whose annotations the layers do not show, and its SBOM artifacts) and the file as written (device, inode, size,
 * mtime). Not the ctime: the rename into place and the hard link that keeps a docker archive in the cache as a pack
 * move it, so every no-op build would copy the archive again.
 */
function outputStamp(file: string, image: BuiltImage, content: string | undefined): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    const written = { size: `${st.size}`, dev: `${st.dev}`, ino: `${st.ino}`, mtime: `${st.mtimeNs}` };
    return canonicalJson({ image: image.configDigest, tags: image.repoTags, layers: image.layers.map((l) => l.digest), ...(content ? { content } : {}), ...written });
  } catch {
    return undefined;
  }
}

/** OutputStamp's `content` of an OCI archive: its manifest and artifacts (a docker archive's follow from the image). */
export function archiveContent(image: BuiltImage, artifacts: readonly { manifest: Buffer }[]): string {
  return sha256Hex(canonicalJson([sha256Hex(ociManifest(image)), ...artifacts.map((a) => sha256Hex(a.manifest))]));
}


function stampPath(cache: LayerCache, output: string, kind = "json"): string {
  return path.join(cache.dir, "outputs", `${sha256Hex(output)}.${kind}`);
}

/**
 * Records the output's identity; `written` is the file as written (a temp name about to be renamed to `output`: the
 * rename keeps its inode, size and mtime), `content` as outputStamp takes it.
 */
export function writeStamp(cache: LayerCache, image: BuiltImage, at: { output: string; written?: string; content?: string }): void {
  const { output, written = output } = at;
  const stamp = outputStamp(written, image, at.content);
  if (stamp === undefined) return;
  const file = stampPath(cache, output);
  // Temp + rename: writing a FIFO someone put in the stamp's place would block until it has a reader.
  const temp = cache.tempPath("stamp");
  try {
    makeDirs(path.dirname(file));
    fs.writeFileSync(temp, stamp);
    placeFile(temp, file);
  } catch {
    fs.rmSync(temp, { force: true });
    // A stamp only lets the next build skip rewriting an unchanged output: the image is in place either way.
  }
}

/** Whether `output` is a file this cache wrote with exactly this image (and `content`), untouched since. */
export function upToDateFile(cache: LayerCache, output: string, what: { image: BuiltImage; content: string | undefined }): boolean {
  const stamp = outputStamp(output, what.image, what.content);
  const file = stampPath(cache, output);
  return stamp !== undefined && readCacheFile(file)?.toString("utf8") === stamp;
}

/**
 * A cached blob turned out damaged or gone when an output read it: forget it and build the layer again. The image
 * (manifest, diff_ids) was made from the old digest, so a different result means the inputs changed under us.
 */
async function rebuildDamaged(run: CachedRun, job: Job, old: CachedLayer): Promise<CachedLayer> {
  const { p, cache, stats, fresh } = run;
  cache.dropLayer(job.key, old);
  // Reported and counted as any build of a layer is (it was reported reused a moment ago).
  const rebuilt = await buildCounted(job, p, { cache, onEvent: run.input.onEvent, stats });
  if (rebuilt.digest !== old.digest) {
    throw new BuildError(`layer ${job.index + 1} was rebuilt as ${rebuilt.digest}, not ${old.digest}: did its inputs change during the build? Build again`);
  }
  if (!fresh.has(job.index)) stats.reused--;
  fresh.add(job.index);
  return rebuilt;
}

/** A build through the cache, once every layer is there: what the outputs assemble the image from. */
export interface CachedRun {
  input: BuildInput;
  p: Prepared;
  cache: LayerCache;
  /** Each job's blob, by job index. */
  blobs: Map<number, CachedLayer>;
  /** The jobs built in this run (the others were reused). */
  fresh: Set<number>;
  stats: BuildStats;
  /** The image's SBOM documents, when the build already made them (an OCI archive's stamp holds them). */
  sboms?: SbomDocument[];
}

/**
 * A layer a cache source holds that the push target could neither find nor mount after all: built here, and it
 * must come out as the record said (the manifest already names its digest).
 */
async function buildRemote(run: CachedRun, job: Job, remote: CachedLayer): Promise<CachedLayer> {
  const built = await buildCounted(job, run.p, { cache: run.cache, onEvent: run.input.onEvent, stats: run.stats });
  if (built.digest !== remote.digest) {
    throw new BuildError(`layer ${job.index + 1}: the cache record from ${remote.remote!.registry}/${remote.remote!.repository} says ${remote.digest}, but it builds as ${built.digest}; that record is wrong — build again with --no-cache-from`);
  }
  run.blobs.set(job.index, built);
  run.stats.remote--;
  run.stats.reused--;
  run.fresh.add(job.index);
  return built;
}

/** The cache record of this build's own layers (the base's are keyed by digest and described by the base). */
const buildRecord = (run: CachedRun) =>
  makeRecord(
    run.p.jobs
      .filter((j) => !j.base)
      .map((j) => {
        // NAR facts only when this build computes them for every layer (wantNar): a cache hit may or may not carry
        // them, and the record, part of the output, must not depend on what the cache held.
        const { nar, ...layer } = run.blobs.get(j.index)!;
        return { key: j.portableKey, layer: run.p.wantNar && nar ? { ...layer, nar } : layer };
      }),
  );

/** Pushes the cache record of this build's layers beside the image; a failure is a warning (the image is pushed). */
async function publishRecord(run: CachedRun, manifest: { digest: string; size: number }): Promise<void> {
  const { p, input } = run;
  const record = buildRecord(run);
  const ref = parseReference(p.output);
  try {
    const client = outputClient(p.spec.output, { ref: p.output, env: input.env, signal: input.signal });
    await attachArtifact(client, {
      subject: { mediaType: OCI_MEDIA_TYPES.manifest, ...manifest },
      artifactType: CACHE_ARTIFACT_TYPE,
      blob: { data: recordBytes(record), mediaType: CACHE_ARTIFACT_TYPE },
    });
  } catch (err) {
    // Interrupted: the command stops, not a warning after which it reports success.
    input.signal?.throwIfAborted();
    p.warnings.push(`the cache record for ${ref.registry}/${ref.repository} was not pushed (${(err as Error).message}); the image was, and later builds will build its layers instead of reusing them`);
  }
}

/** A push by the manifest's digest alone (the reference without its tag): the index is tagged afterwards. */
function untaggedPush(output: CachedRun["p"]["spec"]["output"], manifest: Buffer) {
  const { tag: _tag, ...ref } = parseReference(output.ref!);
  return { output: { ...output, ref: formatReference(ref) }, tags: [sha256Digest(manifest)] };
}

/** Pushes each SBOM as a referrer of the image manifest; unlike the cache record, a failure fails the build. */
async function pushSboms(run: CachedRun, docs: readonly SbomDocument[], manifest: { digest: string; size: number }): Promise<void> {
  if (docs.length === 0) return;
  const client = outputClient(run.p.spec.output, { ref: run.p.output, env: run.input.env, signal: run.input.signal });
  for (const d of docs) {
    await attachArtifact(client, { subject: { mediaType: OCI_MEDIA_TYPES.manifest, ...manifest }, artifactType: d.mediaType, blob: { data: d.data, mediaType: d.mediaType } });
  }
}

/** Assembles a docker archive from cache blobs. */
export async function dockerOutput(run: CachedRun, image: BuiltImage): Promise<void> {
  const { p, cache, blobs } = run;
  await writeAtomically(p.output, async (temp) => {
    const archive = new DockerArchiveWriter(temp, p.ctx.mtime);
    try {
      for (const job of p.jobs) {
        const blob = blobs.get(job.index)!;
        if (archive.addLayerFile(blob)) continue;
        const rebuilt = await rebuildDamaged(run, job, blob);
        if (!archive.addLayerFile(rebuilt)) throw new BuildError(`layer ${job.index + 1}: the rebuilt blob ${rebuilt.file} does not match its digest`);
      }
      archive.finish(image);
    } finally {
      archive.close();
    }
  });
  writeStamp(cache, image, { output: p.output });
}

/**
 * OCI layout / archive and registry outputs, assembled from cache blobs. A reused blob is checked against its
 * digest when an output reads it (a push reads only what the registry lacks); a damaged one is built again.
 */
export async function ociOutput(run: CachedRun, image: BuiltImage & { repoTag: string }): Promise<BuildResult> {
  const { input, p, cache, blobs, fresh, stats } = run;
  const format = p.spec.output.format;
  const result = (push?: PushResult): BuildResult => ({
    output: p.output, imageId: image.configDigest, repoTag: image.repoTag, repoTags: image.repoTags, layers: image.layers, stats, ...(push ? { push } : {}),
    ...(artifacts.length > 0 ? { artifacts: artifacts.map((a) => sha256Digest(a.manifest)) } : {}),
    image: builtImage(image, {
      source: p.output,
      kind: format === "registry" ? "registry" : format,
      // A layout's own blobs outlive a temporary cache; other outputs' layers stay in the cache.
      where: (i) => (format === "oci-layout" ? { file: path.join(p.output, "blobs", "sha256", image.layers[i]!.digest.slice(7)) } : { file: blobs.get(p.jobs[i]!.index)!.file, offset: blobs.get(p.jobs[i]!.index)!.offset ?? 0 }),
    }),
  });
  const sboms = run.sboms ?? sbomDocuments(p, image);
  const artifacts = format === "registry" ? [] : sbomArtifacts(sboms, image);
  // The layout keeps this build's cache record beside the image, so it can be a cache source (`oci:DIR`).
  const attachments = format === "oci-layout" && p.spec.cache.publish ? [{ annotation: CACHE_RECORD_ANNOTATION, data: recordBytes(buildRecord(run)) }] : [];
  const untagged = input.untagged === true;
  // (A platform's image of a multi-platform build is always written: the index over the platforms decides.)
  if (format === "oci-layout" && !untagged && ociLayoutHas(p.output, { ...image, artifacts, attachments }, stampPath(cache, p.output, "blobs.json"))) {
    stats.upToDate = true;
    input.onEvent?.({ type: "output", path: p.output, upToDate: true });
    return result();
  }
  const layerFile = async (index: number): Promise<string> => {
    const job = p.jobs[index]!;
    let blob = blobs.get(index)!;
    if (blob.remote) return (await buildRemote(run, job, blob)).file;
    // A layer kept inside a docker archive pack becomes a loose blob file first: layouts link whole files.
    const loose = blob.offset !== undefined ? cache.loosen(job.key, blob) : blob;
    if (loose && (fresh.has(index) || (await fileHasDigest(loose.file, loose.digest, loose.size)))) {
      blobs.set(index, loose);
      return loose.file;
    }
    blob = await rebuildDamaged(run, job, blob);
    blobs.set(index, blob);
    return blob.file;
  };
  const withFiles: ImageBlobs & { manifest: Buffer; manifestMediaType: string } = { ...image, layerFile, manifest: ociManifest(image), manifestMediaType: OCI_MEDIA_TYPES.manifest, artifacts };
  let push: PushResult | undefined;
  if (format === "oci-layout") {
    // A platform's image of a multi-platform build: its blobs only; the index goes under the tags (multi-platform.ts).
    const tagged = untagged ? { ...withFiles, repoTags: [] } : withFiles;
    await writeOciLayout({ ...tagged, attachments }, p.output, stampPath(cache, p.output, "blobs.json"));
  }
  else if (format === "oci-archive") await writeOciArchive(withFiles, p.output, p.ctx.mtime);
  else {
    const { pushToRegistry } = await import("../registry/output.ts"); // the registry client only for pushes
    // Layers a cache source holds in another repository of this registry are mounted from there.
    const mounts = Object.fromEntries([...blobs.values()].flatMap((b) => (b.remote ? [[b.digest, b.remote.repository]] : b.mountFrom ? [[b.digest, b.mountFrom]] : [])));
    const byDigest = input.untagged ? untaggedPush(p.spec.output, withFiles.manifest) : undefined;
    push = await pushToRegistry(withFiles, byDigest?.output ?? p.spec.output, { env: input.env, cacheDir: cache.dir, onEvent: input.onEvent, mounts, signal: input.signal, ...(byDigest ? { tags: byDigest.tags } : {}) });
    if (p.spec.cache.publish) await publishRecord(run, { digest: push.digest, size: withFiles.manifest.length });
    await pushSboms(run, sboms, { digest: push.digest, size: withFiles.manifest.length });
  }
  if (format === "oci-archive") writeStamp(cache, image, { output: p.output, content: archiveContent(image, artifacts) });
  input.onEvent?.({ type: "output", path: p.output, upToDate: false });
  return result(push);
}

