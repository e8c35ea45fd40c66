/**
 * Docker archive output (FORMATS.md §2), as `docker load` / `podman load` / skopeo `docker-archive:` read it:
 * the layer files, the config `<hex>.json` and manifest.json. Loaders find entries by name, so the manifest can
 * come last, which lets layers stream straight into the archive: a layer's header is reserved, the layer written
 * behind it, and the header filled in once its digest and size are known. Each byte is written once.
 */
import * as fs from "node:fs";
import { createHash } from "node:crypto";
import { BuildError } from "../errors.ts";
import { writeError, type BlobTarget, type BlobResult } from "./sink.ts";
import { encodeHeader, paddingFor, ZERO_BLOCKS } from "./tar.ts";
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
  readonly #fd: number;
  readonly #file: string;
  readonly #mtime: number;
  readonly #names = new Set<string>();
  /** Where each layer's bytes start in the archive, by digest (the cache keeps the archive as a pack). */
  readonly #offsets = new Map<string, number>();
  #pos = 0;

  /** Creates `file` (a temp name; the caller renames it into place). `mtime` is stamped on every entry. */
  constructor(file: string, mtime: number) {
    this.#file = file;
    this.#mtime = mtime;
    try {
      this.#fd = fs.openSync(file, "wx", 0o644);
    } catch (cause) {
      throw writeError(file, cause);
    }
  }

  /** Writes at `position`, or appends at the current end when none is given. */
  #write(buf: Buffer, position?: number): void {
    const at = position ?? this.#pos;
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.#fd, buf, off, buf.length - off, at + off);
    } catch (cause) {
      throw writeError(this.#file, cause);
    }
    if (position === undefined) this.#pos += buf.length;
  }

  #header(name: string, size: number): Buffer {
    return encodeHeader({ name, type: "file", mode: 0o644, size, mtime: this.#mtime, uid: 0, gid: 0, uname: "root", gname: "root" });
  }

  /**
   * Streams one layer into the archive: `produce` writes the stored blob to the given target (sequentially, from
   * the current position) and returns its digests. Layers over 8 GiB must use `addLayerFile` instead.
   */
  async addLayer<T extends BlobResult>(mediaType: string, produce: (target: BlobTarget) => Promise<T>): Promise<T> {
    const headerAt = this.#pos;
    this.#write(Buffer.alloc(512));
    const blob = await produce({ fd: this.#fd, label: this.#file, position: this.#pos });
    if (blob.size > MAX_INLINE_LAYER) throw new BuildError(`layer ${blob.digest} is over 8 GiB; it cannot be streamed into a docker archive`);
    const name = layerFileName({ digest: blob.digest, mediaType });
    if (this.#names.has(name)) {
      // The same layer twice in one image: keep one copy; what follows overwrites the bytes just written.
      this.#pos = headerAt;
      return blob;
    }
    this.#names.add(name);
    this.#offsets.set(blob.digest, headerAt + 512);
    this.#pos += blob.size;
    this.#write(Buffer.alloc(paddingFor(blob.size)));
    this.#write(this.#header(name, blob.size), headerAt);
    return blob;
  }

  /**
   * Copies a layer that already exists as a file (a cached blob, or one too big to stream), checking its digest on
   * the way. Returns false, having written nothing, when the file is not the blob it claims to be.
   */
  addLayerFile(layer: LayerBlob & { offset?: number }): boolean {
    const name = layerFileName(layer);
    if (this.#names.has(name)) return true;
    const start = this.#pos;
    this.#write(this.#header(name, layer.size));
    const dataAt = this.#pos;
    const from = layer.offset ?? 0;
    const buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(layer.size, 1)));
    const hash = createHash("sha256");
    let fd: number;
    try {
      fd = fs.openSync(layer.file, "r");
    } catch {
      this.#pos = start;
      return false;
    }
    try {
      let copied = 0;
      while (copied < layer.size) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, layer.size - copied), from + copied);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        this.#write(buf.subarray(0, n));
        copied += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    if (`sha256:${hash.digest("hex")}` !== layer.digest) {
      this.#pos = start;
      return false;
    }
    this.#names.add(name);
    this.#offsets.set(layer.digest, dataAt);
    this.#write(Buffer.alloc(paddingFor(layer.size)));
    return true;
  }

  /** Where a layer added to this archive starts. */
  offsetOf(digest: string): number | undefined {
    return this.#offsets.get(digest);
  }

  #entry(name: string, data: Buffer): void {
    this.#write(this.#header(name, data.length));
    this.#write(data);
    this.#write(Buffer.alloc(paddingFor(data.length)));
  }

  /** Writes the config, manifest.json and the end-of-archive blocks, and closes the file. */
  finish(image: Pick<BuiltImage, "config" | "configDigest" | "repoTags" | "layers">): void {
    if (image.layers.some((l) => l.mediaType.endsWith("+zstd"))) {
      throw new BuildError("a docker archive cannot carry zstd layers; use gzip or none, or an OCI output format");
    }
    this.#entry(`${hex(image.configDigest)}.json`, image.config);
    this.#entry("manifest.json", dockerManifest(image));
    this.#write(ZERO_BLOCKS);
    try {
      fs.ftruncateSync(this.#fd, this.#pos);
    } catch (cause) {
      throw writeError(this.#file, cause);
    }
    this.close();
  }

  close(): void {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
  }
}
