/**
 * The per-block work of the two codecs, each block compressed on libuv's thread pool (node:zlib's asynchronous
 * calls), and the bytes around the blocks. Everything here depends only on the block's bytes (and, for gzip,
 * the 32 KiB before it), never on timing or on how many blocks run at once.
 *
 * gzip, as pigz does it: one gzip member whose deflate stream is the concatenation of raw deflate streams, one per
 * block, each primed with the previous 32 KiB of input as its dictionary (so matches reach back across the block
 * boundary exactly as far as a single deflate stream's window would). A block that is not the last ends with a
 * sync flush (an empty stored block: byte aligned, no final bit); the last ends with Z_FINISH (final bit set).
 * Level 6, memLevel 9, the default strategy and window (32 KiB): what `gzip -6` and `pigz -6` use.
 *
 * zstd: one independent frame per block (level 3, no checksum, the content size in each frame header). A
 * sequence of frames is a valid zstd stream; `zstd -d` and every library decoder read it as one.
 */
import * as zlib from "node:zlib";

export type Codec = "gzip" | "zstd";

/** Deflate's window: the most a match can reach back, so the dictionary a block needs. */
export const DEFLATE_WINDOW = 32 * 1024;

/**
 * Uncompressed bytes per block. Part of the output format: changing it changes the compressed bytes (but never
 * the decompressed ones). gzip: 1 MiB, the size at which per-block costs vanish (pigz uses 128 KiB; the ratio is
 * the same either way, since each block sees the 32 KiB before it). zstd: 4 MiB frames; smaller frames lose
 * ratio (1 MiB: +4.5 % over one frame, 4 MiB: +1.0 %, 8 MiB: +0.5 % on the bench store's tar), larger ones
 * hold more memory per block in flight and parallelise less within small layers.
 */
export const BLOCK_SIZE: Readonly<Record<Codec, number>> = { gzip: 1 << 20, zstd: 4 << 20 };

/** RFC 1952 header: deflate, no flags, mtime 0, XFL 0 (level 6), OS 3 (Unix); what `gzip -n -6` writes. */
export const GZIP_HEADER: Buffer = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

/** The gzip trailer: CRC-32 and ISIZE (input length mod 2^32), little-endian. */
export function gzipTrailer(crc: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(crc >>> 0, 0);
  b.writeUInt32LE(length % 2 ** 32, 4);
  return b;
}

/** An output buffer large enough for the whole block in one pass (deflateBound / ZSTD_compressBound, rounded up). */
const outputSize = (n: number): number => Math.max(1024, n + (n >> 7) + 1024);

/**
 * Runs one block through a fresh node:zlib engine (a single write, compressed on the thread pool) and resolves
 * with its output: one chunk, as the output buffer holds the whole block's output (joined should there be more).
 * The engine is dropped, not ended: its end would add another flush. The data events come before the write's
 * callback.
 */
function compressOnce(engine: zlib.Zlib & NodeJS.ReadWriteStream, block: Buffer, chunkSize: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    engine.on("data", (chunk: Buffer) => parts.push(chunk));
    engine.on("error", reject);
    engine.write(block, (err) => {
      (engine as unknown as { destroy(): void }).destroy();
      if (err) return reject(err);
      const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      // node:zlib allocates its output buffer with Buffer.allocUnsafe(chunkSize), which never takes a size above
      // half of Buffer.poolSize from the shared pool: such a buffer is the block's alone.
      if (parts.length === 1 && chunkSize > Buffer.poolSize >>> 1 && out.buffer.byteLength === chunkSize) alone.add(out);
      resolve(out);
    });
  });
}

/** Block outputs that are the only view of their memory (compressOnce), so discardOutput may free it. */
const alone = new WeakSet<Buffer>();

/**
 * Frees a block's output buffer now (a 4 MiB zstd frame, a 1 MiB gzip block) instead of leaving it to the garbage
 * collector: the caller has copied the bytes and holds no other view of them. Freed late, these buffers were the
 * build's largest garbage (a collection every ~20 MB of them) and pushed peak RSS over 256 MB. Does nothing for
 * a buffer that may share its memory (from Node's pool, or not made here).
 */
export function discardOutput(out: Buffer): void {
  if (!alone.has(out)) return;
  alone.delete(out);
  // Detaching the ArrayBuffer releases its memory at once (ES2024 ArrayBuffer.prototype.transfer).
  (out.buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}

/** One gzip block: raw deflate of `block` primed with `dictionary`, sync-flushed unless `last`. */
export function deflateBlock(block: Buffer, dictionary: Buffer | undefined, last: boolean): Promise<Buffer> {
  const options: zlib.ZlibOptions = {
    level: 6,
    memLevel: 9,
    windowBits: 15,
    strategy: zlib.constants.Z_DEFAULT_STRATEGY,
    flush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    // One pass on the thread pool: a smaller output buffer gives the same bytes, but each refill is another
    // trip through the main thread's event loop, and the cores wait for it while it tars (25 s became 29 s).
    chunkSize: outputSize(block.length),
  };
  if (dictionary && dictionary.length > 0) options.dictionary = dictionary;
  return compressOnce(zlib.createDeflateRaw(options), block, options.chunkSize!);
}

const ZSTD_PARAMS = {
  [zlib.constants.ZSTD_c_compressionLevel]: 3,
  [zlib.constants.ZSTD_c_checksumFlag]: 0,
  [zlib.constants.ZSTD_c_contentSizeFlag]: 1,
};

/**
 * One zstd frame holding `block`: the bytes of `zstdCompressSync(block, level 3, no checksum)`, computed on the
 * thread pool. The block is written once with the `ZSTD_e_end` flush, so zstd sees all of it in its first call
 * (single pass: the content size goes into the header and the parameters fit the block; 0.3 % smaller than
 * streaming it in), into an output buffer of ZSTD_compressBound (a smaller one gives other, larger bytes). The
 * stream is then dropped, not ended: ending it would add an empty frame, and node:zlib's one-shot call joins
 * that to the frame with a copy of the whole output, garbage the collector would chase for every 4 MiB.
 */
export async function zstdFrame(block: Buffer): Promise<Buffer> {
  const chunkSize = outputSize(block.length);
  const engine = zlib.createZstdCompress({ params: ZSTD_PARAMS, chunkSize, flush: zlib.constants.ZSTD_e_end });
  const out = await compressOnce(engine, block, chunkSize);
  // A frame cut short would be a bug, never output.
  if (zstdFrameEnd(out, 0) !== out.length) throw new Error(`zstd frame of ${block.length} bytes came out incomplete (${out.length} bytes)`);
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;

/** Where the zstd frame starting at `at` ends, by walking its block headers; undefined if it is not one. */
export function zstdFrameEnd(buf: Buffer, at: number): number | undefined {
  if (buf.length < at + 5 || buf.readUInt32LE(at) !== ZSTD_MAGIC) return undefined;
  const fhd = buf[at + 4]!;
  const single = (fhd >> 5) & 1;
  const fcsSize = [single ? 1 : 0, 2, 4, 8][fhd >> 6]!;
  const dictSize = [0, 1, 2, 4][fhd & 3]!;
  let pos = at + 5 + (single ? 0 : 1) + dictSize + fcsSize;
  for (;;) {
    if (pos + 3 > buf.length) return undefined;
    const header = buf.readUIntLE(pos, 3);
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) return undefined;
    pos += 3 + (type === 1 ? 1 : size);
    if (header & 1) break;
  }
  if ((fhd >> 2) & 1) pos += 4;
  return pos <= buf.length ? pos : undefined;
}
