/**
 * Reads a docker archive (ours, or `docker save`'s): manifest, config, and per layer its digest, sizes and the store
 * items it holds, for `layerpack diff`. One streaming pass: every entry is hashed as it goes by, and an entry whose
 * content is a tar (gzipped or not) is listed as a layer, so the manifest may come last, as in ours. Nothing is
 * extracted, and only small JSON entries are kept in memory.
 *
 * The archive is untrusted (blob-file.ts): an entry that is not a layer must be a document of at most
 * MAX_DOCUMENT (refused from its header, before its data is read), all kept documents and remembered names are
 * bounded, and manifest.json may name only relative paths inside the archive.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { extract as tarExtract, type Extract } from "tar-stream";
import { LayerpackError } from "../errors.ts";
import { ArchiveBudget, checkArchivePath, checkLayerCount, isGzip, isTar as isTarHeader, pipeArchive } from "./blob-file.ts";
import { unpackFailure } from "./verify.ts";
import { parseShallowJson } from "../util/json.ts";
import { listLayer, type ArchiveItem, type LayerListing } from "./list-layer.ts";

type Entry = Extract extends AsyncIterable<infer E> ? E : never;

export interface ArchiveLayer {
  /** The entry's name in the archive. */
  file: string;
  /** `sha256:<hex>` of the stored blob, and its size: what a registry serves and a host pulls. */
  digest: string;
  size: number;
  /** `sha256:<hex>` and size of the uncompressed tar. */
  diffId: string;
  uncompressedSize: number;
  compressed: boolean;
  /** Store items (`/<dir>/<hash>-<name>`) with entries in the layer, sorted. */
  items: ArchiveItem[];
  /** Entries outside any store item (parent directories, the customisation layer's files). */
  otherEntries: number;
}

export interface ImageArchive {
  file: string;
  repoTags: string[];
  architecture: string;
  os: string;
  variant?: string;
  /** Image layers, bottom first, as the manifest lists them. */
  layers: ArchiveLayer[];
}

export type EntryInfo = { name: string; digest: string; size: number } & ({ kind: "layer"; layer: LayerListing; compressed: boolean } | { kind: "data"; data?: Buffer });

/** Reads one archive entry: hashes it, and lists it when it is a layer or keeps it when it may be JSON. */
async function readEntry(entry: Entry, budget: ArchiveBudget): Promise<EntryInfo> {
  const hash = createHash("sha256");
  let size = 0;
  const iter = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 512) {
    const r = await iter.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    headLen += r.value.length;
  }
  const first = Buffer.concat(head);
  let firstGiven = false;
  // Called again after a layer's tar ends, to hash the rest: `first` is given once.
  async function* chunks(): AsyncGenerator<Buffer> {
    if (!firstGiven) {
      firstGiven = true;
      hash.update(first);
      size += first.length;
      if (first.length > 0) yield first;
    }
    while (!ended) {
      const r = await iter.next();
      if (r.done) break;
      hash.update(r.value);
      size += r.value.length;
      yield r.value;
    }
    ended = true;
  }
  const name = entry.header.name;
  const done = () => ({ name, digest: `sha256:${hash.digest("hex")}`, size });
  if (isGzip(first) || isTarHeader(first)) {
    const compressed = isGzip(first);
    let layer: LayerListing;
    try {
      layer = await listLayer(Readable.from(chunks()), compressed, budget);
    } catch (cause) {
      if (cause instanceof LayerpackError) throw cause;
      // A layer by its first bytes (manifest.json, which would say so, may come later).
      throw new LayerpackError(`${budget.archive}: layer ${name} is damaged: ${unpackFailure(cause)}`, { cause });
    }
    for await (const _ of chunks()) {
      // the rest of the entry (padding after the tar's end), for the digest
    }
    return { ...done(), kind: "layer", layer, compressed };
  }
  // Not a layer: a document, refused here, from its header's size, when it is too big to keep.
  const regular = entry.header.type === "file" || entry.header.type === "contiguous-file";
  if (regular) budget.keep(name, entry.header.size ?? 0);
  const kept: Buffer[] = [];
  for await (const c of chunks()) if (regular) kept.push(c);
  return { ...done(), kind: "data", ...(regular ? { data: Buffer.concat(kept) } : {}) };
}

function parseJson(info: EntryInfo | undefined, what: string, file: string): unknown {
  if (!info || info.kind !== "data" || !info.data) throw new LayerpackError(`${file}: the docker archive has no ${what}; is it an image built by layerpack or docker save?`);
  try {
    return parseShallowJson(info.data.toString("utf8"));
  } catch (cause) {
    throw new LayerpackError(`${file}: ${what} (${info.name}) is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** Reads a docker archive (optionally gzipped as a whole). Throws LayerpackError naming it (as `label`) on bad input. */
export async function readDockerArchive(file: string, label = file): Promise<ImageArchive> {
  const entries = await scanArchive(file, label);
  return dockerArchiveOf(file, label, entries);
}

/** Every entry of an image archive in one pass: layers listed and hashed, small documents kept. */
export async function scanArchive(file: string, label = file): Promise<Map<string, EntryInfo>> {
  const entries = new Map<string, EntryInfo>();
  const budget = new ArchiveBudget(label);
  const extract = tarExtract();
  const piped = pipeArchive(file, extract, { label, unreadable: (cause) => new LayerpackError(`cannot read image ${label}: ${(cause as Error).message}`, { cause }) }).done;
  const reading = (async () => {
    for await (const entry of extract) {
      const info = await readEntry(entry, budget);
      const name = info.name.replace(/^\.\//, "");
      budget.entry(name, entry.header.type);
      entries.set(name, info);
    }
  })();
  const [p, r] = await Promise.allSettled([piped, reading]);
  // Our own refusal first: it says more than the premature close it causes in the pipeline.
  const failed = r.status === "rejected" ? r.reason : p.status === "rejected" ? p.reason : undefined;
  if (failed instanceof LayerpackError) throw failed;
  if (failed !== undefined) throw new LayerpackError(`${label} is not a readable docker archive (tar): ${(failed as Error).message}`, { cause: failed });
  return entries;
}

function dockerArchiveOf(file: string, label: string, entries: Map<string, EntryInfo>): ImageArchive {
  const manifests = parseJson(entries.get("manifest.json"), "manifest.json", label);
  const manifest = Array.isArray(manifests) ? (manifests[0] as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }) : undefined;
  if (!manifest || typeof manifest.Config !== "string" || !Array.isArray(manifest.Layers)) {
    throw new LayerpackError(`${label}: manifest.json is not a docker archive manifest ([{"Config", "RepoTags", "Layers"}])`);
  }
  if ((manifests as unknown[]).length > 1) {
    throw new LayerpackError(`${label} holds ${(manifests as unknown[]).length} images; diff compares archives of one image each`);
  }
  // Entry names, not host paths; still refused when they could not be names inside an archive.
  const configName = checkArchivePath(manifest.Config, `${label}: manifest.json`, "Config");
  checkLayerCount((manifest.Layers as unknown[]).length, `${label}: manifest.json`, "Layers");
  const layerNames = (manifest.Layers as unknown[]).map((l, i) => checkArchivePath(l, `${label}: manifest.json`, `Layers[${i}]`));
  const config = parseJson(entries.get(configName), `config ${configName}`, label) as { architecture?: unknown; os?: unknown; variant?: unknown };
  if (typeof config !== "object" || config === null) throw new LayerpackError(`${label}: config ${configName} is not a JSON object`);
  const layers = layerNames.map((name): ArchiveLayer => {
    const info = entries.get(name);
    if (!info) throw new LayerpackError(`${label}: manifest.json lists layer ${name}, which the archive does not hold`);
    if (info.kind !== "layer") throw new LayerpackError(`${label}: layer ${info.name} is not a tar (plain or gzip)`);
    return {
      file: info.name,
      digest: info.digest,
      size: info.size,
      diffId: info.layer.diffId,
      uncompressedSize: info.layer.uncompressedSize,
      compressed: info.compressed,
      items: info.layer.items,
      otherEntries: info.layer.otherEntries,
    };
  });
  return {
    file,
    repoTags: Array.isArray(manifest.RepoTags) ? manifest.RepoTags.map(String) : [],
    architecture: typeof config.architecture === "string" ? config.architecture : "unknown",
    os: typeof config.os === "string" ? config.os : "unknown",
    ...(typeof config.variant === "string" ? { variant: config.variant } : {}),
    layers,
  };
}
