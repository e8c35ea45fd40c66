/**
 * Reads an image's manifest, config and layer list from any of our outputs — an OCI layout directory, an OCI or
 * docker archive (tar) — or from a registry, for `layerpack inspect`. Layer contents are not unpacked: archives
 * are read in one streaming pass that keeps only small JSON entries and hashes the rest (and, with verifyLayers,
 * unpacks a docker archive's gzip layers on the way, for their diff_ids).
 *
 * The input is untrusted (blob-file.ts): every digest is checked before it names a blob, layout blobs are read only
 * as regular files inside blobs/sha256 (at their descriptor's size, checked against their digest), and documents
 * are limited to MAX_DOCUMENT: a hostile image gets a clear error, never a hang or unbounded memory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { LayerpackError } from "../errors.ts";
import { mib } from "../util/format.ts";
import { RegistryClient } from "../registry/client.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { OCI_MEDIA_TYPES, type Descriptor, type OciIndex } from "./types.ts";
import type { Image, Layer } from "./image.ts";
import { verifying } from "./verify.ts";
import { formatImageName, parseImageName, type ImageName } from "./name.ts";
import { formatPlatform, hostPlatform, platformMatches, type Platform } from "./platform.ts";
import { checkArchivePath, checkDescriptor, checkLayerCount, checkDigest, checkRealDirectory, DIGEST, MAX_DOCUMENT, openRegular, readRegular, sha256Of } from "./blob-file.ts";
import { archiveEntry, checkLayerEntry, readTar, type TarEntry } from "./archive-entries.ts";
import { parseShallowJson } from "../util/json.ts";

type Json = Record<string, unknown>;
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Indexes inside indexes: real images nest one level (a multi-platform index); more is a loop in disguise. */
const MAX_NESTING = 8;
const isIndex = (mediaType: unknown) => mediaType === OCI_MEDIA_TYPES.index || mediaType === DOCKER_LIST;

/** A JSON object (an index, manifest or config is never an array or a scalar). */
function parse(data: Buffer, what: string, source: string): Json {
  let value: unknown;
  try {
    value = parseShallowJson(data.toString("utf8"));
  } catch (cause) {
    throw new LayerpackError(`${source}: ${what} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new LayerpackError(`${source}: ${what} is not a JSON object`);
  return value as Json;
}

/** An index whose manifests are all descriptors with a valid digest and size: checked before any is used. */
function checkIndex(value: Json, where: string): OciIndex {
  if (!Array.isArray(value.manifests)) throw new LayerpackError(`${where}: "manifests" is not a list`);
  value.manifests.forEach((m: unknown, i) => checkDescriptor(m, where, `manifests[${i}]`));
  return value as unknown as OciIndex;
}

function checkManifest(value: Json, where: string): { config: Descriptor; layers: Descriptor[] } {
  const config = checkDescriptor(value.config, where, "config");
  if (!Array.isArray(value.layers)) throw new LayerpackError(`${where}: "layers" is not a list`);
  checkLayerCount(value.layers.length, where, '"layers"');
  const layers = value.layers.map((l: unknown, i) => checkDescriptor(l, where, `layers[${i}]`));
  return { config, layers };
}

/** Where an image's layers come from. */
interface LayerSource {
  /** How errors name the config. */
  where: string;
  /** Opens layer `i` (described by `d`) as a stream. */
  open: (d: Descriptor, i: number) => Promise<Readable>;
}

/** Joins the manifest's layers with the config's diff_ids and the history entries of non-empty layers. */
function describeLayers(manifestLayers: Descriptor[], config: Json, { where, open }: LayerSource): Layer[] {
  const rootfs = config.rootfs as Json | undefined;
  const rawIds = typeof rootfs === "object" && rootfs !== null ? rootfs.diff_ids : undefined;
  if (rawIds !== undefined && !Array.isArray(rawIds)) throw new LayerpackError(`${where}: rootfs.diff_ids is not a list`);
  const diffIds = ((rawIds as unknown[] | undefined) ?? []).map((d, i) => checkDigest(d, where, `rootfs.diff_ids[${i}]`));
  const history = (Array.isArray(config.history) ? (config.history as unknown[]) : [])
    .filter((h): h is Json => typeof h === "object" && h !== null && (h as Json).empty_layer !== true);
  if (diffIds.length > 0 && diffIds.length !== manifestLayers.length) {
    throw new LayerpackError(`${where}: rootfs.diff_ids lists ${diffIds.length} layers, the manifest ${manifestLayers.length}`);
  }
  return manifestLayers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    ...(diffIds[i] !== undefined ? { diffId: diffIds[i] } : {}),
    ...(typeof history[i]?.comment === "string" ? { comment: history[i]!.comment as string } : {}),
    open: () => open(l, i),
  }));
}

const refName = (d: Descriptor) => {
  const name = (d.annotations as Record<string, unknown> | undefined)?.["org.opencontainers.image.ref.name"];
  return typeof name === "string" ? name : undefined;
};

/** Picks the manifest in an index: by ref name when given, else the only image there is, else by platform. */
function pickFromIndex(index: OciIndex, source: string, { ref, platform }: Pick<ReadImageOptions, "ref" | "platform">): { chosen: Descriptor; platforms?: string[] } {
  // Artifacts about an image (SBOMs, cache records) are listed with their artifactType; they are not images.
  const manifests = index.manifests.filter((m) => (m as Descriptor & { artifactType?: unknown }).artifactType === undefined);
  if (ref !== undefined) {
    const hit = manifests.find((m) => refName(m) === ref);
    if (!hit) throw new LayerpackError(`${source} has no image named '${ref}'; it has: ${manifests.map(refName).filter(Boolean).join(", ") || "no named images"}`);
    return { chosen: hit };
  }
  const digests = new Set(manifests.map((m) => m.digest));
  if (digests.size === 1 && platform === undefined) return { chosen: manifests[0]! };
  if (digests.size === 0) throw new LayerpackError(`${source} holds no image`);
  if (manifests.every((m) => m.platform)) {
    // A multi-platform index: the platform asked for, else the host's (what docker and podman pull).
    const want = platform ?? hostPlatform();
    const platforms = manifests.map((m) => formatPlatform(m.platform!));
    const hit = manifests.find((m) => platformMatches(m.platform, want));
    if (!hit) throw new LayerpackError(`${source} has no image for ${formatPlatform(want)}; it has ${platforms.join(", ")}: choose one with --platform`);
    return { chosen: hit, platforms };
  }
  if (digests.size === 1) return { chosen: manifests[0]! };
  // Every command takes the name oci:DIR:REF (oci-archive:FILE:REF); only inspect has a --ref option too.
  throw new LayerpackError(`${source} holds ${digests.size} images; choose one by its ref name, as oci:DIR:REF or oci-archive:FILE:REF (inspect: --ref NAME): ${manifests.map(refName).filter(Boolean).join(", ")}`);
}

/** The files of a layout, in a directory or an archive. */
interface LayoutFiles {
  /** How errors name `name` (a path, or the archive and the entry). */
  where(name: string): string;
  /** A top-level document (oci-layout, index.json), at most MAX_DOCUMENT bytes; undefined when absent. */
  document(name: string): Buffer | undefined;
  /** A JSON blob, exactly as its (checked) descriptor says: its size and its digest. */
  blob(d: { digest: string; size: number }, what: string): Buffer;
  /** Any blob as a stream, checked against its descriptor as it is read. */
  open(d: { digest: string; size: number }): Promise<Readable>;
}

const blobName = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;

function tooBig(source: string, what: string, d: { digest: string; size: number }): LayerpackError {
  return new LayerpackError(`${source}: the ${what} blob ${d.digest} is ${mib(d.size)} by its descriptor, over the ${mib(MAX_DOCUMENT)} limit for JSON documents`);
}

function layoutDirectory(dir: string): LayoutFiles {
  return {
    where: (name) => path.join(dir, name),
    document: (name) => readRegular(path.join(dir, name), name, { max: MAX_DOCUMENT }),
    blob(d, what) {
      if (d.size > MAX_DOCUMENT) throw tooBig(dir, what, d);
      // Blobs live inside the layout: a blobs or blobs/sha256 link could point anywhere on the host.
      checkRealDirectory(path.join(dir, "blobs"), "the blobs directory");
      checkRealDirectory(path.join(dir, "blobs", "sha256"), "the blobs/sha256 directory");
      const data = readRegular(path.join(dir, blobName(d.digest)), `the ${what} blob`, d);
      if (!data) throw new LayerpackError(`${dir}: the ${what} blob ${d.digest} is missing`);
      return data;
    },
    async open(d) {
      checkRealDirectory(path.join(dir, "blobs"), "the blobs directory");
      checkRealDirectory(path.join(dir, "blobs", "sha256"), "the blobs/sha256 directory");
      const file = path.join(dir, blobName(d.digest));
      const opened = openRegular(file, "the layer blob");
      if (!opened) throw new LayerpackError(`${dir}: the layer blob ${d.digest} is missing`);
      return fs.createReadStream("", { fd: opened.fd }).pipe(verifying(d, file));
    },
  };
}

function layoutArchive(file: string, entries: Map<string, TarEntry>): LayoutFiles {
  return {
    where: (name) => `${file}: ${name}`,
    document: (name) => {
      const e = entries.get(name);
      return e === undefined ? undefined : (e.data ?? Buffer.alloc(0));
    },
    blob(d, what) {
      if (d.size > MAX_DOCUMENT) throw tooBig(file, what, d);
      const e = entries.get(blobName(d.digest));
      if (!e) throw new LayerpackError(`${file}: the ${what} blob ${d.digest} is missing`);
      if (e.size !== d.size) throw new LayerpackError(`${file}: the ${what} blob ${d.digest} is ${e.size} bytes, but its descriptor says ${d.size}`);
      if (e.digest !== d.digest) throw new LayerpackError(`${file}: the ${what} blob ${d.digest} does not match its digest`);
      if (!e.data) throw new LayerpackError(`${file}: the ${what} blob ${d.digest} is not a JSON document`);
      return e.data;
    },
    open: async (d) => (await archiveEntry(file, blobName(d.digest))).pipe(verifying(d, `${file}: ${blobName(d.digest)}`)),
  };
}

/** An OCI layout to read. */
interface Layout {
  kind: "oci-layout" | "oci-archive";
  /** The directory or archive, as messages and the image name it. */
  source: string;
  files: LayoutFiles;
}

/** Reads an OCI layout; follows nested indexes to one image manifest (`opts.ref` picks one of several). */
function readLayout({ kind, source, files }: Layout, opts: Pick<ReadImageOptions, "ref" | "platform">): Image {
  const layoutData = files.document("oci-layout");
  if (!layoutData) throw new LayerpackError(`${source}: no oci-layout file; is it an OCI image layout?`);
  if (typeof parse(layoutData, "oci-layout", source).imageLayoutVersion !== "string") throw new LayerpackError(`${files.where("oci-layout")}: no imageLayoutVersion`);
  const indexData = files.document("index.json");
  if (!indexData) throw new LayerpackError(`${source}: no index.json; is it an OCI image layout?`);
  let index = checkIndex(parse(indexData, "index.json", source), files.where("index.json"));
  let { chosen, platforms } = pickFromIndex(index, source, opts);
  const names = index.manifests.filter((m) => m.digest === chosen.digest).map(refName).filter((n): n is string => Boolean(n));
  for (let depth = 0; isIndex(chosen.mediaType); depth++) {
    if (depth === MAX_NESTING) throw new LayerpackError(`${source}: indexes nest more than ${MAX_NESTING} deep`);
    index = checkIndex(parse(files.blob(chosen, "index"), `index ${chosen.digest}`, source), files.where(blobName(chosen.digest)));
    ({ chosen, platforms = platforms } = pickFromIndex(index, source, { platform: opts.platform }));
  }
  const manifest = parse(files.blob(chosen, "manifest"), `the manifest ${chosen.digest}`, source);
  const { config: configDesc, layers } = checkManifest(manifest, files.where(blobName(chosen.digest)));
  const configData = files.blob(configDesc, "config");
  const config = parse(configData, "the config", source);
  const layerList = describeLayers(layers, config, { where: files.where(blobName(configDesc.digest)), open: (d) => files.open(d) });
  return { kind, source, names, ...(platforms ? { platforms } : {}), manifestDigest: chosen.digest, manifest, configDigest: configDesc.digest, config, configBytes: () => configData, layers: layerList };
}

/** `checked`: the entries were read with readTar's `unpack`, so the layers are checked against their diff_ids now. */
function dockerArchive(file: string, entries: Map<string, TarEntry>, { checked }: { checked: boolean }): Image {
  const data = entries.get("manifest.json")?.data;
  if (!data) throw new LayerpackError(`${file} is neither an OCI archive (no oci-layout) nor a docker archive (no manifest.json)`);
  let list: unknown;
  try {
    list = parseShallowJson(data.toString("utf8"));
  } catch (cause) {
    throw new LayerpackError(`${file}: manifest.json is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const manifest = (Array.isArray(list) ? list[0] : undefined) as { Config?: unknown; RepoTags?: unknown; Layers?: unknown } | undefined;
  if (typeof manifest !== "object" || manifest === null || !Array.isArray(manifest.Layers)) throw new LayerpackError(`${file}: manifest.json is not a docker archive manifest`);
  const where = `${file}: manifest.json`;
  checkLayerCount(manifest.Layers.length, where, "Layers");
  // Entry names, not host paths; still refused when they could not be names inside an archive.
  const configName = checkArchivePath(manifest.Config, where, "Config");
  const layerNames = manifest.Layers.map((l: unknown, i) => checkArchivePath(l, where, `Layers[${i}]`));
  const configEntry = entries.get(configName);
  if (!configEntry?.data) throw new LayerpackError(`${file}: the config ${configName} is missing`);
  const config = parse(configEntry.data, configName, file);
  const layers = layerNames.map((name): Descriptor => {
    const e = entries.get(name);
    if (!e) throw new LayerpackError(`${file}: manifest.json lists layer ${name}, which the archive does not hold`);
    // By its bytes: a name need not say (`blobs/sha256/<hex>` from newer docker save, or a layer renamed .tar).
    const mediaType = e.gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar";
    return { digest: e.digest, size: e.size, mediaType };
  });
  const names = Array.isArray(manifest.RepoTags) ? manifest.RepoTags.filter((t): t is string => typeof t === "string") : [];
  const configData = configEntry.data;
  const open = async (d: Descriptor, i: number) => (await archiveEntry(file, layerNames[i]!)).pipe(verifying(d, `${file}: ${layerNames[i]!}`));
  const described = describeLayers(layers, config, { where: `${file}: ${configName}`, open });
  const image: Image = { kind: "docker-archive", source: file, names, manifest, configDigest: configEntry.digest, config, configBytes: () => configData, layers: described };
  const checkLayers = (found: Map<string, TarEntry>) =>
    described.forEach((l, index) => {
      const name = layerNames[index]!;
      const entry = found.get(name);
      // A later pass may find another archive there: its layers are not the ones this image describes.
      if (entry?.digest !== l.digest) throw new LayerpackError(`${file}: layer ${name} changed since the archive was read (it was ${l.digest})`);
      if (l.diffId !== undefined) checkLayerEntry(file, { name, index, diffId: l.diffId }, entry);
    });
  let checking: Promise<void> | undefined;
  if (checked) checkLayers(entries);
  else image.verifyLayers = () => (checking ??= readTar(file, { unpack: true }).then(checkLayers));
  return image;
}

/** A registry answer's body, at most `max` bytes: a Content-Length over it fails before any byte is read. */
async function readBody(res: Response, max: number, what: string): Promise<Buffer> {
  const tooLarge = () => new LayerpackError(`${what}: the registry sent more than ${mib(max)}, the limit for JSON documents`);
  if (Number(res.headers.get("content-length") ?? 0) > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    total += r.value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks);
}

async function fromRegistry(text: string, opts: ReadImageOptions): Promise<Image> {
  const ref = parseReference(text);
  const client = new RegistryClient({ registry: ref.registry, repository: ref.repository, actions: "pull", ...(opts.insecure ? { insecure: true } : {}), ...(opts.env ? { env: opts.env } : {}), signal: opts.signal });
  await client.ping();
  const accept = [OCI_MEDIA_TYPES.manifest, DOCKER_MANIFEST, OCI_MEDIA_TYPES.index, DOCKER_LIST].join(", ");
  const get = async (suffix: string, what: string, headers: Record<string, string> = {}) => {
    const res = await client.request("GET", client.repoUrl(suffix), { headers, expect: [200] });
    return readBody(res, MAX_DOCUMENT, `${text}: ${what}`);
  };
  // A manifest asked for by digest must be the one asked for (a tag may move; a digest may not).
  // "manifest 1" read as a count: a tag is named as one.
  const manifestName = (reference: string) => (DIGEST.test(reference) ? `manifest ${reference}` : `the manifest of tag ${reference}`);
  const manifestAt = async (reference: string) => {
    const data = await get(`manifests/${reference}`, manifestName(reference), { accept });
    if (DIGEST.test(reference) && sha256Of(data) !== reference) throw new LayerpackError(`${text}: the registry sent a manifest that does not match ${reference}`);
    return { data, manifest: parse(data, manifestName(reference), text) };
  };
  let reference = ref.digest ?? ref.tag ?? "latest";
  let platforms: string[] | undefined;
  let { data, manifest } = await manifestAt(reference);
  for (let depth = 0; isIndex(manifest.mediaType); depth++) {
    if (depth === MAX_NESTING) throw new LayerpackError(`${text}: indexes nest more than ${MAX_NESTING} deep`);
    const picked = pickFromIndex(checkIndex(manifest, `${text}: ${manifestName(reference)}`), text, { platform: opts.platform });
    reference = picked.chosen.digest;
    platforms = picked.platforms ?? platforms;
    ({ data, manifest } = await manifestAt(reference));
  }
  const { config: configDesc, layers } = checkManifest(manifest, `${text}: ${manifestName(reference)}`);
  if (configDesc.size > MAX_DOCUMENT) throw tooBig(text, "config", configDesc);
  const configData = await get(`blobs/${configDesc.digest}`, `config ${configDesc.digest}`);
  if (configData.length !== configDesc.size || sha256Of(configData) !== configDesc.digest) {
    throw new LayerpackError(`${text}: the registry sent a config that does not match ${configDesc.digest} (${configDesc.size} bytes)`);
  }
  const config = parse(configData, "the config", text);
  return {
    kind: "registry",
    ...(platforms ? { platforms } : {}),
    source: formatReference({ ...ref, ...(ref.tag === undefined && ref.digest === undefined ? { tag: "latest" } : {}) }),
    names: [formatReference(ref)],
    manifestDigest: sha256Of(data),
    manifest,
    configDigest: configDesc.digest,
    config,
    configBytes: () => configData,
    layers: describeLayers(layers, config, {
      where: `${text}: config ${configDesc.digest}`,
      open: async (d) => {
        const res = await client.request("GET", client.repoUrl(`blobs/${d.digest}`), { expect: [200] });
        if (!res.body) throw new LayerpackError(`${text}: the registry sent no body for blob ${d.digest}`);
        return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream).pipe(verifying(d, `${text}: blob ${d.digest}`));
      },
    }),
  };
}

export interface ReadImageOptions {
  /** Where a relative file or layout name given as a string is found; default process.cwd(). */
  cwd?: string;
  /** Which image of a multi-platform index; default the host's. */
  platform?: Platform;
  /** Which image of a layout holding several (its ref name). */
  ref?: string;
  insecure?: boolean;
  env?: Record<string, string | undefined>;
  /** Ends a registry's requests at once (Ctrl-C). */
  signal?: AbortSignal | undefined;
  /**
   * For an image to be sent elsewhere: a docker archive's layers are checked against the config's diff_ids in the
   * one pass that reads the archive (gzip layers unpacked as they go by). Without it the image's verifyLayers()
   * does that later, in a pass of its own.
   */
  verifyLayers?: boolean;
}

/**
 * Reads the image a name gives (src/oci/name.ts): `docker-archive:`, `oci:`, `oci-archive:`, `docker://`, or a
 * plain path (its kind told by its content) or reference. A `:REF` in the name picks the image in a layout.
 */
export async function openImage(given: ImageName | string, opts: ReadImageOptions = {}): Promise<Image> {
  // A string is parsed as the commands parse their arguments (writeImage takes one too).
  const name = typeof given === "string" ? parseImageName(given, { cwd: opts.cwd ?? process.cwd() }) : given;
  const shown = formatImageName(name);
  if (name.transport === "registry") {
    const ref = formatReference(name.reference);
    if (name.text.startsWith("docker://")) return fromRegistry(ref, opts);
    try {
      return await fromRegistry(ref, opts);
    } catch (e) {
      // A plain name is a file first: `inspect hello` after a typo should not read as a Docker Hub failure alone.
      if (!(e instanceof LayerpackError)) throw e;
      throw new LayerpackError(`${name.text}: no such file or directory, and as the registry image ${ref}: ${e.message}`, { cause: e.cause });
    }
  }
  const withRef = "ref" in name && name.ref !== undefined ? { ...opts, ref: name.ref } : opts;
  const image = await readPath(name.path, withRef);
  const want = { "docker-archive": "docker-archive", oci: "oci-layout", "oci-archive": "oci-archive", path: image.kind }[name.transport];
  if (image.kind !== want) throw new LayerpackError(`${shown}: ${name.path} is ${describeKind(image.kind)}, not ${describeKind(want)}; name it ${image.kind === "oci-layout" ? "oci:" : `${image.kind}:`}${name.path}`);
  return image;
}

const describeKind = (kind: string) => ({ "docker-archive": "a docker archive", "oci-layout": "an OCI layout directory", "oci-archive": "an OCI archive" })[kind] ?? kind;

/** Reads the image at `target`: an existing path (layout directory or archive), else a registry reference. */
export async function readImage(target: string, opts: ReadImageOptions = {}): Promise<Image> {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(target);
  } catch {
    st = undefined;
  }
  if (st === undefined) return fromRegistry(target, opts);
  return readPath(target, opts);
}

async function readPath(target: string, opts: ReadImageOptions): Promise<Image> {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch (cause) {
    throw new LayerpackError(`cannot read image ${target}: ${(cause as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (cause as Error).message}`, { cause });
  }
  const file = path.resolve(target);
  if (st.isDirectory()) {
    if (!fs.existsSync(path.join(file, "oci-layout"))) throw new LayerpackError(`${file} is a directory but not an OCI image layout (no oci-layout file)`);
    return readLayout({ kind: "oci-layout", source: file, files: layoutDirectory(file) }, opts);
  }
  const checked = opts.verifyLayers === true;
  const entries = await readTar(file, { unpack: checked });
  if (entries.has("oci-layout")) return readLayout({ kind: "oci-archive", source: file, files: layoutArchive(file, entries) }, opts);
  return dockerArchive(file, entries, { checked });
}
