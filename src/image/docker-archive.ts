/**
 * Docker archive output (FORMATS.md §2), as `docker load` / `podman load` / skopeo `docker-archive:` read it:
 * manifest.json, the config `<hex>.json`, and one file per layer. Layers are copied from their blob files.
 */
import * as fs from "node:fs";
import { BuildError } from "../errors.ts";
import { writeError } from "./sink.ts";
import { encodeHeader, paddingFor, ZERO_BLOCKS } from "./tar.ts";
import { writeAtomically } from "./atomic.ts";
import type { BuiltImage } from "./types.ts";

const hex = (digest: string) => digest.slice("sha256:".length);

export function layerFileName(layer: BuiltImage["layers"][number]): string {
  return `${hex(layer.digest)}${layer.mediaType.endsWith("+gzip") ? ".tar.gz" : ".tar"}`;
}

export function dockerManifest(image: BuiltImage): Buffer {
  const manifest = [{ Config: `${hex(image.configDigest)}.json`, RepoTags: image.repoTags, Layers: image.layers.map(layerFileName) }];
  return Buffer.from(JSON.stringify(manifest));
}

class ArchiveWriter {
  readonly #fd: number;
  readonly #file: string;
  constructor(file: string) {
    this.#file = file;
    try {
      this.#fd = fs.openSync(file, "wx", 0o644);
    } catch (cause) {
      throw writeError(file, cause);
    }
  }
  write(buf: Buffer): void {
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.#fd, buf, off, buf.length - off);
    } catch (cause) {
      throw writeError(this.#file, cause);
    }
  }
  entry(name: string, data: Buffer, mtime: number): void {
    this.write(encodeHeader({ name, type: "file", mode: 0o644, size: data.length, mtime }));
    this.write(data);
    this.write(Buffer.alloc(paddingFor(data.length)));
  }
  fileEntry(name: string, source: string, size: number, mtime: number, buf: Buffer): void {
    this.write(encodeHeader({ name, type: "file", mode: 0o644, size, mtime }));
    const fd = fs.openSync(source, "r");
    try {
      let copied = 0;
      while (copied < size) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - copied), null);
        if (n === 0) throw new BuildError(`reading blob ${source}: shorter than its recorded size ${size}`);
        this.write(buf.subarray(0, n));
        copied += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    this.write(Buffer.alloc(paddingFor(size)));
  }
  close(): void {
    this.write(ZERO_BLOCKS);
    fs.closeSync(this.#fd);
  }
}

export async function writeDockerArchive(image: BuiltImage, outPath: string): Promise<void> {
  if (image.layers.some((l) => l.mediaType.endsWith("+zstd"))) {
    throw new BuildError("a docker archive cannot carry zstd layers; use gzip or none, or an OCI output format");
  }
  await writeAtomically(outPath, async (temp) => {
    const out = new ArchiveWriter(temp);
    const buf = Buffer.allocUnsafe(4 << 20);
    out.entry("manifest.json", dockerManifest(image), image.mtime);
    out.entry(`${hex(image.configDigest)}.json`, image.config, image.mtime);
    const written = new Set<string>();
    for (const layer of image.layers) {
      const name = layerFileName(layer);
      if (written.has(name)) continue;
      written.add(name);
      out.fileEntry(name, layer.file, layer.size, image.mtime, buf);
    }
    out.close();
  });
}
