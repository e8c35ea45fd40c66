/**
 * A layer's cache key: everything that shapes its bytes and nothing else. Store items are immutable, so a store
 * layer is keyed by its item paths (plus each item's on-disk identity, which guards against hand-made stores that
 * put new content under an old path) and never read on a hit. Non-store inputs are keyed by their content.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { itemIdentity } from "../cache/cache.ts";
import { canonicalJson } from "./config.ts";
import type { LayerContent, LayerContext } from "./layer.ts";
import type { Compression } from "./sink.ts";

/** Bump when the tar writer or compressor settings change the bytes of an unchanged layer. */
export const LAYER_FORMAT = 1;

function fileDigest(file: string): string {
  try {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  } catch {
    // Unreadable now: the build will report it; a key that never matches is fine meanwhile.
    return `unreadable:${Date.now()}`;
  }
}

export function layerKey(content: LayerContent, ctx: LayerContext, compression: Compression): string {
  const key = {
    format: LAYER_FORMAT,
    storeDir: ctx.store.dir,
    mtime: ctx.mtime,
    compression,
    items: content.items.map((p) => [p, itemIdentity(path.join(ctx.store.root, p))]),
    entries: content.entries.map((e) =>
      e.type === "file" && e.source !== undefined ? { ...e, sourceDigest: fileDigest(path.resolve(ctx.sourceDir, e.source)) } : e,
    ),
  };
  return createHash("sha256").update(canonicalJson(key)).digest("hex");
}
