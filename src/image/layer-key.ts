/**
 * A layer's cache key: everything that shapes its bytes and nothing else. Store items are immutable, so a store
 * layer is keyed by its item paths (plus each item's on-disk identity and NAR size and hash as the closure gives
 * them, which guard against hand-made stores that put new content under an old path) and never read on a hit. Non-store inputs are keyed by their content.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { itemIdentity } from "../cache/cache.ts";
import { canonicalJson } from "./config.ts";
import type { LayerContent, LayerContext } from "./layer.ts";
import type { Compression } from "./sink.ts";
import { mayMatchUnder } from "./perms.ts";
import { sha256Hex } from "../util/digest.ts";

/** Bump when the tar writer or compressor settings change the bytes of an unchanged layer. */
export const LAYER_FORMAT = 5; // 4: store modes as the NAR has them (0555 directories and executables, 0444 files); 5: a store parent's siblings in name order

/**
 * sha256 of a host file, read in chunks (any size, constant memory). Only a regular file is read: opened without
 * blocking (a FIFO would hang) and checked on the open descriptor. Anything else gets a key that never matches;
 * the build itself then reports the file.
 */
export function fileDigest(file: string): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return `not-a-file:${Date.now()}`;
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
    return hash.digest("hex");
  } catch {
    return `unreadable:${Date.now()}`;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The perms rules that can touch this layer: every rule for non-store content, else those that may reach an item. */
function relevantPerms(content: LayerContent, ctx: LayerContext): unknown[] {
  const rules = ctx.perms ?? [];
  const onlyStore = content.entries.length === 0 && (content.rootSystem ?? []).length === 0;
  const relevant = onlyStore ? rules.filter((r) => content.items.some((it) => mayMatchUnder(r.path, it))) : rules;
  return relevant.map((r) => [r.path, r.uid ?? null, r.gid ?? null, r.mode ?? null]);
}

/**
 * What a compressed layer's bytes depend on besides its content: zstd's output changes between library versions
 * (Node 22.15 bundles zstd 1.5.6, 22.16 and later and 24 bundle 1.5.7, and their level-3 frames differ), so a zstd
 * layer made by one is never reused as the other's: a build's bytes follow its inputs and its Node, never what the
 * cache happens to hold. Deflate's output is the same on every supported Node (checked in test/e2e/package.test.ts),
 * so gzip layers stay shared across Node upgrades.
 */
function codecVersion(compression: Compression): { zstd?: string } {
  return compression === "zstd" ? { zstd: process.versions.zstd ?? "none" } : {};
}

export function layerKey(content: LayerContent, ctx: LayerContext, compression: Compression): string {
  return layerKeys(content, ctx, compression).key;
}

/**
 * The local key (with each item's on-disk identity) and the portable key (store paths alone), made in one pass so
 * host files are read once. Cache records published for other machines use the portable key: another machine's
 * copy of a store item has another inode and ctime, but the same store path names the same content.
 */
export function layerKeys(content: LayerContent, ctx: LayerContext, compression: Compression): { key: string; portable: string } {
  const key = {
    format: LAYER_FORMAT,
    storeDir: ctx.store.dir,
    mtime: ctx.mtime,
    compression,
    ...codecVersion(compression),
    entries: content.entries.map((e) => {
      if (e.type === "file" && e.source !== undefined) return { ...e, sourceDigest: fileDigest(path.resolve(ctx.sourceDir, e.source)) };
      if (e.type === "file" && e.generated !== undefined) {
        const bytes = ctx.generated?.get(e.path);
        return { ...e, generatedDigest: bytes ? sha256Hex(bytes) : null };
      }
      return e;
    }),
    // The root system is keyed by content: paths, types, modes, owners, link targets and file bytes.
    ...(content.rootSystem
      ? {
          rootSystem: content.rootSystem.map((e) => [e.path, e.type, e.mode, e.uid, e.gid, e.target ?? null, e.devmajor ?? null, e.devminor ?? null, e.type === "file" ? fileDigest(e.hostPath) : null]),
        }
      : {}),
  };
  const perms = relevantPerms(content, ctx);
  if (perms.length > 0) Object.assign(key, { perms });
  return {
    key: sha256Hex(canonicalJson({ ...key, items: content.items.map((p, i) => [p, itemIdentity(path.join(ctx.store.root, p)), content.facts?.[i] ?? null]) })),
    // Sizes only: a hash is known from some closure sources and not others, and a size is the same on every machine.
    portable: sha256Hex(canonicalJson({ ...key, portable: true, items: content.items.map((p, i) => [p, content.facts?.[i]?.split(":")[0] ?? null]) })),
  };
}
