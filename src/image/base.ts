/**
 * Base images (`base:` in the config): any image src/oci/name.ts names. Its layers are reused byte for byte (the
 * same digests), fetched into the layer cache once (key `base-<hex>`, with the store paths each holds, so later
 * plans need not read them again) and checked against their digest and diff_id as they arrive. The plan records
 * the base by its image ID; the build refuses a base that moved since.
 */
import * as fs from "node:fs";
import { z } from "zod";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { BuildError, LayerpackError } from "../errors.ts";
import type { LayerCache, CachedLayer } from "../cache/cache.ts";
import type { Image } from "../oci/image.ts";
import { parseImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { listLayer } from "../oci/list-layer.ts";
import { ArchiveBudget, isGzip, isZstd } from "../oci/blob-file.ts";
import { unpackFailure } from "../oci/verify.ts";
import type { PlanBase } from "../plan/types.ts";
import type { Closure } from "../store/types.ts";
import { mib } from "../util/format.ts";
import { formatPlatform, platformMatches, type Platform } from "../oci/platform.ts";

export interface BaseOptions {
  /** Relative paths in the name are relative to this (the config's directory). */
  cwd: string;
  env?: Record<string, string | undefined>;
  cache?: LayerCache;
  insecure?: boolean;
  /** The platform being built: picked from a multi-platform base, and a base for another one is refused. */
  platform?: Platform;
  /** Ends a registry base's requests at once (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/** What planning needs of a base image: PlanOptions["base"]. */
/** `paths`: the store items the base holds whole; `narSizes`: theirs (compare with the closure's, heldByBase). */
export type ResolvedBase = Omit<PlanBase, "items"> & { paths: string[]; narSizes: Record<string, number>; config: Record<string, unknown> };

// base2: listings since every shallow file counts as hiding what is below it (a store outside /gnu and /nix).
export const baseKey = (digest: string) => `base2-${digest.slice("sha256:".length)}`;

async function compressionOf(file: string): Promise<"gzip" | "zstd" | "none"> {
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(4);
    fs.readSync(fd, head, 0, 4, 0);
    return isGzip(head) ? "gzip" : isZstd(head) ? "zstd" : "none";
  } finally {
    fs.closeSync(fd);
  }
}

/** What a base layer holds of the store, as listLayer found it (kept in the layer's cache entry). */
type BaseListing = NonNullable<CachedLayer["baseListing"]>;
type FetchedLayer = CachedLayer & { baseListing: BaseListing };

/** One base layer in the cache (fetched when missing) with what it holds of the store. */
async function fetchLayer(image: Image, i: number, into: { cache: LayerCache; label: string }): Promise<FetchedLayer> {
  const { cache, label } = into;
  const layer = image.layers[i]!;
  const key = baseKey(layer.digest);
  const hit = cache.getLayer(key);
  if (hit?.baseListing && (layer.diffId === undefined || hit.diffId === layer.diffId)) return hit as FetchedLayer;
  // The size is the manifest's word, and the download is held to it: a size past the free space fails now, not
  // when the disk is full.
  const stat = fs.statfsSync(cache.dir);
  const free = stat.bavail * stat.bsize;
  if (layer.size > free) {
    throw new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) is ${mib(layer.size)} by its manifest, more than the ${mib(free)} free where the cache is (${cache.dir})`);
  }
  const temp = cache.tempPath(`base-${i}`);
  try {
    await pipeline(await layer.open(), fs.createWriteStream(temp, { flags: "wx", mode: 0o600 }));
    const listing = await listLayer(fs.createReadStream(temp), await compressionOf(temp), new ArchiveBudget(label)).catch((cause: unknown) => {
      // zlib's and tar-stream's errors say nothing of which layer: an internal error's stack before.
      throw cause instanceof LayerpackError ? cause : new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) is damaged: ${unpackFailure(cause)}`, { cause });
    });
    if (layer.diffId !== undefined && listing.diffId !== layer.diffId) {
      throw new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) unpacks to ${listing.diffId}, but its config's diff_id says ${layer.diffId}`);
    }
    const baseListing: BaseListing = {
      items: listing.items.map((it) => ({ path: it.path, ...(it.narSize !== undefined ? { narSize: it.narSize } : {}) })),
      whiteouts: listing.whiteouts,
      opaque: listing.opaque,
    };
    const stored = cache.putLayer(key, temp, { digest: layer.digest, diffId: listing.diffId, size: layer.size, mediaType: layer.mediaType, tarSize: listing.uncompressedSize, baseListing });
    return { ...stored, baseListing };
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

const text = z.string().max(1 << 16);
/** The parts of a base's config this image's config is made from (config.ts onBase), as the image spec has them. */
const baseConfigSchema = z.looseObject({
  os: text,
  architecture: text,
  variant: text.optional(),
  config: z
    .looseObject({
      Env: z.array(text.regex(/^[^=]+=/, "must be KEY=VALUE")).nullish(),
      Labels: z.record(z.string(), text).nullish(),
      ExposedPorts: z.record(z.string(), z.looseObject({})).nullish(),
      Volumes: z.record(z.string(), z.looseObject({})).nullish(),
      Entrypoint: z.array(text).nullish(),
      Cmd: z.array(text).nullish(),
      User: text.optional(),
      WorkingDir: text.optional(),
      StopSignal: text.optional(),
    })
    .nullish(),
  history: z.array(z.looseObject({ created: text.optional(), created_by: text.optional(), comment: text.optional(), author: text.optional(), empty_layer: z.boolean().optional() })).optional(),
});

/** A base whose config the runtime would refuse or misread is refused here, naming the field. */
export function checkBaseConfig(image: Pick<Image, "config">, name: string): void {
  const parsed = baseConfigSchema.safeParse(image.config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`)).join("").replace(/^\./, "");
    throw new LayerpackError(`base ${name}: its config's ${where || "document"} is not what an image config holds: ${issue.message}`);
  }
  // (A history that does not match the layers is left as it is: `umoci repack --no-history` writes one, and runtimes
  // read it.)
}

async function openBase(name: string, opts: BaseOptions): Promise<Image> {
  let image: Image;
  try {
    image = await openImage(parseImageName(name, { cwd: opts.cwd }), {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.insecure ? { insecure: true } : {}),
      ...(opts.platform ? { platform: opts.platform } : {}),
      signal: opts.signal,
    });
  } catch (cause) {
    if (cause instanceof LayerpackError) throw new LayerpackError(`base ${name}: ${cause.message}`, { cause });
    throw cause;
  }
  checkBaseConfig(image, name);
  const c = image.config;
  const its = { os: String(c.os), architecture: String(c.architecture), ...(typeof c.variant === "string" ? { variant: c.variant } : {}) };
  if (opts.platform && !platformMatches(its, opts.platform)) {
    throw new LayerpackError(`base ${name} is an image for ${formatPlatform(its)}, but this image is for ${formatPlatform(opts.platform)}; set architecture (and variant) to match, or use a base for ${formatPlatform(opts.platform)}`);
  }
  return image;
}

/**
 * The store items the base's layers hold whole, with their NAR sizes: stacked as a container runtime stacks them.
 * An item a later layer deletes (a whiteout of it, of a directory above it, an opaque directory) is gone; one that
 * two layers touch, or that a layer holds only part of, is not held (the image then packs it itself, which is
 * always right). The planner counts an item as the base's only when the sizes agree too (held below).
 */
export function heldItems(layers: readonly { baseListing: BaseListing }[]): Map<string, number> {
  const seen = new Map<string, number | undefined>();
  for (const { baseListing: l } of layers) {
    // Each item's ancestors looked up in the layer's sets: a hostile layer's many whiteouts cost no more than its items.
    const whiteout = new Set(l.whiteouts);
    const hidden = new Set([...l.opaque, ...l.whiteouts]);
    if (hidden.size > 0) {
      for (const p of [...seen.keys()]) {
        let gone = whiteout.has(p) || hidden.has("/");
        for (let a = p.slice(0, p.lastIndexOf("/")); !gone && a !== ""; a = a.slice(0, a.lastIndexOf("/"))) gone = hidden.has(a);
        if (gone) seen.delete(p);
      }
    }
    for (const it of l.items) seen.set(it.path, seen.has(it.path) ? undefined : it.narSize);
  }
  const out = new Map<string, number>();
  for (const [p, size] of seen) if (size !== undefined) out.set(p, size);
  return out;
}

/** The base's items that are the closure's: the same path with the same NAR size. */
export function heldByBase(base: Pick<ResolvedBase, "narSizes">, closure: Pick<Closure, "items">): string[] {
  return closure.items.filter((it) => base.narSizes[it.path] === it.narSize).map((it) => it.path);
}

async function fetchAll(image: Image, name: string, cache: LayerCache): Promise<FetchedLayer[]> {
  const out = [];
  for (let i = 0; i < image.layers.length; i++) out.push(await fetchLayer(image, i, { cache, label: `base ${name}` }));
  return out;
}

/**
 * Reads the base image, fetches its layers into `cache` (a temporary one when none is given, removed afterwards)
 * and returns what planning needs. Errors name the base as the config gives it.
 */
export async function resolveBase(name: string, opts: BaseOptions): Promise<ResolvedBase> {
  const image = await openBase(name, opts);
  const { LayerCache } = await import("../cache/cache.ts");
  const temp = opts.cache ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-base-"));
  try {
    const fetched = await fetchAll(image, name, opts.cache ?? new LayerCache(temp!));
    const held = heldItems(fetched);
    const layers = fetched.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType }));
    return { image: name, id: image.configDigest, layers, paths: [...held.keys()].sort(), narSizes: Object.fromEntries(held), config: image.config };
  } finally {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  }
}

/**
 * The base layers a build needs, in `cache` (fetched again when missing: a new or pruned cache), and the base's
 * config; refused when the base no longer is the image the plan was made on.
 */
export async function baseLayers(base: PlanBase, opts: BaseOptions & { cache: LayerCache }): Promise<{ layers: CachedLayer[]; config: Record<string, unknown> }> {
  const image = await openBase(base.image, opts);
  if (image.configDigest !== base.id) {
    throw new BuildError(`base ${base.image} is now ${image.configDigest}, not ${base.id} as the plan says: plan again (layerpack plan --write, or build without a committed plan)`);
  }
  return { layers: await fetchAll(image, base.image, opts.cache), config: image.config };
}
