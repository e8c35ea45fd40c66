/**
 * Writes one layer as a reproducible tar (FORMATS.md §1) through a LayerSink. Store items are walked in NAR /
 * `--sort=name` order and each file is read exactly once, straight into the sink's batch buffer. Every entry gets
 * uid/gid 0, owner names root, the image's creation time; modes are kept. Hardlinks are not preserved: a store
 * item's content is defined by its NAR, which has none, so whether the host store was deduplicated with hardlinks
 * (nix-store --optimise) must not change the image.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError, StoreError } from "../errors.ts";
import type { CustomEntry } from "../plan/types.ts";
import type { StoreLocation } from "../store/types.ts";
import { walkTree, type WalkEntry } from "../store/walk.ts";
import { encodeHeader, paddingFor, ZERO_BLOCKS, type TarHeader } from "./tar.ts";
import type { LayerSink } from "./sink.ts";

export interface LayerContent {
  /** Logical store paths of the items in this layer, sorted. */
  items: string[];
  /** Non-store entries (customisation layer), absolute image paths sorted bytewise, parents first. */
  entries: CustomEntry[];
}

export interface LayerContext {
  store: StoreLocation;
  /** Seconds since the epoch, for every entry's mtime. */
  mtime: number;
  /** Directory that relative `source` files of custom entries are read from (the config's directory). */
  sourceDir: string;
  /** Tar bytes produced so far, reported as they are handed on (progress display). */
  onBytes?: ((n: number) => void) | undefined;
  /** Called for each entry written (for NAR hashing later); optional. */
  onEntry?: (entry: WalkEntry, item: string) => void;
}

const DIR_MODE = 0o755;

function header(name: string, type: TarHeader["type"], mode: number, mtime: number, extra: Partial<TarHeader> = {}): Buffer {
  return encodeHeader({ name, type, mode, mtime, uid: 0, gid: 0, uname: "root", gname: "root", ...extra });
}

/** Store-dir parents (`gnu/`, `gnu/store/`), identical in every layer so an upper layer never changes them. */
function storeParents(storeDir: string): string[] {
  const parts = storeDir.split("/").filter(Boolean);
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

async function writeFileData(sink: LayerSink, file: string, size: number, label: string): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (cause) {
    throw new StoreError(`reading ${label}: ${(cause as Error).message}`, { cause });
  }
  try {
    let left = size;
    while (left > 0) {
      if (sink.free === 0) await sink.flush();
      const view = sink.batchView();
      const want = Math.min(view.length, left);
      let n: number;
      try {
        n = fs.readSync(fd, view, 0, want, null);
      } catch (cause) {
        throw new StoreError(`reading ${label}: ${(cause as Error).message}`, { cause });
      }
      if (n === 0) throw new StoreError(`reading ${label}: file shrank while it was being archived (expected ${size} bytes)`);
      sink.commit(n);
      left -= n;
    }
  } finally {
    fs.closeSync(fd);
  }
  await sink.zeros(paddingFor(size));
}

async function writeItem(sink: LayerSink, item: string, ctx: LayerContext): Promise<void> {
  const host = path.join(ctx.store.root, item);
  const base = item.slice(1);
  for (const entry of walkTree(host, { label: item })) {
    ctx.onEntry?.(entry, item);
    const name = entry.rel === "" ? base : `${base}/${entry.rel}`;
    switch (entry.type) {
      case "directory":
        await sink.write(header(name, "directory", entry.mode, ctx.mtime));
        break;
      case "symlink":
        await sink.write(header(name, "symlink", 0o777, ctx.mtime, { linkname: entry.target! }));
        break;
      case "file":
        await sink.write(header(name, "file", entry.mode, ctx.mtime, { size: entry.size }));
        await writeFileData(sink, entry.hostPath, entry.size, `${item}/${entry.rel}`);
        break;
    }
  }
}

async function writeCustomEntry(sink: LayerSink, entry: CustomEntry, ctx: LayerContext): Promise<void> {
  const name = entry.path.replace(/^\/+/, "");
  switch (entry.type) {
    case "directory":
      await sink.write(header(name, "directory", parseInt(entry.mode, 8), ctx.mtime));
      return;
    case "symlink":
      await sink.write(header(name, "symlink", 0o777, ctx.mtime, { linkname: entry.target }));
      return;
    case "file": {
      const mode = parseInt(entry.mode, 8);
      if (entry.content !== undefined) {
        const data = Buffer.from(entry.content);
        await sink.write(header(name, "file", mode, ctx.mtime, { size: data.length }));
        await sink.write(data);
        await sink.zeros(paddingFor(data.length));
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
      await sink.write(header(name, "file", mode, ctx.mtime, { size }));
      await writeFileData(sink, source, size, source);
      return;
    }
  }
}

/**
 * Writes a whole layer: custom entries and the store part merged in name order (the store part sits where its top
 * directory sorts), then the end-of-archive blocks.
 */
export async function writeLayer(sink: LayerSink, content: LayerContent, ctx: LayerContext): Promise<void> {
  // Entries come sorted component by component (tar --sort=name order); the store part sits where its top
  // directory's name sorts among the top-level names.
  const storeTop = Buffer.from(storeParents(ctx.store.dir)[0]!);
  const top = (e: CustomEntry) => Buffer.from(e.path.split("/").filter(Boolean)[0] ?? "");
  const split = content.entries.findIndex((e) => Buffer.compare(top(e), storeTop) > 0);
  const before = split === -1 ? content.entries : content.entries.slice(0, split);
  const after = split === -1 ? [] : content.entries.slice(split);
  for (const e of before) await writeCustomEntry(sink, e, ctx);
  if (content.items.length > 0) {
    for (const dir of storeParents(ctx.store.dir)) await sink.write(header(dir, "directory", DIR_MODE, ctx.mtime));
    for (const item of content.items) await writeItem(sink, item, ctx);
  }
  for (const e of after) await writeCustomEntry(sink, e, ctx);
  await sink.write(ZERO_BLOCKS);
}
