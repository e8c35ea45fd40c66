/**
 * Deterministic parallel compression of one stream (gzip as pigz does it, zstd as independent frames; see
 * codecs.ts). The input is cut into blocks at fixed offsets of the uncompressed stream — block k holds bytes
 * [k·B, (k+1)·B) — so the output depends only on the input bytes: never on how the caller chunks its writes, how
 * many blocks run at once, or in which order they finish. Blocks are compressed on libuv's thread pool (node:zlib's
 * asynchronous calls) and their output is emitted in block order.
 *
 * Memory is bounded: a stream keeps at most `jobs + 1` blocks between dispatch and emission, at most `jobs` of
 * them compressing, and a process-wide Limiter (limiter.ts) caps the blocks compressing across all streams, so
 * layers built at the same time share the cores. `write()` resolves once its bytes are taken: the writer waits
 * (backpressure) while the stream is at its limit.
 *
 * Writes are zero-copy when a block lies within one written chunk (the layer sink hands over batches of the codec's
 * block size, so every 1 MiB gzip block and every 4 MiB zstd frame does): the chunk is kept until its blocks are compressed, and
 * the optional `release` callback of `write()` says when the caller may reuse it. A block that spans chunks is
 * copied into a buffer of the stream's own.
 */
import * as zlib from "node:zlib";
import { BLOCK_SIZE, DEFLATE_WINDOW, deflateBlock, discardOutput, GZIP_HEADER, gzipTrailer, zstdFrame, type Codec } from "./codecs.ts";
import { checkJobs, defaultJobs, sharedLimiter, type Limiter } from "./limiter.ts";

export interface CompressorOptions {
  codec: Codec;
  /** Receives the compressed stream, in order. Called synchronously; an exception fails the stream. */
  onData: (chunk: Buffer) => void;
  /**
   * onData copies each chunk and keeps no view of it once it returns: each block's output is then freed at once
   * (codecs.ts discardOutput), not by the garbage collector. Default false: chunks stay valid.
   */
  onDataCopies?: boolean;
  /** Blocks of this stream compressed at once; default: the number of cores. Never changes the output bytes. */
  jobs?: number;
  /** The limit shared with other streams; default: the process-wide one (sharedLimiter()). */
  limiter?: Limiter;
  /**
   * Uncompressed bytes per block (default BLOCK_SIZE[codec]). It defines the output format: the same input gives
   * different (equally valid) bytes with another block size. For tests.
   */
  blockSize?: number;
}

/** The output is emitted as one chunk when its parts (header, block, trailer) add up to no more than this. */
const COALESCE = 256 * 1024;
const EMPTY = Buffer.alloc(0);

/** Counts the blocks (and the write call) still using a caller's chunk; calls `release` when none is left. */
class Hold {
  #count = 1;
  readonly #release: (() => void) | undefined;
  constructor(release: (() => void) | undefined) {
    this.#release = release;
  }
  take(): void {
    this.#count++;
  }
  drop(): void {
    if (--this.#count === 0) this.#release?.();
  }
}

/** A block between dispatch and emission. */
interface Slot {
  index: number;
  last: boolean;
  done: boolean;
  out?: Buffer;
}

export class ParallelCompressor {
  readonly #codec: Codec;
  readonly #onData: (chunk: Buffer) => void;
  readonly #onDataCopies: boolean;
  readonly #jobs: number;
  readonly #limiter: Limiter;
  readonly #blockSize: number;

  // The block being filled: one zero-copy piece of a caller's chunk, or (once a second piece arrives) a copy.
  #piece: Buffer | undefined;
  #pieceHold: Hold | undefined;
  #owned: Buffer | undefined;
  #fill = 0;
  /** Spare copy buffers (blocks that spanned chunks), reused. */
  readonly #spare: Buffer[] = [];
  /** gzip: the last 32 KiB of input before the block being filled. */
  #dictionary: Buffer | undefined;
  #crc = 0;
  #length = 0;
  #blocks = 0;

  /** Dispatched blocks not yet emitted, in block order. */
  readonly #queue: Slot[] = [];
  #running = 0;
  readonly #tasks = new Set<Promise<void>>();
  #waiters: (() => void)[] = [];
  #headerSent = false;

  #chain: Promise<void> = Promise.resolve();
  #ended = false;
  #failed: Error | undefined;

  constructor(options: CompressorOptions) {
    this.#codec = options.codec;
    this.#onData = options.onData;
    this.#onDataCopies = options.onDataCopies === true;
    this.#jobs = checkJobs(options.jobs ?? defaultJobs());
    this.#limiter = options.limiter ?? sharedLimiter();
    const blockSize = options.blockSize ?? BLOCK_SIZE[options.codec];
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new RangeError(`block size must be a positive integer, not ${blockSize}`);
    this.#blockSize = blockSize;
  }

  /** The first failure (a block's compression, or onData throwing), if any. */
  get error(): Error | undefined {
    return this.#failed;
  }

  /**
   * Takes `chunk` (kept, not copied, until its blocks are compressed: do not change it until `release` is
   * called). Resolves when the chunk is taken; rejects when the stream failed. Writes are serialised.
   */
  write(chunk: Buffer, release?: () => void): Promise<void> {
    return this.#serial(() => this.#write(chunk, release));
  }

  /** Compresses what is left, emits the rest of the stream and resolves when all of it was handed to onData. */
  end(): Promise<void> {
    return this.#serial(() => this.#end());
  }

  /**
   * Stops: nothing more is emitted, pending and later writes reject. Resolves once no block of this stream is
   * compressing any more (the thread pool's work cannot be cancelled, only waited for).
   */
  async abort(): Promise<void> {
    this.#fail(new Error(`${this.#codec} compression aborted`));
    this.#dropPiece();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  #serial(f: () => Promise<void>): Promise<void> {
    const p = this.#chain.then(f);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  async #write(chunk: Buffer, release: (() => void) | undefined): Promise<void> {
    const hold = new Hold(release);
    try {
      if (this.#failed) throw this.#failed;
      if (this.#ended) throw new Error(`${this.#codec} compressor: write after end`);
      if (chunk.length === 0) return;
      if (this.#codec === "gzip") this.#crc = zlib.crc32(chunk, this.#crc);
      this.#length += chunk.length;
      const size = this.#blockSize;
      for (let off = 0; off < chunk.length; ) {
        // A full block is sent once a byte follows it: only then is it known not to be the last one.
        if (this.#fill === size) await this.#dispatch(false);
        const n = Math.min(size - this.#fill, chunk.length - off);
        this.#append(chunk.subarray(off, off + n), hold);
        off += n;
      }
    } finally {
      hold.drop();
    }
  }

  async #end(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#ended) throw new Error(`${this.#codec} compressor: end called twice`);
    this.#ended = true;
    await this.#dispatch(true); // the last block, possibly empty (an empty input still gives a valid stream)
    while (this.#queue.length > 0 && !this.#failed) await this.#changed();
    if (this.#failed) throw this.#failed;
  }

  #append(piece: Buffer, hold: Hold): void {
    if (this.#owned) {
      piece.copy(this.#owned, this.#fill);
    } else if (!this.#piece) {
      this.#piece = piece;
      this.#pieceHold = hold;
      hold.take();
    } else {
      // The block spans chunks: copy it into a buffer of our own and let the caller have its chunk back.
      this.#owned = this.#spare.pop() ?? Buffer.allocUnsafe(this.#blockSize);
      this.#piece.copy(this.#owned, 0);
      this.#dropPiece();
      piece.copy(this.#owned, this.#fill);
    }
    this.#fill += piece.length;
  }

  #dropPiece(): void {
    this.#pieceHold?.drop();
    this.#piece = undefined;
    this.#pieceHold = undefined;
  }

  /** Resolves at the next completion or failure. */
  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    this.#notify();
  }

  /** Takes the block being filled and starts compressing it once this stream and the process have room. */
  async #dispatch(last: boolean): Promise<void> {
    let data: Buffer;
    let done: () => void;
    if (this.#owned) {
      const owned = this.#owned;
      data = owned.subarray(0, this.#fill);
      done = () => void (this.#spare.length < 2 && this.#spare.push(owned));
      this.#owned = undefined;
    } else if (this.#piece) {
      data = this.#piece;
      const hold = this.#pieceHold!;
      done = () => hold.drop();
      this.#piece = undefined;
      this.#pieceHold = undefined;
    } else {
      data = EMPTY;
      done = () => undefined;
    }
    this.#fill = 0;
    const dictionary = this.#dictionary;
    if (this.#codec === "gzip" && !last) this.#dictionary = windowAfter(dictionary, data);
    const index = this.#blocks++;

    let started = false;
    try {
      while (!this.#failed && (this.#queue.length > this.#jobs || this.#running >= this.#jobs)) await this.#changed();
      if (this.#failed) throw this.#failed;
      await this.#limiter.acquire();
      if (this.#failed) {
        this.#limiter.release();
        throw this.#failed;
      }
      started = true;
    } finally {
      if (!started) done();
    }

    const slot: Slot = { index, last, done: false };
    this.#queue.push(slot);
    this.#running++;
    const task = this.#compress(data, dictionary, slot).finally(() => {
      this.#running--;
      this.#limiter.release();
      done();
      slot.done = true;
      this.#tasks.delete(task);
      this.#drain();
      this.#notify();
    });
    this.#tasks.add(task);
  }

  async #compress(data: Buffer, dictionary: Buffer | undefined, slot: Slot): Promise<void> {
    try {
      slot.out = this.#codec === "gzip" ? await deflateBlock(data, dictionary, slot.last) : await zstdFrame(data);
    } catch (cause) {
      this.#fail(new Error(`${this.#codec} compression of block ${slot.index} failed: ${(cause as Error).message}`, { cause }));
    }
  }

  /** Emits the finished blocks at the head of the queue. */
  #drain(): void {
    while (this.#queue.length > 0 && this.#queue[0]!.done) {
      const slot = this.#queue.shift()!;
      if (this.#failed) continue;
      const parts: Buffer[] = [];
      if (this.#codec === "gzip" && !this.#headerSent) parts.push(GZIP_HEADER);
      this.#headerSent = true;
      const out = slot.out!;
      parts.push(out);
      if (this.#codec === "gzip" && slot.last) parts.push(gzipTrailer(this.#crc, this.#length));
      slot.out = undefined;
      try {
        emitParts(parts, this.#onData);
      } catch (err) {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
      }
      if (this.#onDataCopies) discardOutput(out);
    }
  }
}

/** The last DEFLATE_WINDOW bytes of `before` followed by `data`, copied (the block's buffer is not kept for it). */
function windowAfter(before: Buffer | undefined, data: Buffer): Buffer {
  if (data.length >= DEFLATE_WINDOW) return Buffer.from(data.subarray(data.length - DEFLATE_WINDOW));
  const joined = before ? Buffer.concat([before, data]) : data;
  return Buffer.from(joined.subarray(Math.max(0, joined.length - DEFLATE_WINDOW)));
}

function emitParts(parts: Buffer[], onData: (chunk: Buffer) => void): void {
  let total = 0;
  for (const p of parts) total += p.length;
  if (total === 0) return;
  if (parts.length > 1 && total <= COALESCE) {
    onData(Buffer.concat(parts, total));
    return;
  }
  for (const p of parts) if (p.length > 0) onData(p);
}

/** Compresses a whole buffer the same way (the same bytes a ParallelCompressor gives). */
export async function compressBuffer(data: Buffer, options: Omit<CompressorOptions, "onData">): Promise<Buffer> {
  const out: Buffer[] = [];
  const c = new ParallelCompressor({ ...options, onData: (chunk) => out.push(chunk) });
  await c.write(data);
  await c.end();
  return Buffer.concat(out);
}
