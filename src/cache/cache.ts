/**
 * The content-addressed layer cache. Layout under the cache directory:
 *   blobs/sha256/<hex>   stored (compressed) layer blobs, read-only, named by digest
 *   packs/<id>.tar       docker archives this cache wrote, hard-linked here: their layers are blobs at an offset,
 *                        so a cold build writes each layer once (into the archive) and still fills the cache
 *   layers/<key>.json    what a layer key produced: digests, sizes, media type, NAR hashes of its store items
 *   scan/<hash>.json     what reference scans found in the store items of one store directory (items are immutable),
 *                        one file per directory so that a build reads one file, not one per item
 *   plans/<key>.json     layer plans by the inputs that shape them (src/plan/memo.ts)
 *   registry/<host>.json which repository of a registry each pushed blob went to (mount hints, registry/output.ts)
 *   tmp/                 temp files, renamed into place when complete
 * Every write is temp + rename, so concurrent builds on one cache never see partial files; two builds that make the
 * same blob write identical bytes, so whichever rename wins is right.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { LayerBlob } from "../oci/types.ts";
import type { ScanMemo } from "../store/scan.ts";
import { collectStale, isStale, tempName } from "../util/temp.ts";
import { SHA256_DIGEST, sha256Hex } from "../util/digest.ts";
import { homeDir, makeDirs, xdgDir } from "../util/dirs.ts";
import { LayerpackError } from "../errors.ts";
import { fileKind } from "../util/format.ts";
import { openRegular } from "../oci/blob-file.ts";
import { lstatOrUndefined, placeFile, readCacheFile, removeIfWritable, vanished } from "./files.ts";

export interface NarInfo {
  /** `sha256:<hex>` of the item's NAR. */
  hash: string;
  size: number;
}

export interface CachedLayer extends LayerBlob {
  /** Where the blob starts in `file` when it lives in a pack (0 or absent for a loose blob). */
  offset?: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** NAR hash and size of each store item in the layer, when they were computed. */
  nar?: Record<string, NarInfo>;
  /** `perms` globs that matched an entry of the layer (so a cache hit can still tell which rules match nothing). */
  permsMatched?: string[];
  /** A base image's layer (src/image/base.ts): what it holds of the store (items with their NAR sizes where whole,
   * and the paths it deletes from the layers below). */
  baseListing?: { items: { path: string; narSize?: number }[]; whiteouts: string[]; opaque: string[] };
  /** Not in this cache: a cache source's repository holds the blob (image/remote-cache.ts); `file` is empty. */
  remote?: { registry: string; repository: string };
  /** In this cache, fetched and checked from a source in another repository of the registry pushed to: mounted from there instead of uploaded. */
  mountFrom?: string;
}

export interface ScanRecord {
  /** Identity of the item's top directory when it was scanned (see itemIdentity). */
  identity: string;
  narSize: number;
  /** Logical store paths, sorted. */
  references: string[];
  /** Hash parts of missing items its files name (ScanResult.mentions). */
  mentions?: string[];
}

/** The cache directory: an explicit one, else $LAYERPACK_CACHE_DIR, else $XDG_CACHE_HOME/layerpack, else ~/.cache/layerpack. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.LAYERPACK_CACHE_DIR) return path.resolve(env.LAYERPACK_CACHE_DIR);
  const home = homeDir(env);
  const base = xdgDir(env, "XDG_CACHE_HOME") ?? (home !== undefined ? path.join(home, ".cache") : undefined);
  // (Callers that build take this for a warning and build without a cache.)
  if (base === undefined) throw new LayerpackError("there is no home directory (HOME is unset or not an absolute path, and this user has none): set LAYERPACK_CACHE_DIR or --cache-dir");
  return path.join(base, "layerpack");
}

const PACK_GRACE_MS = 10 * 60_000;

/** The names adoptPack gives packs. */
const PACK_NAME = /^[0-9a-f]{24}\.tar$/;
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * A layer entry as it must be to be used. The cache is a directory anyone with write access to it (a CI cache
 * restored from another job) can change: an entry whose digest or pack is not a name this cache makes would
 * otherwise send reads, and the removal of a damaged blob, outside it.
 */
const entrySchema = z.object({
  digest: z.string().regex(SHA256_DIGEST),
  diffId: z.string().regex(SHA256_DIGEST),
  size: count,
  mediaType: z.string().max(256),
  tarSize: count,
  offset: count.optional(),
  pack: z.string().regex(PACK_NAME).optional(),
  nar: z.record(z.string(), z.object({ hash: z.string().regex(SHA256_DIGEST), size: count })).optional(),
  permsMatched: z.array(z.string()).optional(),
  baseListing: z
    .object({ items: z.array(z.object({ path: z.string(), narSize: count.optional() })), whiteouts: z.array(z.string()), opaque: z.array(z.string()) })
    .optional(),
  remote: z.object({ registry: z.string(), repository: z.string() }).optional(),
});
export type LayerEntry = z.infer<typeof entrySchema>;

/** A layer entry file's content if it is one, else undefined (missing, damaged or tampered with: a miss). */
export function parseLayerEntry(text: string): LayerEntry | undefined {
  try {
    const parsed = entrySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const hexOf = (digest: string) => {
  // Every path made from a digest goes through here: nothing but a sha256 names a file.
  if (!SHA256_DIGEST.test(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest.slice(0, 80))}`);
  return digest.slice("sha256:".length);
};

export class LayerCache {
  readonly dir: string;

  /**
   * Opens (creating) the cache at `dir` for a build: throws when it cannot be written — mkdir succeeds on an
   * existing directory that is read-only, so a probe file is written — and collects the temp files builds that
   * were killed left in tmp/. `readOnly` opens it for looking only (cache info): nothing is created or removed.
   */
  constructor(dir: string, options: { readOnly?: boolean } = {}) {
    this.dir = dir;
    if (options.readOnly) return;
    for (const sub of ["blobs", "blobs/sha256", "packs", "layers", "scan", "plans", "outputs", "registry", "tmp"]) {
      makeDirs(path.join(dir, sub));
      // A link in place of one of the cache's own directories would send its writes, and prune's removals, elsewhere.
      const st = fs.lstatSync(path.join(dir, sub));
      if (!st.isDirectory()) throw new Error(`${path.join(dir, sub)} is ${fileKind(st)}, not a directory; the cache's directories are never used through links (remove it)`);
    }
    const probe = this.tempPath("probe");
    fs.writeFileSync(probe, "");
    fs.rmSync(probe);
    collectStale(path.join(dir, "tmp"), isStale);
  }

  blobPath(digest: string): string {
    return path.join(this.dir, "blobs", "sha256", hexOf(digest));
  }

  /** A fresh temp file name inside the cache (same file system as the blobs, so rename is atomic). */
  tempPath(hint: string): string {
    return path.join(this.dir, "tmp", tempName(hint));
  }

  #writeJson(file: string, value: unknown): void {
    const temp = this.tempPath(path.basename(file));
    fs.writeFileSync(temp, JSON.stringify(value));
    placeFile(temp, file);
  }

  /**
   * The entry, `undefined` when missing or unreadable, `null` when its content is not an entry or it is not a
   * regular file (a FIFO would block the read for ever): dropped by getLayer.
   */
  #readEntry(file: string): LayerEntry | undefined | null {
    const data = readCacheFile(file);
    return data ? (parseLayerEntry(data.toString("utf8")) ?? null) : data;
  }

  #readJson<T>(file: string): T | undefined {
    const data = readCacheFile(file);
    // Not a regular file: never ours, and in the way of the file to be written there.
    if (data === null) removeIfWritable(file);
    try {
      return data ? (JSON.parse(data.toString("utf8")) as T) : undefined;
    } catch {
      // Damaged (a partial file cannot appear, but a disk can lose one): treat as a miss.
      return undefined;
    }
  }

  /**
   * The layer a key produced, if its blob is still there with the right size. A truncated or missing blob is a
   * miss (and its entry is dropped); content corruption is caught where blobs are copied: each copy checks the
   * digest, and a damaged blob is built again (outputs.ts, rebuildDamaged).
   */
  getLayer(key: string): CachedLayer | undefined {
    const file = path.join(this.dir, "layers", `${key}.json`);
    const entry = this.#readEntry(file);
    // Damaged or not ours: a miss, and gone (unless the cache is read-only).
    if (entry === null) removeIfWritable(file);
    if (!entry) return undefined;
    const { pack, ...layer } = entry;
    const blob = pack !== undefined ? path.join(this.dir, "packs", pack) : this.blobPath(entry.digest);
    const end = (layer.offset ?? 0) + layer.size;
    // lstat: a link, FIFO, device or directory in a blob's place is a miss, never followed or opened.
    const st = lstatOrUndefined(blob);
    const size = st?.isFile() ? st.size : -1;
    if (pack !== undefined ? size < end : size !== end) {
      fs.rmSync(file, { force: true });
      // What is in a loose blob's place goes too (a link as itself); a pack is left to #collectPacks and prune.
      if (st !== undefined && pack === undefined) removeIfWritable(blob);
      return undefined;
    }
    // Touch the entry: prune keeps what was used recently.
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      // read-only cache: fine
    }
    return { ...layer, file: blob };
  }

  /**
   * Keeps a docker archive this build just wrote as a pack: hard-linked (no bytes copied) and every layer's entry
   * pointed at its offset in it. Packs no entry refers to any more are removed. Where a hard link is impossible
   * (another file system), the layers are copied out as loose blobs instead.
   */
  adoptPack(archive: string, layers: { key: string; offset: number; layer: Omit<CachedLayer, "file" | "offset"> }[]): void {
    const name = `${randomBytes(12).toString("hex")}.tar`;
    const pack = path.join(this.dir, "packs", name);
    try {
      fs.linkSync(archive, pack);
    } catch {
      for (const l of layers) this.loosen(l.key, { ...l.layer, file: archive, offset: l.offset });
      return;
    }
    for (const l of layers) this.#writeJson(path.join(this.dir, "layers", `${l.key}.json`), { ...l.layer, pack: name, offset: l.offset });
    this.#collectPacks();
  }

  /**
   * Copies a packed blob out as a loose blob file (OCI layouts hard-link loose blobs; pushes read whole files).
   * Undefined when the pack is gone, short or not a regular file (another build replaced it, or someone put a FIFO
   * there, which would block the open): the caller builds the layer again.
   */
  loosen(key: string, layer: CachedLayer): CachedLayer | undefined {
    if (layer.offset === undefined) return layer;
    const { offset, file, ...rest } = layer;
    let src: ReturnType<typeof openRegular>;
    try {
      src = openRegular(file, "pack");
    } catch {
      src = undefined;
    }
    if (src === undefined) return undefined;
    const temp = this.tempPath("loosen");
    let done = 0;
    try {
      if (Number(src.stats.size) < offset + layer.size) return undefined;
      const dst = fs.openSync(temp, "wx", 0o644);
      try {
        const buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(layer.size, 1)));
        while (done < layer.size) {
          const n = fs.readSync(src.fd, buf, 0, Math.min(buf.length, layer.size - done), offset + done);
          if (n === 0) break;
          fs.writeSync(dst, buf, 0, n);
          done += n;
        }
      } finally {
        fs.closeSync(dst);
      }
    } finally {
      fs.closeSync(src.fd);
      if (done !== layer.size) fs.rmSync(temp, { force: true });
    }
    return done === layer.size ? this.putLayer(key, temp, rest) : undefined;
  }

  /**
   * Removes packs no layer entry refers to (a rebuild re-points every entry at its own, newer pack), once they are
   * ten minutes old: a build running at the same time may still be copying from one, or linking one in.
   */
  #collectPacks(): void {
    const used = new Set<string>();
    for (const f of fs.readdirSync(path.join(this.dir, "layers"))) {
      const pack = this.#readEntry(path.join(this.dir, "layers", f))?.pack;
      if (pack !== undefined) used.add(pack);
    }
    const now = Date.now();
    for (const f of fs.readdirSync(path.join(this.dir, "packs"))) {
      if (used.has(f) || !PACK_NAME.test(f)) continue;
      const pack = path.join(this.dir, "packs", f);
      try {
        if (now - fs.statSync(pack).ctimeMs > PACK_GRACE_MS) fs.rmSync(pack, { force: true });
      } catch {
        // gone meanwhile
      }
    }
  }

  /** Moves a finished blob file into the store and records the layer under `key`. */
  putLayer(key: string, tempBlob: string, layer: Omit<CachedLayer, "file">): CachedLayer {
    const blob = this.blobPath(layer.digest);
    try {
      fs.chmodSync(tempBlob, 0o444);
    } catch (cause) {
      throw vanished(tempBlob, cause);
    }
    placeFile(tempBlob, blob);
    const { offset: _offset, ...loose } = layer as Omit<CachedLayer, "file">;
    this.#writeJson(path.join(this.dir, "layers", `${key}.json`), loose);
    return { ...loose, file: blob };
  }

  /** Adds NAR facts found after the layer was built (a push needs them, the build that made it did not) to its entry. */
  addNar(key: string, layer: Pick<CachedLayer, "digest">, nar: Record<string, NarInfo>): void {
    const file = path.join(this.dir, "layers", `${key}.json`);
    const entry = this.#readEntry(file);
    if (!entry || entry.digest !== layer.digest) return;
    try {
      this.#writeJson(file, { ...entry, nar: { ...entry.nar, ...nar } });
    } catch {
      // read-only cache: the facts are still used by this build
    }
  }

  /**
   * Forgets a layer whose blob turned out to be damaged — unless another build has meanwhile re-pointed the entry
   * elsewhere, which is then left alone. A damaged pack is left to prune.
   */
  dropLayer(key: string, blob: Pick<CachedLayer, "digest" | "offset" | "file">): void {
    const file = path.join(this.dir, "layers", `${key}.json`);
    const entry = this.#readEntry(file);
    const same = entry != null && entry.digest === blob.digest && entry.offset === blob.offset && (entry.pack === undefined) === (blob.offset === undefined);
    if (same) fs.rmSync(file, { force: true });
    // recursive: a directory in a blob's place is inside the cache, and rm never follows the links in it.
    if (blob.offset === undefined && same) fs.rmSync(this.blobPath(blob.digest), { force: true, recursive: true });
  }

  /**
   * Remembered scan results (store/scan.ts's ScanMemo): one file per store directory, read once per memo and
   * written once when the scan is complete. A record counts only while the item on disk is the one scanned.
   */
  scanMemo(): ScanMemo {
    const groups = new Map<string, { records: Record<string, ScanRecord>; dirty: boolean }>();
    const group = (dir: string) => {
      let g = groups.get(dir);
      if (!g) {
        const stored = this.#readJson<{ dir?: unknown; records?: unknown }>(path.join(this.dir, "scan", `${scanKey(dir)}.json`));
        const records = stored?.dir === dir && typeof stored.records === "object" && stored.records !== null ? (stored.records as Record<string, ScanRecord>) : {};
        g = { records, dirty: false };
        groups.set(dir, g);
      }
      return g;
    };
    return {
      get: (hostPath) => {
        const r = group(path.dirname(hostPath)).records[path.basename(hostPath)];
        const strings = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === "string");
        const valid = r && typeof r.narSize === "number" && strings(r.references) && (r.mentions === undefined || strings(r.mentions));
        return valid && r.identity === itemIdentity(hostPath) ? { narSize: r.narSize, references: r.references, ...(r.mentions ? { mentions: r.mentions } : {}) } : undefined;
      },
      put: (hostPath, record) => {
        const g = group(path.dirname(hostPath));
        g.records[path.basename(hostPath)] = { identity: itemIdentity(hostPath), ...record };
        g.dirty = true;
      },
      save: () => {
        for (const [dir, g] of groups) {
          if (g.dirty) this.#writeJson(path.join(this.dir, "scan", `${scanKey(dir)}.json`), { dir, records: g.records });
          g.dirty = false;
        }
      },
    };
  }

  /** A plan remembered under `key` (unvalidated: the caller parses it), or undefined. */
  getPlan(key: string): unknown {
    const file = path.join(this.dir, "plans", `${key}.json`);
    const plan = this.#readJson<unknown>(file);
    // Its age is its last use, for `cache prune --older-than`.
    if (plan !== undefined) fs.promises.utimes(file, new Date(), new Date()).catch(() => {});
    return plan;
  }

  putPlan(key: string, plan: unknown): void {
    this.#writeJson(path.join(this.dir, "plans", `${key}.json`), plan);
  }
}

/**
 * Store items are immutable, but stores assembled by hand (fixtures, chroot copies) can put other content under
 * the same path. The top directory's device, inode and change time tell a re-created item from the one scanned.
 */
export function itemIdentity(hostPath: string): string {
  try {
    const st = fs.lstatSync(hostPath, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch {
    return "missing";
  }
}

function scanKey(hostPath: string): string {
  return sha256Hex(path.resolve(hostPath));
}
