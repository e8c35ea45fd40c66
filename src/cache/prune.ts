/** `layerpack cache info|prune`: what the cache holds, and trimming it by age or size (least recently used first). */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseLayerEntry, type LayerCache } from "./cache.ts";
import { lstatOrUndefined as lstatOf, readCacheFile } from "./files.ts";

export interface CacheInfo {
  dir: string;
  layers: number;
  /** Loose blob files. */
  blobs: number;
  /** Docker archives kept as packs of layers. */
  packs: number;
  /** Bytes of loose blobs and packs. */
  blobBytes: number;
  scans: number;
  /** Remembered layer plans (src/plan/memo.ts). */
  plans: number;
  /** Temp files in tmp/: builds running now, or ones killed on another host (this host's are collected). */
  tempFiles: number;
  tempBytes: number;
  /** Last use of the least and most recently used layer entries (ms since the epoch). */
  oldestUse?: number;
  newestUse?: number;
}

interface Entry {
  file: string;
  /** What holds the blob: `sha256:<hex>` of a loose blob, or `pack:<name>`. */
  holder: string;
  used: number;
}

/**
 * The names in one of the cache's directories (`sub`, e.g. "blobs/sha256"); none when a level of it is not a real
 * directory. Anyone who can write the cache can put a link there, and following it would list, count and remove
 * files elsewhere. (LayerCache refuses such a cache for builds; this guards info on a read-only one, and races.)
 */
function listDir(cache: LayerCache, sub: string): string[] {
  let dir = cache.dir;
  try {
    for (const part of sub.split("/")) {
      dir = path.join(dir, part);
      if (!fs.lstatSync(dir).isDirectory()) return [];
    }
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function layerEntries(cache: LayerCache): Entry[] {
  const out: Entry[] = [];
  for (const name of listDir(cache, "layers")) {
    const file = path.join(cache.dir, "layers", name);
    const data = readCacheFile(file);
    const entry = data ? parseLayerEntry(data.toString("utf8")) : undefined;
    const used = lstatOf(file)?.mtimeMs;
    // Not an entry this cache wrote (damaged, a link, a FIFO, or put there): "" holds no blob, so prune removes it.
    if (entry && used !== undefined) out.push({ file, holder: entry.pack !== undefined ? `pack:${entry.pack}` : entry.digest, used });
    else out.push({ file, holder: "", used: 0 });
  }
  return out;
}

/** Every blob holder (loose blob or pack) with its size and file; what is not a regular file goes to `foreign`. */
function blobs(cache: LayerCache, foreign: string[] = []): Map<string, { size: number; file: string; changed: number }> {
  const out = new Map<string, { size: number; file: string; changed: number }>();
  for (const [sub, prefix] of [["blobs/sha256", "sha256:"], ["packs", "pack:"]] as const) {
    for (const name of listDir(cache, sub)) {
      const file = path.join(cache.dir, sub, name);
      // Only files: a link among the blobs (put there by someone else) is neither counted nor followed.
      const st = lstatOf(file);
      if (st?.isFile()) out.set(`${prefix}${name}`, { size: st.size, file, changed: st.ctimeMs });
      else if (st) foreign.push(file);
    }
  }
  return out;
}

/** How many items a scan file (one store directory's) remembers. */
function scanRecords(file: string): number {
  try {
    const { records } = JSON.parse(readCacheFile(file)?.toString("utf8") ?? "{}") as { records?: object };
    return records ? Object.keys(records).length : 0;
  } catch {
    return 0;
  }
}

export function cacheInfo(cache: LayerCache): CacheInfo {
  const entries = layerEntries(cache);
  const b = blobs(cache);
  const uses = entries.map((e) => e.used).filter((u) => u > 0);
  const holders = [...b.keys()];
  const temps = listDir(cache, "tmp").map((name) => lstatOf(path.join(cache.dir, "tmp", name)));
  const info: CacheInfo = {
    dir: cache.dir,
    layers: entries.filter((e) => e.holder !== "").length,
    blobs: holders.filter((h) => h.startsWith("sha256:")).length,
    packs: holders.filter((h) => h.startsWith("pack:")).length,
    blobBytes: [...b.values()].reduce((n, s) => n + s.size, 0),
    scans: listDir(cache, "scan").reduce((n, name) => n + scanRecords(path.join(cache.dir, "scan", name)), 0),
    plans: listDir(cache, "plans").length,
    tempFiles: temps.length,
    // Bytes of regular files only: a link's target is not in the cache.
    tempBytes: temps.reduce((n, st) => n + (st?.isFile() ? st.size : 0), 0),
  };
  if (uses.length > 0) {
    // reduce, not Math.min(...uses): a cache of 200 000 records is more arguments than one call takes.
    info.oldestUse = uses.reduce((a, b) => Math.min(a, b));
    info.newestUse = uses.reduce((a, b) => Math.max(a, b));
  }
  return info;
}

export interface PruneOptions {
  /** Remove everything. */
  all?: boolean;
  /** Remove layers not used for this many milliseconds. */
  olderThanMs?: number;
  /** Remove least recently used layers until the blobs fit in this many bytes. */
  maxBytes?: number;
  now?: number;
}

export interface PruneResult {
  layersRemoved: number;
  blobsRemoved: number;
  bytesFreed: number;
}

/**
 * Drops layer entries by the options, then every blob no remaining entry refers to, and temp files an hour old
 * (younger ones may belong to a build running now). Links, FIFOs and directories where files belong are removed
 * themselves (rm of a link removes the link), never followed.
 */
export function pruneCache(cache: LayerCache, options: PruneOptions): PruneResult {
  const now = options.now ?? Date.now();
  // Blobs are listed before entries: a blob a running build records meanwhile is then not seen as unreferenced.
  const foreign: string[] = [];
  const allBlobs = blobs(cache, foreign);
  const entries = layerEntries(cache).sort((a, b) => a.used - b.used || (a.file < b.file ? -1 : 1));
  const recorded = new Set(entries.map((e) => e.holder));
  const keep = new Set<Entry>(entries);
  const drop = (e: Entry) => {
    keep.delete(e);
    // A directory where an entry belongs goes too (it is inside the cache, and no build made it).
    fs.rmSync(e.file, { force: true, recursive: true });
  };
  for (const e of entries) {
    if (options.all || e.holder === "" || !allBlobs.has(e.holder)) drop(e);
    else if (options.olderThanMs !== undefined && now - e.used > options.olderThanMs) drop(e);
  }
  if (options.maxBytes !== undefined) {
    const bytesOf = () => [...new Set([...keep].map((e) => e.holder))].reduce((n, h) => n + (allBlobs.get(h)?.size ?? 0), 0);
    for (const e of entries) {
      if (!keep.has(e)) continue;
      if (bytesOf() <= options.maxBytes) break;
      drop(e);
    }
  }
  const referenced = new Set([...keep].map((e) => e.holder));
  let blobsRemoved = 0;
  let bytesFreed = 0;
  for (const [holder, { size, file, changed }] of allBlobs) {
    if (referenced.has(holder)) continue;
    // A young blob no entry knew of may belong to a build that has not recorded it yet.
    if (!options.all && !recorded.has(holder) && now - changed < 3_600_000) continue;
    fs.rmSync(file, { force: true });
    blobsRemoved++;
    bytesFreed += size;
  }
  for (const file of foreign) fs.rmSync(file, { force: true, recursive: true });
  for (const sub of options.all ? ["scan", "outputs", "plans"] : []) {
    for (const name of listDir(cache, sub)) fs.rmSync(path.join(cache.dir, sub, name), { force: true, recursive: true });
  }
  // Plans are small and remade in a fraction of a second: they go by age alone (a hit refreshes the age).
  if (!options.all && options.olderThanMs !== undefined) {
    for (const name of listDir(cache, "plans")) {
      const file = path.join(cache.dir, "plans", name);
      const used = lstatOf(file)?.mtimeMs;
      if (used !== undefined && now - used > options.olderThanMs) fs.rmSync(file, { force: true, recursive: true });
    }
  }
  const tmp = path.join(cache.dir, "tmp");
  for (const name of listDir(cache, "tmp")) {
    try {
      if (now - fs.lstatSync(path.join(tmp, name)).mtimeMs > 3_600_000) fs.rmSync(path.join(tmp, name), { force: true, recursive: true });
    } catch {
      // gone meanwhile
    }
  }
  return { layersRemoved: entries.length - keep.size, blobsRemoved, bytesFreed };
}
