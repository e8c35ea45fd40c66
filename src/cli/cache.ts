import * as fs from "node:fs";
import { LayerpackError } from "../errors.ts";
import { cacheInfo, pruneCache, type PruneOptions } from "../cache/prune.ts";
import { LayerCache } from "../cache/cache.ts";
import { didYouMean } from "../util/suggest.ts";
import { cacheDirFromOptions, formatBytes, UsageError, type Command } from "./context.ts";
import { count, jsonText } from "../util/format.ts";

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--max-size: '${text}' is not a size such as 500M or 10G`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

export function parseAge(text: string): number {
  const m = /^(\d+)\s*([dhm])$/.exec(text.trim());
  if (!m) throw new UsageError(`--older-than: '${text}' is not an age such as 30d, 12h or 45m`);
  return Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as "d" | "h" | "m"];
}

export const cacheCommand: Command = {
  name: "cache",
  usage: `layerpack cache info [--json] [--cache-dir DIR]
       layerpack cache prune [--older-than AGE] [--max-size SIZE] [--all] [--json] [--cache-dir DIR]

  --older-than AGE   remove layers not used for AGE (30d, 12h, 45m)
  --max-size SIZE    remove least recently used layers until the cache fits (500M, 10G)
  --all              empty the cache
  Without options, prune removes only blobs no layer refers to and stale temp files.`,
  maxPositionals: 1,
  readsConfig: false,
  options: {
    "cache-dir": { type: "string" },
    json: { type: "boolean" },
    "older-than": { type: "string" },
    "max-size": { type: "string" },
    all: { type: "boolean" },
  },
  async run({ io, values, positionals }) {
    const dir = cacheDirFromOptions(io, values);
    const [action] = positionals;
    if (action !== "info" && action !== "prune") throw new UsageError(action === undefined ? "give info or prune" : `expected 'info' or 'prune', not '${action}'${didYouMean(action, ["info", "prune"])}`);
    // The options are shared by both actions: one that the action does not read is refused, not ignored.
    if (action === "info") {
      const pruneOnly = ["older-than", "max-size", "all"].find((o) => values[o] !== undefined);
      if (pruneOnly) throw new UsageError(`--${pruneOnly} is an option of cache prune; cache info only shows the cache`);
    }
    // A --cache-dir that is wrong is an error, not an empty cache (info) or a new one made there (prune).
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st !== undefined && !st.isDirectory()) throw new UsageError(`--cache-dir ${dir}: not a directory`);
    if (st === undefined && typeof values["cache-dir"] === "string") throw new UsageError(`--cache-dir ${dir}: no such directory`);
    if (st === undefined && action === "prune") {
      io.out(values.json ? `${jsonText({ dir, layersRemoved: 0, blobsRemoved: 0, bytesFreed: 0 })}\n` : `cache ${dir} does not exist yet: nothing to prune\n`);
      return 0;
    }
    if (action === "info") {
      // Looking creates nothing: a cache that does not exist yet is shown empty.
      const info = cacheInfo(new LayerCache(dir, { readOnly: true }));
      if (values.json) {
        const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
        io.out(`${jsonText({ ...info, oldestUse: iso(info.oldestUse), newestUse: iso(info.newestUse) })}\n`);
      }
      else {
        const when = (t?: number) => (t === undefined ? "-" : new Date(t).toISOString());
        io.out(
          `cache ${info.dir}\n  layers ${info.layers}, blobs ${info.blobs}, packs ${info.packs} (${formatBytes(info.blobBytes)}), scanned items ${info.scans}, plans ${info.plans}, temp files ${info.tempFiles} (${formatBytes(info.tempBytes)})\n  least recently used ${when(info.oldestUse)}, most recently ${when(info.newestUse)}\n`,
        );
      }
      return 0;
    }
    // prune
    const options: PruneOptions = { all: Boolean(values.all) };
    if (typeof values["older-than"] === "string") options.olderThanMs = parseAge(values["older-than"]);
    if (typeof values["max-size"] === "string") options.maxBytes = parseSize(values["max-size"]);
    let cache: LayerCache;
    try {
      cache = new LayerCache(dir);
    } catch (cause) {
      // The directory, not the command line, is wrong (read-only, a link inside): exit 1 without the usage text.
      throw new LayerpackError(`cannot prune the cache directory ${dir}: ${(cause as Error).message}`, { cause });
    }
    const r = pruneCache(cache, options);
    io.out(values.json ? `${jsonText({ dir, ...r })}\n` : `removed ${count(r.layersRemoved, "layer")}, ${count(r.blobsRemoved, "blob")}, ${formatBytes(r.bytesFreed)} freed\n`);
    return 0;
  },
};
