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
const MAX_INFLIGHT = 4;

async function writeAll(fd: number, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await new Promise<{ bytesWritten: number }>((resolve, reject) =>
      fs.write(fd, chunk, off, chunk.length - off, position + off, (err, bytesWritten) => (err ? reject(err) : resolve({ bytesWritten }))),
    );
    off += bytesWritten;
  }
}

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

/** Where a layer's stored bytes go: a file descriptor, written sequentially from `position` on. */
export interface BlobTarget {
  fd: number;
  /** File name for error messages. */
  label: string;
  position: number;
}

export class LayerSink {
  readonly #path: string;
  readonly #diff: Hash = createHash("sha256");
  readonly #digest: Hash = createHash("sha256");
  readonly #compressor: zlib.Gzip | zlib.ZstdCompress | undefined;
  readonly #fd: number;
  #position: number;
  #batch: Buffer = Buffer.allocUnsafe(BATCH);
  #used = 0;
  #tarSize = 0;
  #size = 0;
  #failed: Error | undefined;
  #drained: Promise<void> | undefined;
  #inflight: Promise<void>[] = [];
  /** Batch buffers whose writes have completed, reused to spare the garbage collector 4 MiB allocations. */
  #spare: Buffer[] = [];

  /** Called with the number of tar bytes each time a batch is handed on (progress display). */
  onBytes: ((n: number) => void) | undefined;

  /** The sink writes to `target` but never closes it: its owner does. */
  constructor(target: BlobTarget, compression: Compression) {
    this.#path = target.label;
    this.#fd = target.fd;
    this.#position = target.position;
    this.#compressor = makeCompressor(compression);
    if (this.#compressor) {
      this.#compressor.on("data", (chunk: Buffer) => this.#store(chunk));
      this.#compressor.on("error", (err) => (this.#failed ??= err));
    }
  }

  /**
   * Writes run in the thread pool at explicit positions, so the kernel's copy of one chunk overlaps the reading and
   * hashing of the next (on this kind of VM a write costs about as much as a read). At most MAX_INFLIGHT chunks
   * are in flight, which bounds memory.
   */
  #store(chunk: Buffer, release?: () => void): void {
    if (this.#failed) return;
    // Uncompressed, the stored blob is the tar: its digest is the diff_id, already being computed.
    if (this.#compressor) this.#digest.update(chunk);
    this.#size += chunk.length;
    const at = this.#position;
    this.#position += chunk.length;
    const done = writeAll(this.#fd, chunk, at).then(release, (cause: unknown) => {
      this.#failed ??= writeError(this.#path, cause);
    });
    this.#inflight.push(done);
  }

  /** Waits until at most `limit` writes are in flight. */
  async #settle(limit: number): Promise<void> {
    while (this.#inflight.length > limit) await this.#inflight.shift();
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
    this.onBytes?.(chunk.length);
    // The compressor or an in-flight write keeps the chunk, so the batch cannot be reused until it is done with it.
    this.#used = 0;
    if (this.#compressor) {
      this.#batch = Buffer.allocUnsafe(BATCH);
      await this.#drained;
      this.#drained = undefined;
      if (!this.#compressor.write(chunk)) this.#drained = once(this.#compressor, "drain").then(() => undefined);
    } else {
      const full = this.#batch;
      this.#batch = this.#spare.pop() ?? Buffer.allocUnsafe(BATCH);
      this.#store(chunk, () => void this.#spare.push(full));
    }
    await this.#settle(MAX_INFLIGHT);
    if (this.#failed) throw this.#failed;
  }

  async finish(): Promise<BlobResult> {
    await this.flush();
    if (this.#compressor) {
      const ended = once(this.#compressor, "end");
      this.#compressor.end();
      await ended;
    }
    await this.#settle(0);
    if (this.#failed) throw this.#failed;
    const diffId = `sha256:${this.#diff.digest("hex")}`;
    return {
      diffId,
      digest: this.#compressor ? `sha256:${this.#digest.digest("hex")}` : diffId,
      size: this.#size,
      tarSize: this.#tarSize,
    };
  }

  /** Stops the compressor after a failure; the target's owner removes what was written. */
  async abort(): Promise<void> {
    this.#compressor?.destroy();
    await this.#settle(0);
  }
}

/** Creates a new file to hold one blob. No fsync: outputs are made atomic by rename, not durable across power loss. */
export function createBlobFile(file: string): BlobTarget {
  try {
    return { fd: fs.openSync(file, "wx", 0o644), label: file, position: 0 };
  } catch (cause) {
    throw writeError(file, cause);
  }
}

export function writeError(file: string, cause: unknown): BuildError {
  const err = cause as NodeJS.ErrnoException;
  const why = err.code === "ENOSPC" ? "no space left on device" : err.message;
  return new BuildError(`writing ${file}: ${why}`, { cause });
}
