/**
 * Docker archive output (FORMATS.md §2), as `docker load` / `podman load` / skopeo `docker-archive:` read it:
 * the layer files, the config `<hex>.json` and manifest.json. Loaders find entries by name, so the manifest can
 * come last, which lets layers stream straight into the archive: a layer's header is reserved, the layer written
 * behind it, and the header filled in once its digest and size are known. Each byte is written once.
 */
import { BuildError } from "../errors.ts";
import { type BlobTarget, type BlobResult } from "./sink.ts";
import { paddingFor } from "./tar.ts";
import { TarFileWriter } from "./tar-file.ts";
import type { BuiltImage, LayerBlob } from "./types.ts";

const hex = (digest: string) => digest.slice("sha256:".length);

/** Largest entry a plain ustar header can describe; bigger layers go through `addLayerFile`. */
export const MAX_INLINE_LAYER = 8 * 1024 ** 3 - 1;

export function layerFileName(layer: Pick<LayerBlob, "digest" | "mediaType">): string {
  return `${hex(layer.digest)}${layer.mediaType.endsWith("+gzip") ? ".tar.gz" : ".tar"}`;
}

export function dockerManifest(image: Pick<BuiltImage, "configDigest" | "repoTags" | "layers">): Buffer {
  const manifest = [{ Config: `${hex(image.configDigest)}.json`, RepoTags: image.repoTags, Layers: image.layers.map(layerFileName) }];
  return Buffer.from(JSON.stringify(manifest));
}

export class DockerArchiveWriter {
  readonly #tar: TarFileWriter;
  readonly #names = new Set<string>();
  /** Where each layer's bytes start in the archive, by digest (the cache keeps the archive as a pack). */
  readonly #offsets = new Map<string, number>();

  /** Creates `file` (a temp name; the caller renames it into place). `mtime` is stamped on every entry. */
  constructor(file: string, mtime: number) {
    this.#tar = new TarFileWriter(file, mtime);
  }

  /**
   * Streams one layer into the archive: `produce` writes the stored blob to the given target (sequentially, from
   * the current position) and returns its digests. Layers over 8 GiB must use `addLayerFile` instead.
   */
  async addLayer<T extends BlobResult>(mediaType: string, produce: (target: BlobTarget) => Promise<T>): Promise<T> {
    const tar = this.#tar;
    const headerAt = tar.pos;
    tar.write(Buffer.alloc(512));
    const blob = await produce({ fd: tar.fd, label: tar.file, position: tar.pos });
    if (blob.size > MAX_INLINE_LAYER) throw new BuildError(`layer ${blob.digest} is over 8 GiB; it cannot be streamed into a docker archive`);
    const name = layerFileName({ digest: blob.digest, mediaType });
    if (this.#names.has(name)) {
      // The same layer twice in one image: keep one copy; what follows overwrites the bytes just written.
      tar.pos = headerAt;
      return blob;
    }
    this.#names.add(name);
    this.#offsets.set(blob.digest, headerAt + 512);
    tar.pos += blob.size;
    tar.write(Buffer.alloc(paddingFor(blob.size)));
    tar.write(tar.header(name, blob.size), headerAt);
    return blob;
  }

  /**
   * Copies a layer that already exists as a file (a cached blob, a pack, or one too big to stream), checking its
   * digest on the way. Returns false, having written nothing, when the file is not the blob it claims to be.
   */
  addLayerFile(layer: LayerBlob & { offset?: number }): boolean {
    const name = layerFileName(layer);
    if (this.#names.has(name)) return true;
    const dataAt = this.#tar.copyEntry(name, layer);
    if (dataAt === undefined) return false;
    this.#names.add(name);
    this.#offsets.set(layer.digest, dataAt);
    return true;
  }

  /** Where a layer added to this archive starts. */
  offsetOf(digest: string): number | undefined {
    return this.#offsets.get(digest);
  }

  /** Writes the config, manifest.json and the end-of-archive blocks, and closes the file. */
  finish(image: Pick<BuiltImage, "config" | "configDigest" | "repoTags" | "layers">): void {
    if (image.layers.some((l) => l.mediaType.endsWith("+zstd"))) {
      throw new BuildError("a docker archive cannot carry zstd layers; use gzip or none, or an OCI output format");
    }
    this.#tar.entry(`${hex(image.configDigest)}.json`, image.config);
    this.#tar.entry("manifest.json", dockerManifest(image));
    this.#tar.end();
  }

  close(): void {
    this.#tar.close();
  }
}
