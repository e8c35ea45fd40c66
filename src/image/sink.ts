/**
 * The byte path of one layer: tar bytes -> sha256 (diff_id) -> compressor -> sha256 (digest) -> temp file.
 * Writers fill a large reusable batch buffer (headers, small files read straight into it) and hand it over when
 * full, so tens of thousands of small entries cost a few big writes instead of one stream chunk each.
 */
import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { once } from "node:events";
import { BuildError } from "../errors.ts";

export type Compression = "none" | "gzip" | "zstd";

export interface BlobResult {
  /** sha256 of the uncompressed tar, `sha256:<hex>`. */
  diffId: string;
  /** sha256 of the stored (compressed) blob, `sha256:<hex>`. */
  digest: string;
  /** Bytes of the stored blob. */
  size: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
}

const BATCH = 4 << 20;

/** Reproducible compressor settings: fixed levels, no names or times in headers, no checksums that vary. */
function makeCompressor(compression: Compression): zlib.Gzip | zlib.ZstdCompress | undefined {
  switch (compression) {
    case "none":
      return undefined;
    case "gzip":
      // Node's gzip header carries mtime 0 and no file name, as `gzip -n`.
      return zlib.createGzip({ level: 6, memLevel: 9, chunkSize: 1 << 20 });
    case "zstd":
      return zlib.createZstdCompress({
        chunkSize: 1 << 20,
        params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 0 },
      });
  }
}

export class LayerSink {
  readonly #path: string;
  readonly #diff: Hash = createHash("sha256");
  readonly #digest: Hash = createHash("sha256");
  readonly #compressor: zlib.Gzip | zlib.ZstdCompress | undefined;
  readonly #fd: number;
  #batch = Buffer.allocUnsafe(BATCH);
  #used = 0;
  #tarSize = 0;
  #size = 0;
  #failed: Error | undefined;
  #drained: Promise<void> | undefined;

  constructor(tempPath: string, compression: Compression) {
    this.#path = tempPath;
    try {
      this.#fd = fs.openSync(tempPath, "wx", 0o644);
    } catch (cause) {
      throw writeError(tempPath, cause);
    }
    this.#compressor = makeCompressor(compression);
    if (this.#compressor) {
      this.#compressor.on("data", (chunk: Buffer) => this.#store(chunk));
      this.#compressor.on("error", (err) => (this.#failed ??= err));
    }
  }

  #store(chunk: Buffer): void {
    if (this.#failed) return;
    this.#digest.update(chunk);
    this.#size += chunk.length;
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(this.#fd, chunk, off, chunk.length - off);
    } catch (cause) {
      this.#failed = writeError(this.#path, cause);
    }
  }

  /** Free space left in the batch buffer; callers fill `batchView()` and then `commit(n)`. */
  get free(): number {
    return BATCH - this.#used;
  }

  /** The unused tail of the batch buffer, to read file data straight into. */
  batchView(): Buffer {
    return this.#batch.subarray(this.#used);
  }

  commit(n: number): void {
    this.#used += n;
  }

  /** Copies `data` into the batch, flushing as needed. */
  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.free === 0) await this.flush();
      const n = Math.min(this.free, data.length - off);
      data.copy(this.#batch, this.#used, off, off + n);
      this.#used += n;
      off += n;
    }
  }

  /** Appends `n` zero bytes (tar padding). */
  async zeros(n: number): Promise<void> {
    while (n > 0) {
      if (this.free === 0) await this.flush();
      const k = Math.min(this.free, n);
      this.#batch.fill(0, this.#used, this.#used + k);
      this.#used += k;
      n -= k;
    }
  }

  /** Hands the filled part of the batch downstream. */
  async flush(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#used === 0) return;
    const chunk = this.#batch.subarray(0, this.#used);
    this.#diff.update(chunk);
    this.#tarSize += chunk.length;
    if (this.#compressor) {
      await this.#drained;
      this.#drained = undefined;
      // The compressor keeps a reference to the chunk, so the batch cannot be reused: take a fresh one.
      this.#batch = Buffer.allocUnsafe(BATCH);
      if (!this.#compressor.write(chunk)) this.#drained = once(this.#compressor, "drain").then(() => undefined);
    } else {
      this.#store(chunk);
    }
    this.#used = 0;
    if (this.#failed) throw this.#failed;
  }

  async finish(): Promise<BlobResult> {
    await this.flush();
    if (this.#compressor) {
      const ended = once(this.#compressor, "end");
      this.#compressor.end();
      await ended;
    }
    if (this.#failed) throw this.#failed;
    // No fsync: outputs are made atomic by rename, and durability across power loss is not worth seconds per GB.
    try {
      fs.closeSync(this.#fd);
    } catch (cause) {
      throw writeError(this.#path, cause);
    }
    return {
      diffId: `sha256:${this.#diff.digest("hex")}`,
      digest: `sha256:${this.#digest.digest("hex")}`,
      size: this.#size,
      tarSize: this.#tarSize,
    };
  }

  /** Closes and removes the temp file after a failure. */
  abort(): void {
    this.#compressor?.destroy();
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.#path, { force: true });
  }
}

export function writeError(file: string, cause: unknown): BuildError {
  const err = cause as NodeJS.ErrnoException;
  const why = err.code === "ENOSPC" ? "no space left on device" : err.message;
  return new BuildError(`writing ${file}: ${why}`, { cause });
}
