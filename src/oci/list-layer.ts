/**
 * Listing one layer tar: the store items it holds (with their NAR sizes, where the layer holds an item whole), the
 * paths it deletes from the layers below, and the digest of its uncompressed bytes. Untrusted input (blob-file.ts):
 * its names are charged to an ArchiveBudget, and its shape is checked as it streams (tar-shape.ts).
 */
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Extract } from "tar-stream";
import { tarShaped } from "./tar-shape.ts";
import { byBytes } from "../util/bytes.ts";
import type { ArchiveBudget } from "./blob-file.ts";
import { entrySize, NAR_MAGIC_SIZE } from "../store/nar.ts";

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
      // tar-stream names no other kind (an old-GNU sparse file, a tape header): it reads such an entry's data as
      // the size field says, where a runtime may read more, so the two would see different files from here on.
      if (entry.header.type === null) throw new Error(`the entry ${JSON.stringify(entry.header.name)} is of a kind base images do not hold and this reader does not follow (not a file, link, directory, device or FIFO; an old-GNU sparse file, say)`);
      // The PAX form of a GNU sparse file: a runtime names it by GNU.sparse.name and reads a map first; tar-stream
      // sees a file called GNUSparseFile.N/… holding the map.
      const pax = entry.header.pax as Record<string, unknown> | null | undefined;
      if (pax && Object.keys(pax).some((k) => k.startsWith("GNU.sparse."))) throw new Error(`the entry ${JSON.stringify(entry.header.name)} is a GNU sparse file (PAX GNU.sparse records), which base images do not hold and this reader does not follow`);
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
          // Up to three names deep: the ancestors of a store directory at most three deep (/gnu/store, /opt/store,
          // /a/b/store; a deeper one is not covered). All kept, charged to the budget (never a silent cap), since the
          // store lies wherever its config says.
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
