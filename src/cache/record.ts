/**
 * The cache record a push publishes beside its image (issue 20): for each layer, the key the local layer cache
 * files it under (image/layer-key.ts), its digests, sizes and media type, and the NAR facts of its store items. A
 * later build, on any machine, that computes the same key can reuse the layer without reading or compressing it.
 *
 * Format version 1 (docs in README, "Sharing layers between runners"): one JSON blob,
 *   { "version": 1, "layers": [{ key, digest, diffId, size, tarSize, mediaType, nar?: { <store path>: { hash, size } } }] }
 * carried as an OCI artifact (artifactType CACHE_ARTIFACT_TYPE) whose `subject` is the image manifest in a
 * registry, and in an OCI layout as a blob its index entries name (CACHE_RECORD_ANNOTATION). It holds
 * no host paths: keys are digests, store paths are logical, file sources are keyed by content.
 *
 * Records come from registries and directories other people write: they are parsed with a strict schema and
 * size limits, and a record is only ever used for the exact key it names.
 */
import { z } from "zod";
import type { CachedLayer } from "./cache.ts";
import { SHA256_DIGEST } from "../util/digest.ts";

export const CACHE_ARTIFACT_TYPE = "application/vnd.layerpack.cache.v1+json";
/** In an OCI layout, the index entries of an image name its record's blob by this annotation (digest value). */
export const CACHE_RECORD_ANNOTATION = "dev.layerpack.cache.record";
export const CACHE_RECORD_VERSION = 1;
/** A record names at most this many layers and store items: far above layers.max (127) and any real closure. */
const MAX_ITEMS = 200_000;
/** The most bytes of a record blob read from a source. */
export const MAX_RECORD_BYTES = 64 << 20;

const digest = z.string().regex(SHA256_DIGEST, "must be sha256: and 64 hex digits");
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const layerRecord = z.strictObject({
  key: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 hex digits"),
  digest,
  diffId: digest,
  size,
  tarSize: size,
  mediaType: z.string().regex(/^application\/vnd\.oci\.image\.layer\.v1\.tar(\+gzip|\+zstd)?$/, "must be an OCI layer media type"),
  nar: z
    .record(z.string().regex(/^\/[^\0]*$/, "must be a store path"), z.strictObject({ hash: digest, size }))
    .refine((r) => Object.keys(r).length <= MAX_ITEMS, `at most ${MAX_ITEMS} items`)
    .optional(),
  permsMatched: z.array(z.string().max(4096)).max(1000).optional(),
});

export const cacheRecordSchema = z.strictObject({
  version: z.literal(CACHE_RECORD_VERSION),
  layers: z.array(layerRecord).max(1000),
});

export type LayerRecord = z.infer<typeof layerRecord>;
export type CacheRecord = z.infer<typeof cacheRecordSchema>;

/** The record of a build's layers (base layers are not ours to describe: their keys are by digest). */
export function makeRecord(layers: readonly { key: string; layer: Omit<CachedLayer, "file" | "offset"> }[]): CacheRecord {
  const out: LayerRecord[] = [];
  const seen = new Set<string>();
  for (const { key, layer } of layers) {
    if (!/^[0-9a-f]{64}$/.test(key) || seen.has(key)) continue;
    seen.add(key);
    const nar = layer.nar && Object.keys(layer.nar).length > 0 ? Object.fromEntries(Object.entries(layer.nar).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined;
    out.push({
      key,
      digest: layer.digest,
      diffId: layer.diffId,
      size: layer.size,
      tarSize: layer.tarSize,
      mediaType: layer.mediaType,
      ...(nar ? { nar } : {}),
      ...(layer.permsMatched?.length ? { permsMatched: [...layer.permsMatched].sort() } : {}),
    });
  }
  return { version: CACHE_RECORD_VERSION, layers: out };
}

/** Canonical bytes of a record: same layers, same bytes (so pushing it twice sends nothing new). */
export function recordBytes(record: CacheRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record)}\n`);
}

/** Parses a record read from `where`; a bad one is an error the caller turns into a warning. */
export function parseRecord(data: Buffer, where: string): CacheRecord {
  let json: unknown;
  try {
    json = JSON.parse(data.toString("utf8"));
  } catch (cause) {
    throw new Error(`${where}: the cache record is not JSON (${(cause as Error).message})`);
  }
  const parsed = cacheRecordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${where}: the cache record is not layerpack's version ${CACHE_RECORD_VERSION} format: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  return parsed.data;
}
