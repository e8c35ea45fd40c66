/**
 * The byte path of one layer: tar bytes -> sha256 (diff_id) -> compressor -> sha256 (digest) -> temp file.
 * Writers fill a reusable batch buffer (headers, small files read straight into it) and hand it over when full,
 * so tens of thousands of small entries cost a few big writes instead of one stream chunk each.
 * Compression runs in parallel within the layer (src/compress: fixed-offset blocks on the thread pool, the bytes
 * independent of the number of jobs), sharing a process-wide limit with the other layers being built.
 */
import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import { BuildError } from "../errors.ts";
import { BLOCK_SIZE, ParallelCompressor, type Limiter } from "../compress/index.ts";
import { OffloadedSha256, releaseShared, takeShared } from "../compress/offload-hash.ts";

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

/**
 * Tar bytes per batch: a compressor's block (1 MiB gzip, 4 MiB zstd), so that every block lies in one batch and
 * is compressed in place; 1 MiB uncompressed. Smaller batches stay in the CPU caches between the read that fills
 * them, the hash and the write: 4 MiB ones made the uncompressed build's system time 1.6x (bench/README.md).
 */
const batchSize = (compression: Compression): number => (compression === "none" ? 1 << 20 : BLOCK_SIZE[compression]);
const EMPTY = Buffer.alloc(0);
/** Compressed output is written in batches of this size: smaller than the tar's, as there are fewer bytes. */
const OUT_BATCH = 1 << 20;
const MAX_INFLIGHT = 4;
/** Batches handed to the hash worker and not yet hashed; more makes the writer wait. */
const MAX_HASHING = 2;

async function writeAll(fd: number, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await new Promise<{ bytesWritten: number }>((resolve, reject) =>
      fs.write(fd, chunk, off, chunk.length - off, position + off, (err, bytesWritten) => (err ? reject(err) : resolve({ bytesWritten }))),
    );
    off += bytesWritten;
  }
}

/** How a sink compresses and hashes; the defaults suit every caller (the output bytes never depend on these). */
export interface SinkOptions {
  /** Blocks of this layer compressed at once (default: the number of cores). */
  jobs?: number;
  /** The limit on blocks in flight shared with other layers (default: the process-wide one). */
  limiter?: Limiter;
  /** Compute the sha256 sums (diff_id, digest) on a worker thread, off the thread that reads the files (default
   * true). */
  offloadHash?: boolean;
}

/** Where a layer's stored bytes go: a file descriptor, written sequentially from `position` on. */
export interface BlobTarget {
  fd: number;
  /** File name for error messages. */
  label: string;
  position: number;
}

type Sha256 = Hash | OffloadedSha256;

/** Batch buffers: shared memory from the process-wide pool when the hash worker reads them, else this sink's own. */
class Buffers {
  readonly #shared: boolean;
  readonly #spare: Buffer[] = [];
  constructor(shared: boolean) {
    this.#shared = shared;
  }
  take(size: number): Buffer {
    if (this.#shared) return takeShared(size);
    const i = this.#spare.findIndex((b) => b.length === size);
    return i >= 0 ? this.#spare.splice(i, 1)[0]! : Buffer.allocUnsafe(size);
  }
  give(b: Buffer): void {
    if (this.#shared) releaseShared(b);
    else this.#spare.push(b);
  }
}

export class LayerSink {
  readonly #path: string;
  /** sha256 of the tar (diff_id). */
  readonly #diff: Sha256;
  /** sha256 of the compressed blob (digest); uncompressed, the digest is the diff_id. */
  readonly #digest: Sha256 | undefined;
  /** Reproducible settings (src/compress): fixed levels, gzip with mtime 0 and no name, zstd without checksum. */
  readonly #compressor: ParallelCompressor | undefined;
  readonly #fd: number;
  #position: number;
  /** Batch buffers whose writes, compression and hashing have completed, reused to spare the garbage collector
   * batch allocations and the kernel the page faults of fresh ones. */
  readonly #buffers: Buffers;
  #batch: Buffer;
  readonly #batchSize: number;
  #used = 0;
  /** Compressed output is gathered into batches too, so the file gets 1 MiB writes and the worker can hash it. */
  #out: Buffer | undefined;
  #outUsed = 0;
  #tarSize = 0;
  #size = 0;
  #failed: Error | undefined;
  #inflight: Promise<void>[] = [];
  /** Batches the hash worker has not finished with. */
  #hashing: Promise<void>[] = [];

  /** Called with the number of tar bytes each time a batch is handed on (progress display). */
  onBytes: ((n: number) => void) | undefined;

  /** The sink writes to `target` but never closes it: its owner does. */
  constructor(target: BlobTarget, compression: Compression, options: SinkOptions = {}) {
    this.#path = target.label;
    this.#fd = target.fd;
    this.#position = target.position;
    const offload = options.offloadHash !== false;
    const sha256 = (): Sha256 => (offload ? new OffloadedSha256() : createHash("sha256"));
    this.#buffers = new Buffers(offload);
    this.#batchSize = batchSize(compression);
    this.#batch = this.#buffers.take(this.#batchSize);
    this.#diff = sha256();
    if (compression !== "none") {
      this.#digest = sha256();
      this.#compressor = new ParallelCompressor({
        codec: compression,
        onData: (chunk) => this.#collect(chunk),
        onDataCopies: true, // #collect copies into the output batch
        ...(options.jobs !== undefined ? { jobs: options.jobs } : {}),
        ...(options.limiter ? { limiter: options.limiter } : {}),
      });
    }
  }

  /**
   * Feeds a batch to a hash and calls `release` once the hash (on the worker, at its pace) is done with it; a
   * batch has other users too (write, compressor), so `release` counts them down.
   */
  #hash(hash: Sha256, chunk: Buffer, release: () => void): void {
    if (hash instanceof OffloadedSha256) {
      this.#hashing.push(
        hash.update(chunk).then(release, (err: Error) => {
          this.#failed ??= err;
          release();
        }),
      );
    } else {
      hash.update(chunk);
      release();
    }
  }

  /**
   * Writes run in the thread pool at explicit positions, so the kernel's copy of one chunk overlaps the reading and
   * hashing of the next (on this kind of VM a write costs about as much as a read). At most MAX_INFLIGHT chunks
   * are in flight, which bounds memory.
   */
  #store(chunk: Buffer, release: () => void): void {
    if (this.#failed) return release();
    this.#size += chunk.length;
    const at = this.#position;
    this.#position += chunk.length;
    const done = writeAll(this.#fd, chunk, at).then(release, (cause: unknown) => {
      this.#failed ??= writeError(this.#path, cause);
      release();
    });
    this.#inflight.push(done);
  }

  /** Compressed output, in order: copied into the output batch, which is hashed and written when full. */
  #collect(chunk: Buffer): void {
    for (let off = 0; off < chunk.length && !this.#failed; ) {
      this.#out ??= this.#buffers.take(OUT_BATCH);
      const n = Math.min(OUT_BATCH - this.#outUsed, chunk.length - off);
      chunk.copy(this.#out, this.#outUsed, off, off + n);
      this.#outUsed += n;
      off += n;
      if (this.#outUsed === OUT_BATCH) this.#storeOut();
    }
  }

  #storeOut(): void {
    if (!this.#out || this.#outUsed === 0) return;
    const out = this.#out;
    const chunk = out.subarray(0, this.#outUsed);
    this.#out = undefined;
    this.#outUsed = 0;
    const release = this.#countdown(2, () => this.#buffers.give(out));
    this.#hash(this.#digest!, chunk, release);
    this.#store(chunk, release);
  }

  #countdown(users: number, then: () => void): () => void {
    return () => void (--users === 0 && then());
  }

  /** Waits until at most `limit` writes are in flight and the hash worker is at most MAX_HASHING batches behind. */
  async #settle(limit: number): Promise<void> {
    while (this.#inflight.length > limit) await this.#inflight.shift();
    while (this.#hashing.length > Math.min(limit, MAX_HASHING)) await this.#hashing.shift();
  }

  /** Free space left in the batch buffer; callers fill `batchView()` and then `commit(n)`. */
  get free(): number {
    return this.#batch.length - this.#used;
  }

  /** The batch buffer and how much of it is filled: a writer may encode into it from there, then commit(n). */
  get batchBuffer(): Buffer {
    return this.#batch;
  }

  get batchUsed(): number {
    return this.#used;
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
    if (this.#batch === EMPTY) throw new BuildError(`writing ${this.#path}: the layer was already finished`);
    if (this.#used === 0) return;
    const chunk = this.#batch.subarray(0, this.#used);
    this.#tarSize += chunk.length;
    this.onBytes?.(chunk.length);
    // The hash, the compressor or an in-flight write keep the chunk, so the batch cannot be reused until all of
    // them are done with it.
    this.#used = 0;
    const full = this.#batch;
    this.#batch = this.#buffers.take(this.#batchSize);
    const release = this.#countdown(2, () => this.#buffers.give(full));
    this.#hash(this.#diff, chunk, release);
    // The compressor resolves once it has taken the chunk: it waits (backpressure) while its blocks in flight are
    // at the limit. Its output comes back through #collect, in order. Uncompressed, the stored blob is the tar.
    if (this.#compressor) await this.#compressor.write(chunk, release);
    else this.#store(chunk, release);
    await this.#settle(MAX_INFLIGHT);
    if (this.#failed) throw this.#failed;
  }

  async finish(): Promise<BlobResult> {
    await this.flush();
    await this.#compressor?.end();
    this.#storeOut();
    await this.#settle(0);
    this.#returnBuffers();
    if (this.#failed) throw this.#failed;
    const hex = (h: Sha256): Promise<string> | string => (h instanceof OffloadedSha256 ? h.digest() : h.digest("hex"));
    const diffId = `sha256:${await hex(this.#diff)}`;
    return {
      diffId,
      digest: this.#digest ? `sha256:${await hex(this.#digest)}` : diffId,
      size: this.#size,
      tarSize: this.#tarSize,
    };
  }

  /** Gives the batch being filled and the output batch back to the pool: the sink takes no more bytes. */
  #returnBuffers(): void {
    if (this.#batch.length > 0) this.#buffers.give(this.#batch);
    if (this.#out) this.#buffers.give(this.#out);
    this.#batch = EMPTY;
    this.#out = undefined;
    this.#used = 0;
    this.#outUsed = 0;
  }

  /** Stops the compressor after a failure (waiting for its running blocks) and waits for pending writes; the
   * target's owner removes what was written. */
  async abort(): Promise<void> {
    this.#failed ??= new BuildError(`writing ${this.#path}: aborted`);
    await this.#compressor?.abort();
    await Promise.allSettled([...this.#inflight, ...this.#hashing]);
    this.#inflight = [];
    this.#hashing = [];
    this.#returnBuffers();
    for (const h of [this.#diff, this.#digest]) if (h instanceof OffloadedSha256) h.dispose();
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
