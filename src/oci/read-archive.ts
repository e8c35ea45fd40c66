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
import { tarShaped } from "./tar-shape.ts";
import { byBytes } from "../util/bytes.ts";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Extract } from "tar-stream";
import { LayerpackError } from "../errors.ts";
import { ArchiveBudget, checkArchivePath, checkLayerCount, isGzip, isTar as isTarHeader, pipeArchive } from "./blob-file.ts";
import { entrySize, NAR_MAGIC_SIZE } from "../store/nar.ts";
import { unpackFailure } from "./verify.ts";
import { parseShallowJson } from "../util/json.ts";

type Entry = Extract extends AsyncIterable<infer E> ? E : never;

/** A store item as found in a layer: its logical path and the bytes of its regular files there. */
export interface ArchiveItem {
  path: string;
  size: number;
  /**
   * The NAR size of what the layer holds under the path, or undefined when it cannot be the whole item: no entry for
   * the path itself, an entry NAR has no form for (a device, a whiteout), a hard link to an unknown file.
   */
  narSize?: number;
}

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

const NIX32_NAME = /^[0123456789abcdfghijklmnpqrsvwxyz]{32}-[^/]+$/;

/** The store item an entry name belongs to: the path up to its first `<hash>-<name>` component. */
export function storeItemOf(entryName: string): string | undefined {
  const parts = entryName.split("/").filter((p) => p !== "" && p !== ".");
  const i = parts.findIndex((p) => NIX32_NAME.test(p));
  return i > 0 ? `/${parts.slice(0, i + 1).join("/")}` : undefined;
}

export interface LayerListing {
  diffId: string;
  uncompressedSize: number;
  items: ArchiveItem[];
  otherEntries: number;
  /** Paths this layer deletes from the layers below (`.wh.<name>` entries) and directories it makes opaque. */
  whiteouts: string[];
  opaque: string[];
}

/** What listLayer keeps per store item while the entries go by, for its NAR size. */
interface ItemState {
  /** The item's logical path. */
  item: string;
  bytes: number;
  nar: number;
  /** Whether an entry for the item's own path was seen, and nothing NAR cannot hold. */
  top: boolean;
  whole: boolean;
  /** Directories listed, and the ones the entries imply (tars may leave parent directories out). */
  dirs: Set<string>;
  parents: Set<string>;
}

/**
 * Names a layer's NAR sizes may keep (regular files' sizes, for hard links, which may point into another item, as
 * Guix's and Nix's deduplicated stores do; directories): past this, its items simply do not count as whole.
 */
const NAR_NAME_BYTES = 64 << 20;


const normal = (name: string): string => `/${name.split("/").filter((p) => p !== "" && p !== ".").join("/")}`;

/** One layer's NAR bookkeeping: the file sizes hard links need, and the memory they may take. */
class NarTally {
  readonly files = new Map<string, number>();
  #bytes = 0;
  exhausted = false;

  /** Whether `name` may be kept (its bytes charged), else the layer's items cannot be checked whole. */
  keep(name: string): boolean {
    this.#bytes += name.length + 16;
    if (this.#bytes > NAR_NAME_BYTES) this.exhausted = true;
    return !this.exhausted;
  }
}

/** Adds one tar entry of `st.item` to its state (NAR size, or not whole). */
function addEntry(st: ItemState, header: Entry["header"], tally: NarTally): void {
  const { item } = st;
  const name = normal(header.name);
  const rel = name === item ? "" : name.slice(item.length + 1);
  if (rel === "") st.top = true;
  // Every directory above the entry, inside the item (the item's own top included: "").
  for (let p = rel; p !== ""; ) {
    p = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "";
    if (st.parents.has(p)) break;
    if (tally.keep(p)) st.parents.add(p);
  }
  const base = rel.slice(rel.lastIndexOf("/") + 1);
  const mode = header.mode ?? 0;
  let entry: { rel: string; type: "file" | "symlink" | "directory"; mode: number; size: number; target?: string } | undefined;
  if (base.startsWith(".wh.")) entry = undefined;
  else if (header.type === "file" || header.type === "contiguous-file") {
    entry = { rel, type: "file", mode, size: header.size ?? 0 };
    if (tally.keep(name)) tally.files.set(name, header.size ?? 0);
  } else if (header.type === "link") {
    const size = tally.files.get(normal(header.linkname ?? ""));
    entry = size === undefined ? undefined : { rel, type: "file", mode, size };
  } else if (header.type === "symlink") entry = { rel, type: "symlink", mode, size: 0, target: header.linkname ?? "" };
  else if (header.type === "directory") {
    entry = { rel, type: "directory", mode, size: 0 };
    if (tally.keep(rel)) st.dirs.add(rel);
  }
  if (entry === undefined) st.whole = false;
  else st.nar += entrySize(entry);
}

/** The NAR size of what the layer holds of `st.item`, parent directories the tar left out added; undefined: not whole. */
function narSizeOf(st: ItemState, tally: NarTally): number | undefined {
  if (!st.whole || tally.exhausted) return undefined;
  let nar = st.nar;
  for (const p of st.parents) if (!st.dirs.has(p)) nar += entrySize({ rel: p, type: "directory", mode: 0o755, size: 0 });
  return st.top || st.parents.has("") ? nar : undefined;
}

/** Lists a layer tar from `source` (gzip, zstd or plain), hashing the uncompressed bytes. */
export async function listLayer(source: Readable, compression: boolean | "gzip" | "zstd" | "none", budget: ArchiveBudget): Promise<LayerListing> {
  const hash = createHash("sha256");
  let uncompressedSize = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      uncompressedSize += chunk.length;
      done(null, chunk);
    },
  });
  // Names as bytes (latin1), made UTF-8 text below where they are: tar-stream's own UTF-8 decoding turns every
  // invalid byte into U+FFFD, so two different names could be listed as one item.
  const extract = tarExtract({ filenameEncoding: "latin1" } as Parameters<typeof tarExtract>[0]); // (missing from its types)
  const items = new Map<string, ItemState>();
  let otherEntries = 0;
  // Directories outside the items: the store's own parents (/gnu, /gnu/store) are not content of their own.
  const dirs = new Set<string>();
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const tally = new NarTally();
  // Files and links near the top of the tree: one in the place of a store directory hides the items below it.
  const shallow: string[] = [];
  const kind = compression === true ? "gzip" : compression === false ? "none" : compression;
  const piped =
    // tarShaped: tar-stream skips zero blocks for ever, and a layer that unpacks to little else (a bomb) is stopped.
    kind === "gzip"
      ? pipeline(source, createGunzip(), tarShaped(), count, extract)
      : kind === "zstd"
        ? pipeline(source, zlib.createZstdDecompress(), tarShaped(), count, extract)
        : pipeline(source, tarShaped(), count, extract);
  const listing = (async () => {
    for await (const entry of extract) {
      textNames(entry.header);
      const item = storeItemOf(entry.header.name);
      if (item === undefined) {
        const name = normal(entry.header.name);
        const base = name.slice(name.lastIndexOf("/") + 1);
        if (base === ".wh..wh..opq" || base.startsWith(".wh.")) {
          budget.name(name, "entries");
          if (base === ".wh..wh..opq") opaque.push(name.slice(0, name.lastIndexOf("/")) || "/");
          else whiteouts.push(`${name.slice(0, name.lastIndexOf("/"))}/${base.slice(4)}`);
          otherEntries++;
        } else if (entry.header.type === "directory") {
          // Every name kept counts: a layer of a million long directory names is not a base image.
          if (!dirs.has(name)) budget.name(name, "directories");
          dirs.add(name);
        } else {
          // Up to three names deep, where a store directory's ancestors are (/gnu/store, /opt/store, /a/b/store):
          // all kept (within the budget, never a silent cap), since the store lies wherever its config says.
          if (name.split("/").length <= 4) {
            budget.name(name, "entries");
            shallow.push(name);
          }
          otherEntries++;
        }
      } else {
        let st = items.get(item);
        if (!st) {
          budget.name(item, "store items");
          st = { item, bytes: 0, nar: NAR_MAGIC_SIZE, top: false, whole: true, dirs: new Set(), parents: new Set() };
          items.set(item, st);
        }
        if (entry.header.type === "file" || entry.header.type === "contiguous-file") st.bytes += entry.header.size ?? 0;
        addEntry(st, entry.header, tally);
      }
      entry.resume();
      await new Promise<void>((resolve, reject) => entry.once("end", resolve).once("error", reject));
    }
  })();
  await Promise.all([piped, listing]);
  const storeParents = new Set<string>();
  for (const item of items.keys()) for (let p = item.slice(0, item.lastIndexOf("/")); p !== ""; p = p.slice(0, p.lastIndexOf("/"))) storeParents.add(p);
  for (const d of dirs) if (!storeParents.has(d)) otherEntries++;
  // A file or link where a lower layer has a directory replaces that directory and everything below it.
  whiteouts.push(...shallow);
  const sorted = [...items].sort(([a], [b]) => byBytes(a, b));
  return {
    diffId: `sha256:${hash.digest("hex")}`,
    uncompressedSize,
    items: sorted.map(([path, st]) => {
      const narSize = narSizeOf(st, tally);
      return { path, size: st.bytes, ...(narSize !== undefined ? { narSize } : {}) };
    }),
    otherEntries,
    whiteouts,
    opaque,
  };
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

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Length of the well-formed UTF-8 sequence at `i`, 0 when there is none (overlong, surrogate, past U+10FFFF). */
function sequenceAt(b: Buffer, i: number): number {
  const c = b[i]!;
  const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n <= 1 || i + n > b.length) return n === 1 ? 1 : 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const second = b[i + 1]!;
  if ((c === 0xe0 && second < 0xa0) || (c === 0xed && second > 0x9f) || (c === 0xf0 && second < 0x90) || (c === 0xf4 && second > 0x8f)) return 0;
  return n;
}

/**
 * A name read as latin1 (one char per byte) as text: its UTF-8, with each byte that is not part of any as the lone
 * surrogate U+DC80 + byte (as Python's surrogateescape), which no valid UTF-8 decodes to, so two different byte
 * strings never give one name.
 */
function asText(name: string): string {
  if (/^[\u0000-\u007f]*$/.test(name)) return name;
  const bytes = Buffer.from(name, "latin1");
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const n = sequenceAt(bytes, i);
    if (n === 0) out += String.fromCharCode(0xdc80 + bytes[i++]!);
    else {
      out += utf8.decode(bytes.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/** The header's names as text; a PAX name is UTF-8 already (tar-stream decodes PAX records as UTF-8). */
function textNames(header: { name: string; linkname?: string | null | undefined; pax?: unknown }): void {
  const pax = (typeof header.pax === "object" && header.pax !== null ? header.pax : {}) as Record<string, unknown>;
  if (pax.path === undefined) header.name = asText(header.name);
  if (header.linkname && pax.linkpath === undefined) header.linkname = asText(header.linkname);
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
