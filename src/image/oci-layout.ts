/**
 * OCI image layout output (FORMATS.md §3): a directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) or the
 * same as a tar (an oci-archive, as skopeo and podman read it).
 *
 * Decisions:
 * - One index entry per tag, all pointing at the same manifest; `org.opencontainers.image.ref.name` is `name:tag`
 *   (what skopeo's `oci:DIR:name:tag` writes and podman load names the image by) and `io.containerd.image.name`
 *   the fully qualified `docker.io/library/name:tag` form containerd expects.
 * - A new directory is built beside the target and renamed into place. An existing layout gets the image added:
 *   missing blobs are added (each by temp + rename; extra blobs never make a layout invalid), entries with the same
 *   ref name are replaced, other entries kept, and index.json is replaced last, atomically: readers see the old
 *   image or the new one. Blobs no longer referenced stay (`umoci gc` removes them).
 * - An existing target that is not a layout (a file, or a non-empty directory without `oci-layout`) is an error.
 * - Layer blobs are hard links to the cache's read-only blobs when they share a file system, else copies.
 * - Reuse is decided by content, not by presence: the config and manifest blobs are compared byte for byte, and
 *   each layer blob must be intact (see BlobStamps). A damaged blob is written again from a checked cache blob.
 * - An oci-archive is always written whole (temp file + rename); an existing one is replaced.
 */
import { TarFileWriter } from "./tar-file.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";
import { canonicalJson } from "./config.ts";
import { tempPathFor, writeAtomically } from "./atomic.ts";
import { writeError } from "./sink.ts";
import { OCI_MEDIA_TYPES, type BuiltImage, type Descriptor, type OciIndex, type OciManifest } from "./types.ts";
import { hashRegular, hashRegularSync, MAX_DOCUMENT, readRegular, stampOf } from "../oci/blob-file.ts";
import { sha256Digest } from "../util/digest.ts";
import { makeDirs } from "../util/dirs.ts";

/** An image ready to be written: its documents plus where each layer's blob file is. */
export interface ImageBlobs extends BuiltImage {
  /** The blob file of `layers[index]`, checked against its digest (a damaged cached blob is rebuilt first). */
  layerFile(index: number): Promise<string>;
  /**
   * Small blobs kept beside the image, each named by an annotation of its index entries whose value is the blob's
   * digest (layerpack's cache record). Index annotations leave the manifest, and so the image's digest, alone.
   */
  attachments?: { annotation: string; data: Buffer }[];
  /** Artifacts about the image (SBOMs): listed in the index with their artifactType, the image as subject. */
  artifacts?: ImageArtifact[];
}

/** An artifact ready to be stored: its manifest's bytes, its blobs (config `{}` and the document) and type. */
export interface ImageArtifact {
  artifactType: string;
  manifest: Buffer;
  blobs: Buffer[];
}

/** Index entries of artifacts name their subject, so an image replaced under its tags takes its artifacts along. */
const SUBJECT_ANNOTATION = "dev.layerpack.subject";

function artifactEntries(image: Pick<ImageBlobs, "artifacts">, manifest: Buffer): Descriptor[] {
  return (image.artifacts ?? []).map((a) => ({
    mediaType: OCI_MEDIA_TYPES.manifest,
    digest: sha256(a.manifest),
    size: a.manifest.length,
    artifactType: a.artifactType,
    annotations: { [SUBJECT_ANNOTATION]: sha256(manifest) },
  }));
}

const LAYOUT_FILE = `${JSON.stringify({ imageLayoutVersion: "1.0.0" })}`;
const hexOf = (digest: string) => digest.slice("sha256:".length);
const sha256 = sha256Digest;

/** The image manifest bytes (canonical JSON, so the manifest digest is reproducible). */
export function ociManifest(image: Pick<BuiltImage, "config" | "configDigest" | "layers" | "annotations">): Buffer {
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: OCI_MEDIA_TYPES.manifest,
    config: { mediaType: OCI_MEDIA_TYPES.config, digest: image.configDigest, size: image.config.length },
    layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(image.annotations && Object.keys(image.annotations).length > 0 ? { annotations: image.annotations } : {}),
  };
  return Buffer.from(canonicalJson(manifest));
}

export function manifestDescriptor(manifest: Buffer): Descriptor {
  return { mediaType: OCI_MEDIA_TYPES.manifest, digest: sha256(manifest), size: manifest.length };
}

/** `hello:1` -> `docker.io/library/hello:1`; names with a registry host are kept. */
export function qualifiedName(repoTag: string): string {
  const first = repoTag.split("/")[0]!;
  if (repoTag.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return repoTag;
  return repoTag.includes("/") ? `docker.io/${repoTag}` : `docker.io/library/${repoTag}`;
}

function indexEntries(image: BuiltImage, manifest: Buffer, extra: Record<string, string> = {}): Descriptor[] {
  const d = manifestDescriptor(manifest);
  return image.repoTags.map((tag) => ({
    ...d,
    annotations: { ...(image.annotations ?? {}), "io.containerd.image.name": qualifiedName(tag), "org.opencontainers.image.ref.name": tag, ...extra },
  }));
}

function indexJson(manifests: Descriptor[]): Buffer {
  const index: OciIndex = { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests };
  return Buffer.from(canonicalJson(index));
}

/** The existing layout's index, or undefined when `dir` does not exist or is an empty directory. */
function existingLayout(dir: string): OciIndex | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return undefined;
  }
  const notLayout = (why: string) =>
    new BuildError(`output ${dir} exists and is not an OCI image layout (${why}); remove it or choose another output.path`);
  if (!st.isDirectory()) throw notLayout("not a directory");
  if (fs.readdirSync(dir).length === 0) return undefined;
  // Read as untrusted files: a FIFO or a huge file here must not hang or flood the build.
  const document = (name: string) => JSON.parse(readRegular(path.join(dir, name), name, { max: MAX_DOCUMENT })?.toString("utf8") ?? "") as unknown;
  try {
    const layout = document("oci-layout") as { imageLayoutVersion?: unknown } | null;
    if (typeof layout?.imageLayoutVersion !== "string") throw new Error("no imageLayoutVersion");
  } catch {
    throw notLayout("no valid oci-layout file");
  }
  try {
    const index = document("index.json") as OciIndex | null;
    if (!Array.isArray(index?.manifests)) throw new Error("no manifests");
    return index;
  } catch {
    throw notLayout("no valid index.json");
  }
}

/**
 * What we know of a layout's layer blobs: the stamp (device, inode, size, mtime, ctime) each had when we wrote it or
 * last hashed it, kept in the layer cache beside the output's stamp (never in the layout, whose files stay exactly
 * the image's). A blob whose stamp is unchanged is intact
 * without being read. A write to the blob changes its ctime, which no one can set back (unlike mtime), so a damaged
 * blob is hashed and found out. A new hard link changes ctime too (another layout linking the same cache blob): that
 * blob is hashed once more, then stamped again. A layout without stamps (older layerpack, skopeo) is hashed whole once.
 */
class BlobStamps {
  readonly #file: string | undefined;
  readonly #stamps = new Map<string, string>();
  #changed = false;

  /** `file` holds the stamps; without one (no cache) every blob is hashed. */
  constructor(file: string | undefined, read = true) {
    this.#file = file;
    if (!read || file === undefined) return;
    try {
      const data = readRegular(file, path.basename(file), { max: MAX_DOCUMENT });
      const blobs = data && (JSON.parse(data.toString("utf8")) as { blobs?: unknown }).blobs;
      if (typeof blobs === "object" && blobs !== null) {
        for (const [hex, stamp] of Object.entries(blobs)) if (typeof stamp === "string") this.#stamps.set(hex, stamp);
      }
    } catch {
      // unreadable stamps only mean hashing the blobs again
    }
  }

  /** Whether the blob of `digest` in `blobs` is intact: stamp unchanged, else its bytes hash to the digest. */
  intact(blobs: string, digest: string, size: number): boolean {
    const hex = hexOf(digest);
    const file = path.join(blobs, hex);
    const now = currentStamp(file);
    if (now !== undefined && this.#stamps.get(hex) === now) return true;
    const hashed = hashRegularSync(file, size);
    if (hashed?.digest !== digest) {
      this.#changed = this.#stamps.delete(hex) || this.#changed;
      return false;
    }
    this.#set(hex, hashed.stamp);
    return true;
  }

  /** Records a blob just placed from a checked source. */
  placed(blobs: string, digest: string): void {
    const now = currentStamp(path.join(blobs, hexOf(digest)));
    if (now !== undefined) this.#set(hexOf(digest), now);
  }

  #set(hex: string, stamp: string): void {
    if (this.#stamps.get(hex) === stamp) return;
    this.#stamps.set(hex, stamp);
    this.#changed = true;
  }

  /** Writes the stamps when they changed. Best effort: without them, the next build hashes the blobs again. */
  save(): void {
    const file = this.#file;
    if (!this.#changed || file === undefined) return;
    const temp = tempPathFor(file);
    try {
      makeDirs(path.dirname(file));
      fs.writeFileSync(temp, canonicalJson({ blobs: Object.fromEntries(this.#stamps) }));
      fs.renameSync(temp, file);
      this.#changed = false;
    } catch {
      fs.rmSync(temp, { force: true });
    }
  }
}

function currentStamp(file: string): string | undefined {
  try {
    const st = fs.lstatSync(file, { bigint: true });
    return st.isFile() ? stampOf(st) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `file` is a regular file holding exactly `data` (a small blob: config or manifest). */
function hasBytes(file: string, data: Buffer): boolean {
  try {
    return readRegular(file, "blob", { size: data.length })?.equals(data) === true;
  } catch {
    return false;
  }
}

/** Puts `source` at `target` (a blob path) by hard link, or by copy across file systems; temp + rename. */
function placeBlob(source: string, target: string): void {
  const temp = tempPathFor(target);
  try {
    try {
      fs.linkSync(source, temp);
    } catch {
      fs.copyFileSync(source, temp);
      fs.chmodSync(temp, 0o444);
    }
    fs.renameSync(temp, target);
  } catch (cause) {
    fs.rmSync(temp, { force: true });
    throw writeError(target, cause);
  }
}

function writeBlobData(target: string, data: Buffer): void {
  const temp = tempPathFor(target);
  try {
    fs.writeFileSync(temp, data, { mode: 0o444 });
    fs.renameSync(temp, target);
  } catch (cause) {
    fs.rmSync(temp, { force: true });
    throw writeError(target, cause);
  }
}

/** Adds the image's blobs to `dir` (a layout, or a new one being built); returns the index entries for it. */
/**
 * The layout's blobs/sha256 directory, made where missing. An existing layout is not ours: a symlink as blobs/ or
 * blobs/sha256/ would put the image's blobs wherever it points, outside the output.
 */
export function blobsDirectory(dir: string): string {
  let at = dir;
  for (const part of ["blobs", "sha256"]) {
    at = path.join(at, part);
    const st = fs.lstatSync(at, { throwIfNoEntry: false });
    if (st === undefined) makeDirs(at);
    else if (!st.isDirectory()) {
      throw new BuildError(`output ${dir}: ${path.relative(dir, at)} is ${st.isSymbolicLink() ? "a symlink" : "not a directory"}; blobs are written only into the layout's own directories — remove it or choose another output.path`);
    }
  }
  return at;
}

async function addBlobs(dir: string, image: ImageBlobs, stamps: BlobStamps): Promise<Descriptor[]> {
  const blobs = blobsDirectory(dir);
  const manifest = ociManifest(image);
  for (let i = 0; i < image.layers.length; i++) {
    const layer = image.layers[i]!;
    if (stamps.intact(blobs, layer.digest, layer.size)) continue;
    placeBlob(await image.layerFile(i), path.join(blobs, hexOf(layer.digest)));
    stamps.placed(blobs, layer.digest);
  }
  for (const data of smallBlobs(image, manifest)) {
    const target = path.join(blobs, hexOf(sha256(data)));
    if (!hasBytes(target, data)) writeBlobData(target, data);
  }
  return layoutEntries(image, manifest);
}

/** The blobs of an image besides its layers: config, manifest, attachments, artifacts' manifests and blobs. */
const smallBlobs = (image: Omit<ImageBlobs, "layerFile">, manifest: Buffer): Buffer[] => [
  image.config,
  manifest,
  ...(image.attachments ?? []).map((a) => a.data),
  ...(image.artifacts ?? []).flatMap((a) => [...a.blobs, a.manifest]),
];

/** The index entries writing `image` gives: one per tag (with the attachments' annotations), one per artifact. */
function layoutEntries(image: Omit<ImageBlobs, "layerFile">, manifest: Buffer): Descriptor[] {
  const extra: Record<string, string> = {};
  for (const a of image.attachments ?? []) extra[a.annotation] = sha256(a.data);
  return [...indexEntries(image, manifest, extra), ...artifactEntries(image, manifest)];
}

// An existing index.json is not ours: an entry may be anything.
const refName = (d: Descriptor | null | undefined) => d?.annotations?.["org.opencontainers.image.ref.name"];

/** Writes (or adds to) the OCI image layout `dir`; see the module comment for what happens to an existing one. */
export async function writeOciLayout(image: ImageBlobs, dir: string, stampsFile?: string): Promise<void> {
  const existing = existingLayout(dir);
  if (existing === undefined) {
    await writeAtomically(dir, async (temp) => {
      fs.mkdirSync(temp, { mode: 0o755 });
      const stamps = new BlobStamps(stampsFile, false);
      const entries = await addBlobs(temp, image, stamps);
      stamps.save();
      fs.writeFileSync(path.join(temp, "oci-layout"), LAYOUT_FILE);
      fs.writeFileSync(path.join(temp, "index.json"), indexJson(entries));
    });
    return;
  }
  const stamps = new BlobStamps(stampsFile);
  const entries = await addBlobs(dir, image, stamps);
  stamps.save();
  const ours = new Set(image.repoTags);
  const images = existing.manifests.filter((m) => !ours.has(refName(m) ?? "") && m?.annotations?.[SUBJECT_ANNOTATION] === undefined);
  // Our artifacts stay while their image does, but this image's are this write's own: an SBOM format dropped from
  // the config leaves with the write, as a fresh layout would not have it.
  const own = sha256(ociManifest(image));
  const live = new Set(images.map((m) => m?.digest));
  live.delete(own);
  const fresh = new Set(entries.map((m) => m.digest));
  // An untagged write (one platform of several) keeps every artifact: the index written next decides.
  const untagged = image.repoTags.length === 0;
  const artifacts = existing.manifests.filter((m) => m?.annotations?.[SUBJECT_ANNOTATION] !== undefined && (untagged || live.has(m.annotations[SUBJECT_ANNOTATION])) && !fresh.has(m.digest));
  const kept = [...images, ...artifacts];
  const indexFile = path.join(dir, "index.json");
  const temp = tempPathFor(indexFile);
  try {
    fs.writeFileSync(temp, indexJson([...kept, ...entries]));
    fs.renameSync(temp, indexFile);
  } catch (cause) {
    fs.rmSync(temp, { force: true });
    throw writeError(indexFile, cause);
  }
}

/**
 * Whether `dir` already holds exactly what writing this image would leave: under each tag the very index entry
 * (annotations and attachments included), this image's artifacts and no others, and every blob intact — the small
 * ones compared byte for byte, layers by stamp or else by hashing them (BlobStamps). Blobs found intact are
 * stamped, so a write that follows does not hash them again.
 */
export function ociLayoutHas(dir: string, image: Omit<ImageBlobs, "layerFile">, stampsFile?: string): boolean {
  let index: OciIndex | undefined;
  try {
    index = existingLayout(dir);
  } catch {
    return false;
  }
  if (!index) return false;
  const manifest = ociManifest(image);
  const expected = layoutEntries(image, manifest);
  const have = new Set(index.manifests.map((m) => canonicalJson(m)));
  if (!expected.every((e) => have.has(canonicalJson(e)))) return false;
  const own = sha256(manifest);
  const artifacts = index.manifests.filter((m) => m?.annotations?.[SUBJECT_ANNOTATION] === own);
  if (artifacts.length !== (image.artifacts ?? []).length) return false;
  const ours = new Set(image.repoTags);
  if (index.manifests.filter((m) => ours.has(refName(m) ?? "")).length !== image.repoTags.length) return false;
  const blobs = path.join(dir, "blobs", "sha256");
  if (!smallBlobs(image, manifest).every((data) => hasBytes(path.join(blobs, hexOf(sha256(data))), data))) return false;
  const stamps = new BlobStamps(stampsFile);
  const intact = image.layers.every((l) => stamps.intact(blobs, l.digest, l.size));
  stamps.save();
  return intact;
}

/** Whether `file` is a regular file of `size` bytes whose sha256 is `digest` (a cached blob may have been damaged). */
export async function fileHasDigest(file: string, digest: string, size: number): Promise<boolean> {
  return (await hashRegular(file, size)) === digest;
}

/**
 * Writes the layout as one tar file: `oci-layout` and `index.json` first, then `blobs/sha256/` with the config,
 * the manifest and each distinct layer in manifest order. Every entry gets `mtime` (the image's creation time).
 */
export async function writeOciArchive(image: ImageBlobs, file: string, mtime: number): Promise<void> {
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
    throw new BuildError(`output ${file} is a directory; an oci-archive is a file (use format oci-layout for a directory)`);
  }
  const manifest = ociManifest(image);
  await writeAtomically(file, async (temp) => {
    const tar = new TarFileWriter(temp, mtime);
    try {
      tar.entry("oci-layout", Buffer.from(LAYOUT_FILE));
      tar.entry("index.json", indexJson([...indexEntries(image, manifest), ...artifactEntries(image, manifest)]));
      tar.directory("blobs");
      tar.directory("blobs/sha256");
      tar.entry(`blobs/sha256/${hexOf(image.configDigest)}`, image.config, 0o444);
      tar.entry(`blobs/sha256/${hexOf(sha256(manifest))}`, manifest, 0o444);
      const written = new Set<string>([image.configDigest, sha256(manifest)]);
      for (const data of (image.artifacts ?? []).flatMap((a) => [...a.blobs, a.manifest])) {
        const digest = sha256(data);
        if (!written.has(digest)) tar.entry(`blobs/sha256/${hexOf(digest)}`, data, 0o444);
        written.add(digest);
      }
      for (let i = 0; i < image.layers.length; i++) {
        const layer = image.layers[i]!;
        if (written.has(layer.digest)) continue;
        written.add(layer.digest);
        const file = await image.layerFile(i);
        if (tar.copyEntry(`blobs/sha256/${hexOf(layer.digest)}`, { file, digest: layer.digest, size: layer.size }, 0o444) === undefined) {
          throw new BuildError(`layer blob ${file} is not ${layer.digest} (${layer.size} bytes); it changed while being copied`);
        }
      }
      tar.end();
    } finally {
      tar.close();
    }
  });
}

/**
 * An OCI layout directory (one layerpack wrote) as an oci-archive: `oci-layout` and `index.json` first, then
 * every blob by name, each entry with `mtime` — the same bytes for the same layout.
 */
export async function archiveLayout(dir: string, file: string, mtime: number): Promise<void> {
  await writeAtomically(file, async (temp) => {
    const tar = new TarFileWriter(temp, mtime);
    try {
      tar.entry("oci-layout", fs.readFileSync(path.join(dir, "oci-layout")));
      tar.entry("index.json", fs.readFileSync(path.join(dir, "index.json")));
      tar.directory("blobs");
      tar.directory("blobs/sha256");
      const blobs = path.join(dir, "blobs", "sha256");
      for (const name of fs.readdirSync(blobs).sort()) {
        const blob = path.join(blobs, name);
        const size = fs.statSync(blob).size;
        if (tar.copyEntry(`blobs/sha256/${name}`, { file: blob, digest: `sha256:${name}`, size }, 0o444) === undefined) {
          throw new BuildError(`blob ${blob} does not match its name; it changed while being archived`);
        }
      }
      tar.end();
    } finally {
      tar.close();
    }
  });
}
