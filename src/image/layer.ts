/**
 * Writes one layer as a reproducible tar (FORMATS.md §1) through a LayerSink. Store items are walked in NAR /
 * `--sort=name` order and each file is read exactly once, straight into the sink's batch buffer. Every entry gets
 * uid/gid 0, owner names root, the image's creation time; modes are kept (a store item's without special bits: storeMode). Hardlinks are not preserved: a store
 * item's content is defined by its NAR, which has none, so whether the host store was deduplicated with hardlinks
 * (nix-store --optimise) must not change the image.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError, StoreError } from "../errors.ts";
import type { CustomEntry } from "../plan/types.ts";
import { comparePaths } from "../plan/custom.ts";
import type { StoreLocation } from "../store/types.ts";
import { openEntry, openForRead, readInto, walkTree, type WalkEntry } from "../store/walk.ts";
import type { RootSystemEntry } from "../store/types.ts";
import { NarHasher, type NarResult } from "../store/nar.ts";
import type { Perm } from "../config/schema.ts";
import { PermsMatcher } from "./perms.ts";
import { encodeHeader, encodeHeaderInto, paddingFor, RootHeaders, TAR_BLOCK, ZERO_BLOCKS, type TarHeader } from "./tar.ts";
import type { LayerSink } from "./sink.ts";

export interface LayerContent {
  /** Logical store paths of the items in this layer, sorted. */
  items: string[];
  /** Per item (same order): its NAR size and, when the closure's source knows it, its NAR hash (`size:hash`); part
   * of the layer's cache key, so an item whose content moved under the same path is not taken from the cache. */
  facts?: string[];
  /** Non-store entries (customisation layer), absolute image paths sorted bytewise, parents first. */
  entries: CustomEntry[];
  /** A root system's entries (root-system layer), in tar --sort=name order. */
  rootSystem?: RootSystemEntry[];
}

/** What writing a layer learnt besides its bytes. */
export interface LayerWriteResult {
  /** NAR hash and size of each store item, computed from the bytes as they were tarred. */
  nar: Record<string, NarResult>;
  /** `perms` globs that matched an entry of this layer. */
  permsMatched: string[];
}

export interface LayerContext {
  store: StoreLocation;
  /** Seconds since the epoch, for every entry's mtime. */
  mtime: number;
  /** Directory that relative `source` files of custom entries are read from (the config's directory). */
  sourceDir: string;
  /** Tar bytes produced so far, reported as they are handed on (progress display). */
  onBytes?: ((n: number) => void) | undefined;
  /** Stops the build between entries (watch mode's Ctrl-C); the caller's cleanup removes partial files. */
  signal?: AbortSignal | undefined;
  /** `perms` rules: owner and mode overrides by glob. */
  perms?: readonly Perm[];
  /** Bytes of the `generated` custom entries (the store database), by image path, made before the layer. */
  generated?: ReadonlyMap<string, Buffer>;
  /** Makes a `generated` entry's bytes inside a layer that also holds store items (max 1): gets the NAR facts
   * of the items this layer wrote. */
  generate?: (entry: CustomEntry, ownNar: Readonly<Record<string, NarResult>>) => Buffer;
  /** Called for each entry written (for NAR hashing later); optional. */
  onEntry?: (entry: WalkEntry, item: string) => void;
  /**
   * Compute each store item's NAR hash from the same reads (default true). Only the store database, SBOMs and the
   * registry cache record use them, and a build without those spends a tenth of its main thread on the hash.
   */
  hashNar?: boolean;
}

const DIR_MODE = 0o755;

/** A header's fields; `perms` may change its owner and mode. Owner names are "root" for id 0, else empty (numeric
 * ids rule). */
function headerFields(entry: Partial<TarHeader> & Pick<TarHeader, "name" | "type" | "mode">, mtime: number, perms?: PermsMatcher): TarHeader {
  const { name, type, mode, ...extra } = entry;
  let owner = { mode, uid: extra.uid ?? 0, gid: extra.gid ?? 0 };
  if (perms && !perms.empty) owner = perms.apply(`/${name}`, owner);
  const names = { uname: owner.uid === 0 ? "root" : "", gname: owner.gid === 0 ? "root" : "" };
  return { name, type, mtime, ...extra, ...names, mode: owner.mode, uid: owner.uid, gid: owner.gid };
}

/** Writes an entry's header into the sink: straight into its batch when it is one ustar block (most are). */
async function putHeader(w: Writer, entry: Partial<TarHeader> & Pick<TarHeader, "name" | "type" | "mode">): Promise<void> {
  const { sink } = w;
  if (sink.free < TAR_BLOCK) await sink.flush();
  // Most entries are root's, as no perms rule applies: straight from the layer's template.
  if (entry.uid === undefined && entry.gid === undefined && entry.devmajor === undefined && w.perms.empty) {
    if (w.rootHeaders === undefined) w.rootHeaders = RootHeaders.for(w.ctx.mtime);
    if (w.rootHeaders?.encodeInto(sink.batchBuffer, sink.batchUsed, entry)) return sink.commit(TAR_BLOCK);
  }
  const h = headerFields(entry, w.ctx.mtime, w.perms);
  if (encodeHeaderInto(sink.batchBuffer, sink.batchUsed, h)) sink.commit(TAR_BLOCK);
  else await sink.write(encodeHeader(h));
}

/** Store-dir parents (`gnu/`, `gnu/store/`), identical in every layer so an upper layer never changes them. */
function storeParents(storeDir: string): string[] {
  const parts = storeDir.split("/").filter(Boolean);
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

const ONE_BYTE = Buffer.alloc(1);

/**
 * Copies `size` bytes of host file `src.file` (or of `src.fd`, open already and left open) into the sink; `label`
 * names it in errors.
 */
async function writeFileData(sink: LayerSink, src: { file: string; fd?: number; size: number; label: string }, how: { signal: AbortSignal | undefined; hasher?: NarHasher }): Promise<void> {
  const { file, size, label } = src;
  const { signal, hasher } = how;
  const fd = src.fd ?? openForRead(file, label);
  try {
    const grew = () => new StoreError(`reading ${label}: file grew while it was being archived (expected ${size} bytes); build again once it is complete`);
    let left = size;
    // Whether a read already came back short of what it asked for, which for a regular file means its end.
    let atEnd = false;
    while (left > 0) {
      if (sink.free === 0) {
        signal?.throwIfAborted(); // a large file stops between batches, not at its end
        await sink.flush();
      }
      const view = sink.batchView();
      // Asking one byte more than is left, where the batch has room, finds the end in the same read (one system
      // call per small file fewer); the extra byte is never committed.
      const want = Math.min(view.length, left + 1);
      const n = readInto(fd, view, want, label);
      if (n === 0) throw new StoreError(`reading ${label}: file shrank while it was being archived (expected ${size} bytes)`);
      if (n > left) throw grew();
      atEnd = n < want;
      // The NAR hash sees the very bytes the tar gets: one read serves both.
      hasher?.data(view.subarray(0, n));
      sink.commit(n);
      left -= n;
    }
    // A file that grew since its size was taken would be cut short in the tar: that is an error, never silent.
    if (!atEnd && readInto(fd, ONE_BYTE, 1, label) !== 0) throw grew();
  } finally {
    if (src.fd === undefined) fs.closeSync(fd);
  }
  await sink.zeros(paddingFor(size));
}

/** What one layer's writing shares: the sink, the context, this layer's perms matcher. */
interface Writer {
  sink: LayerSink;
  ctx: LayerContext;
  perms: PermsMatcher;
  /** NAR facts of the items written so far. */
  nar: Record<string, NarResult>;
  /** Headers of root's entries (tar.ts), made on first use; null when the mtime is one the general path refuses
   * (it then says why). */
  rootHeaders?: RootHeaders | null;
}

/**
 * The mode a store item's entry gets: what its NAR says, as a Guix or Nix store holds it — 0555 for a directory and
 * an executable file (owner-executable, as NAR serialisers decide), 0444 for any other file. A NAR records nothing
 * else, so nothing else may shape the layer: a store copied under another umask (0500, 0400) or made writable to be
 * deleted (chmod u+w) would give other bytes for the same items, with the same cache keys, so which bytes a build
 * wrote would depend on the cache; and setuid, setgid, sticky or group/other write in a copied store would hand an
 * image's users privileges nobody reviewed. `perms` still sets any mode on purpose.
 */
const storeMode = (type: "directory" | "file", mode: number): number => (type === "directory" || mode & 0o100 ? 0o555 : 0o444);

async function writeItem(w: Writer, item: string): Promise<NarResult | undefined> {
  const { sink, ctx } = w;
  const host = path.join(ctx.store.root, item);
  const base = item.slice(1);
  const hasher = ctx.hashNar === false ? undefined : new NarHasher(item);
  // Files are opened once, and their size and mode taken from the open file (lazyFiles).
  for (const walked of walkTree(host, { label: item, lazyFiles: true })) {
    ctx.signal?.throwIfAborted();
    const opened = walked.type === "file" && walked.size < 0 ? openEntry(walked, item) : undefined;
    try {
      const entry = opened?.entry ?? walked;
      ctx.onEntry?.(entry, item);
      hasher?.entry(entry);
      const name = entry.rel === "" ? base : `${base}/${entry.rel}`;
      switch (entry.type) {
        case "directory":
          await putHeader(w, { name, type: "directory", mode: storeMode("directory", entry.mode) });
          break;
        case "symlink":
          await putHeader(w, { name, type: "symlink", mode: 0o777, linkname: entry.target! });
          break;
        case "file":
          await putHeader(w, { name, type: "file", mode: storeMode("file", entry.mode), size: entry.size });
          await writeFileData(sink, { file: entry.hostPath, ...(opened ? { fd: opened.fd } : {}), size: entry.size, label: `${item}/${entry.rel}` }, { signal: ctx.signal, hasher });
          break;
      }
    } finally {
      if (opened) fs.closeSync(opened.fd);
    }
  }
  return hasher?.end();
}

async function writeRootSystemEntry(w: Writer, e: RootSystemEntry): Promise<void> {
  const { sink } = w;
  const name = e.path.slice(1);
  const owner = { uid: e.uid, gid: e.gid };
  switch (e.type) {
    case "directory":
      await putHeader(w, { name, type: "directory", mode: e.mode, ...owner });
      return;
    case "symlink":
      await putHeader(w, { name, type: "symlink", mode: 0o777, ...owner, linkname: e.target! });
      return;
    case "file":
      await putHeader(w, { name, type: "file", mode: e.mode, ...owner, size: e.size });
      await writeFileData(sink, { file: e.hostPath, size: e.size, label: e.hostPath }, { signal: w.ctx.signal });
      return;
    case "fifo":
      await putHeader(w, { name, type: "fifo", mode: e.mode, ...owner });
      return;
    default:
      await putHeader(w, { name, type: e.type, mode: e.mode, ...owner, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 });
  }
}

async function writeCustomEntry(w: Writer, entry: CustomEntry): Promise<void> {
  const { sink, ctx } = w;
  const name = entry.path.replace(/^\/+/, "");
  switch (entry.type) {
    case "directory":
      await putHeader(w, { name, type: "directory", mode: parseInt(entry.mode, 8) });
      return;
    case "symlink":
      await putHeader(w, { name, type: "symlink", mode: 0o777, linkname: entry.target });
      return;
    case "file": {
      const mode = parseInt(entry.mode, 8);
      const inline =
        entry.generated !== undefined
          ? (ctx.generated?.get(entry.path) ?? ctx.generate?.(entry, w.nar))
          : entry.content !== undefined
            ? Buffer.from(entry.content)
            : undefined;
      if (entry.generated !== undefined && inline === undefined) {
        throw new BuildError(`${entry.path}: the ${entry.generated} was not generated before its layer was written`);
      }
      if (inline !== undefined) {
        await putHeader(w, { name, type: "file", mode: mode, size: inline.length });
        await sink.write(inline);
        await sink.zeros(paddingFor(inline.length));
        return;
      }
      const source = path.resolve(ctx.sourceDir, entry.source!);
      let size: number;
      try {
        const st = fs.statSync(source);
        if (!st.isFile()) throw new Error("not a regular file");
        size = st.size;
      } catch (cause) {
        throw new BuildError(`paths: ${entry.path}: reading source ${source}: ${(cause as Error).message}`, { cause });
      }
      await putHeader(w, { name, type: "file", mode: mode, size });
      await writeFileData(sink, { file: source, size, label: source }, { signal: ctx.signal });
      return;
    }
  }
}

/**
 * Writes a whole layer: custom entries and the store part merged in name order (the store part sits where its top
 * directory sorts), then the end-of-archive blocks. Each store item's NAR hash is computed from the same reads.
 * In a layer that also holds store items (max 1), generated entries (the store database, which needs those hashes)
 * come last, and custom directories that are store parents are not repeated.
 */
export async function writeLayer(sink: LayerSink, content: LayerContent, ctx: LayerContext): Promise<LayerWriteResult> {
  const nar: Record<string, NarResult> = {};
  const w: Writer = { sink, ctx, perms: new PermsMatcher(ctx.perms ?? []), nar };
  const parents = storeParents(ctx.store.dir);
  const withItems = content.items.length > 0;
  const deferred = withItems ? content.entries.filter((e) => e.type === "file" && e.generated !== undefined) : [];
  const entries = withItems
    ? content.entries.filter((e) => !deferred.includes(e) && !(e.type === "directory" && parents.includes(e.path.slice(1))))
    : content.entries;
  for (const e of content.rootSystem ?? []) {
    ctx.signal?.throwIfAborted();
    await writeRootSystemEntry(w, e);
  }
  // Entries come sorted component by component (tar --sort=name order), and so does the store part: each of the
  // store dir's parents where it sorts among them (/gnu/aa between /gnu and /gnu/store, /gnu/zz after the items).
  let next = 0;
  if (withItems) {
    for (const dir of parents) {
      while (next < entries.length && comparePaths(entries[next]!.path, `/${dir}`) < 0) await writeCustomEntry(w, entries[next++]!);
      await putHeader(w, { name: dir, type: "directory", mode: DIR_MODE });
    }
    for (const item of content.items) {
      const facts = await writeItem(w, item);
      if (facts) nar[item] = facts;
    }
  }
  for (; next < entries.length; next++) await writeCustomEntry(w, entries[next]!);
  for (const e of deferred) await writeCustomEntry(w, e);
  await sink.write(ZERO_BLOCKS);
  return { nar, permsMatched: [...w.perms.matched].sort() };
}
