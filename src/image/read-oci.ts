/**
 * Reads an image's manifest, config and layer list from any of our outputs — an OCI layout directory, an OCI or
 * docker archive (tar) — or from a registry, for `layerpack inspect`. Layer contents are not unpacked: archives
 * are read in one streaming pass that keeps only small JSON entries and hashes the rest.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract } from "tar-stream";
import { LayerpackError } from "../errors.ts";
import { RegistryClient } from "../registry/client.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { OCI_MEDIA_TYPES, type Descriptor, type OciIndex } from "./types.ts";

export interface InspectedLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** From the config's rootfs.diff_ids. */
  diffId?: string;
  /** The config history entry of this layer (layerpack: the store items in it). */
  comment?: string;
}

export interface InspectedImage {
  kind: "oci-layout" | "oci-archive" | "docker-archive" | "registry";
  /** The path or reference read. */
  source: string;
  /** Names the image goes by there (ref names, RepoTags, or the reference). */
  names: string[];
  manifestDigest?: string;
  manifest: unknown;
  configDigest: string;
  config: Record<string, unknown>;
  layers: InspectedLayer[];
}

type Json = Record<string, unknown>;
const MAX_JSON = 16 << 20;
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const isIndex = (mediaType: unknown) => mediaType === OCI_MEDIA_TYPES.index || mediaType === DOCKER_LIST;
const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

function parse(data: Buffer, what: string, source: string): Json {
  try {
    return JSON.parse(data.toString("utf8")) as Json;
  } catch (cause) {
    throw new LayerpackError(`${source}: ${what} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** Joins the manifest's layers with the config's diff_ids and the history entries of non-empty layers. */
function describeLayers(manifestLayers: Descriptor[], config: Json): InspectedLayer[] {
  const diffIds = ((config.rootfs as Json | undefined)?.diff_ids as string[] | undefined) ?? [];
  const history = ((config.history as Json[] | undefined) ?? []).filter((h) => h.empty_layer !== true);
  return manifestLayers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    ...(diffIds[i] !== undefined ? { diffId: diffIds[i] } : {}),
    ...(typeof history[i]?.comment === "string" ? { comment: history[i]!.comment as string } : {}),
  }));
}

const refName = (d: Descriptor) => d.annotations?.["org.opencontainers.image.ref.name"];

/** Picks the manifest in an index: by ref name when given, else the only image there is. */
function pickFromIndex(index: OciIndex, ref: string | undefined, source: string): Descriptor {
  const manifests = index.manifests ?? [];
  if (ref !== undefined) {
    const hit = manifests.find((m) => refName(m) === ref);
    if (!hit) throw new LayerpackError(`${source} has no image named '${ref}'; it has: ${manifests.map(refName).filter(Boolean).join(", ") || "no named images"}`);
    return hit;
  }
  const digests = new Set(manifests.map((m) => m.digest));
  if (digests.size === 1) return manifests[0]!;
  if (digests.size === 0) throw new LayerpackError(`${source} holds no image`);
  const platform = manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === "amd64");
  if (platform && manifests.every((m) => m.platform)) return platform;
  throw new LayerpackError(`${source} holds ${digests.size} images; choose one with --ref NAME (${manifests.map(refName).filter(Boolean).join(", ")})`);
}

/** Reads an OCI layout given a way to read its blobs; follows nested indexes to one image manifest. */
async function readLayout(kind: "oci-layout" | "oci-archive", source: string, ref: string | undefined, readFile: (name: string) => Promise<Buffer | undefined>): Promise<InspectedImage> {
  const blob = async (digest: string, what: string) => {
    const data = await readFile(`blobs/${digest.replace(":", "/")}`);
    if (!data) throw new LayerpackError(`${source}: the ${what} blob ${digest} is missing`);
    if (sha256(data) !== digest) throw new LayerpackError(`${source}: the ${what} blob ${digest} does not match its digest`);
    return data;
  };
  const indexData = await readFile("index.json");
  if (!indexData) throw new LayerpackError(`${source}: no index.json; is it an OCI image layout?`);
  let index = parse(indexData, "index.json", source) as unknown as OciIndex;
  let chosen = pickFromIndex(index, ref, source);
  const names = index.manifests.filter((m) => m.digest === chosen.digest).map(refName).filter((n): n is string => Boolean(n));
  while (isIndex(chosen.mediaType)) {
    index = parse(await blob(chosen.digest, "index"), `index ${chosen.digest}`, source) as unknown as OciIndex;
    chosen = pickFromIndex(index, undefined, source);
  }
  const manifestData = await blob(chosen.digest, "manifest");
  const manifest = parse(manifestData, "the manifest", source);
  const configDesc = manifest.config as Descriptor;
  const config = parse(await blob(configDesc.digest, "config"), "the config", source);
  return { kind, source, names, manifestDigest: chosen.digest, manifest, configDigest: configDesc.digest, config, layers: describeLayers(manifest.layers as Descriptor[], config) };
}

interface TarEntry {
  data?: Buffer;
  digest: string;
  size: number;
}

/** One pass over a tar (optionally gzipped): JSON-looking entries kept, every entry hashed. */
async function readTar(file: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const extract = tarExtract();
  const magic = Buffer.alloc(2);
  const fd = fs.openSync(file, "r");
  fs.readSync(fd, magic, 0, 2, 0);
  fs.closeSync(fd);
  const input = fs.createReadStream(file);
  const piped = magic[0] === 0x1f && magic[1] === 0x8b ? pipeline(input, createGunzip(), extract) : pipeline(input, extract);
  const reading = (async () => {
    for await (const entry of extract) {
      const hash = createHash("sha256");
      const kept: Buffer[] = [];
      let size = 0;
      let json: boolean | undefined;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        hash.update(chunk);
        if (json === undefined) json = /^\s*[{[]/.test(chunk.subarray(0, 64).toString("latin1"));
        size += chunk.length;
        if (json && size <= MAX_JSON) kept.push(chunk);
      }
      if (entry.header.type !== "file") continue;
      const name = entry.header.name.replace(/^\.\//, "");
      entries.set(name, { digest: `sha256:${hash.digest("hex")}`, size, ...(json && size <= MAX_JSON ? { data: Buffer.concat(kept) } : {}) });
    }
  })();
  try {
    await Promise.all([piped, reading]);
  } catch (cause) {
    throw new LayerpackError(`${file} is not a readable image archive (tar): ${(cause as Error).message}`, { cause });
  }
  return entries;
}

function dockerArchive(file: string, entries: Map<string, TarEntry>): InspectedImage {
  const data = entries.get("manifest.json")?.data;
  if (!data) throw new LayerpackError(`${file} is neither an OCI archive (no oci-layout) nor a docker archive (no manifest.json)`);
  const list = parse(data, "manifest.json", file) as unknown as { Config: string; RepoTags?: string[]; Layers: string[] }[];
  const manifest = list[0];
  if (!manifest || typeof manifest.Config !== "string" || !Array.isArray(manifest.Layers)) throw new LayerpackError(`${file}: manifest.json is not a docker archive manifest`);
  const configEntry = entries.get(manifest.Config);
  if (!configEntry?.data) throw new LayerpackError(`${file}: the config ${manifest.Config} is missing`);
  const config = parse(configEntry.data, manifest.Config, file);
  const layers = manifest.Layers.map((name): Descriptor => {
    const e = entries.get(name);
    if (!e) throw new LayerpackError(`${file}: manifest.json lists layer ${name}, which the archive does not hold`);
    const mediaType = name.endsWith(".gz") ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar";
    return { digest: e.digest, size: e.size, mediaType };
  });
  return { kind: "docker-archive", source: file, names: manifest.RepoTags ?? [], manifest, configDigest: configEntry.digest, config, layers: describeLayers(layers, config) };
}

async function fromRegistry(text: string, opts: ReadImageOptions): Promise<InspectedImage> {
  const ref = parseReference(text);
  const client = new RegistryClient({ registry: ref.registry, repository: ref.repository, actions: "pull", ...(opts.insecure ? { insecure: true } : {}), ...(opts.env ? { env: opts.env } : {}) });
  await client.ping();
  const accept = [OCI_MEDIA_TYPES.manifest, DOCKER_MANIFEST, OCI_MEDIA_TYPES.index, DOCKER_LIST].join(", ");
  const get = async (suffix: string, headers: Record<string, string> = {}) => {
    const res = await client.request("GET", client.repoUrl(suffix), { headers, expect: [200] });
    return Buffer.from(await res.arrayBuffer());
  };
  let reference = ref.digest ?? ref.tag ?? "latest";
  let data = await get(`manifests/${reference}`, { accept });
  let manifest = parse(data, `manifest ${reference}`, text);
  while (isIndex(manifest.mediaType)) {
    reference = pickFromIndex(manifest as unknown as OciIndex, undefined, text).digest;
    data = await get(`manifests/${reference}`, { accept });
    manifest = parse(data, `manifest ${reference}`, text);
  }
  const configDesc = manifest.config as Descriptor;
  const configData = await get(`blobs/${configDesc.digest}`);
  if (sha256(configData) !== configDesc.digest) throw new LayerpackError(`${text}: the registry sent a config that does not match ${configDesc.digest}`);
  const config = parse(configData, "the config", text);
  return {
    kind: "registry",
    source: formatReference({ ...ref, ...(ref.tag === undefined && ref.digest === undefined ? { tag: "latest" } : {}) }),
    names: [formatReference(ref)],
    manifestDigest: sha256(data),
    manifest,
    configDigest: configDesc.digest,
    config,
    layers: describeLayers(manifest.layers as Descriptor[], config),
  };
}

export interface ReadImageOptions {
  /** Which image of a layout holding several (its ref name). */
  ref?: string;
  insecure?: boolean;
  env?: Record<string, string | undefined>;
}

/** Reads the image at `target`: an existing path (layout directory or archive), else a registry reference. */
export async function readImage(target: string, opts: ReadImageOptions = {}): Promise<InspectedImage> {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(target);
  } catch {
    st = undefined;
  }
  if (st === undefined) return fromRegistry(target, opts);
  const file = path.resolve(target);
  if (st.isDirectory()) {
    if (!fs.existsSync(path.join(file, "oci-layout"))) throw new LayerpackError(`${file} is a directory but not an OCI image layout (no oci-layout file)`);
    return readLayout("oci-layout", file, opts.ref, async (name) => {
      try {
        return fs.readFileSync(path.join(file, name));
      } catch {
        return undefined;
      }
    });
  }
  const entries = await readTar(file);
  if (entries.has("oci-layout")) return readLayout("oci-archive", file, opts.ref, async (name) => entries.get(name)?.data);
  return dockerArchive(file, entries);
}
