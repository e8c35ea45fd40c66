/**
 * What is in each layer of an image from any source: the store items and their bytes, read from the layer tars
 * (decompressed as their first bytes say), with each layer's uncompressed digest checked against the config's
 * diff_id. `diff` compares images by these diff_ids, so a layer that another tool re-compressed still counts as
 * the same layer.
 */
import { Readable } from "node:stream";
import { LayerpackError } from "../errors.ts";
import { ArchiveBudget, isGzip, isZstd } from "./blob-file.ts";
import type { Image } from "./image.ts";
import { listLayer, type LayerListing } from "./list-layer.ts";
import { scanArchive } from "./read-archive.ts";
import { unpackFailure } from "./verify.ts";

export interface ListedLayer extends LayerListing {
  digest: string;
  size: number;
}

export interface ListedImage {
  architecture: string;
  os: string;
  variant?: string;
  layers: ListedLayer[];
}

/** The stream with its first chunk read, to tell gzip, zstd and plain tar apart. */
async function sniff(stream: Readable): Promise<{ head: Buffer; stream: Readable }> {
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? Buffer.alloc(0) : (first.value as Buffer);
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  return { head, stream: Readable.from(rest()) };
}

/** Which layer of which image, for messages. */
interface LayerAt {
  /** How messages name the image. */
  label: string;
  /** The layer's index in the image (shown 1-based). */
  i: number;
}

function checkDiffId({ label, i }: LayerAt, layer: { digest: string; diffId?: string }, listing: LayerListing): void {
  if (layer.diffId !== undefined && listing.diffId !== layer.diffId) {
    throw new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) unpacks to ${listing.diffId}, but the config's diff_id says ${layer.diffId}`);
  }
}

export async function listImage(image: Image, label: string): Promise<ListedImage> {
  const budget = new ArchiveBudget(label);
  const layers: ListedLayer[] = [];
  // An archive is read once for all its layers, not once per layer.
  const scanned = image.kind === "docker-archive" || image.kind === "oci-archive" ? await scanArchive(image.source, label) : undefined;
  const byDigest = new Map([...(scanned?.values() ?? [])].flatMap((e) => (e.kind === "layer" ? [[e.digest, e.layer] as const] : [])));
  for (const [i, layer] of image.layers.entries()) {
    const found = byDigest.get(layer.digest);
    if (scanned !== undefined) {
      if (!found) throw new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) is not a layer tar the archive holds`);
      checkDiffId({ label, i }, layer, found);
      layers.push({ ...found, digest: layer.digest, size: layer.size });
      continue;
    }
    const { head, stream } = await sniff(await layer.open());
    const compression = isGzip(head) ? "gzip" : isZstd(head) ? "zstd" : "none";
    let listing: LayerListing;
    try {
      listing = await listLayer(stream, compression, budget);
    } catch (cause) {
      if (cause instanceof LayerpackError) throw cause;
      throw new LayerpackError(`${label}: layer ${i + 1} (${layer.digest}) is damaged: ${unpackFailure(cause)}`, { cause });
    }
    checkDiffId({ label, i }, layer, listing);
    layers.push({ ...listing, digest: layer.digest, size: layer.size });
  }
  const c = image.config;
  return {
    architecture: typeof c.architecture === "string" ? c.architecture : "unknown",
    os: typeof c.os === "string" ? c.os : "unknown",
    ...(typeof c.variant === "string" ? { variant: c.variant } : {}),
    layers,
  };
}
