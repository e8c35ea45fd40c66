/**
 * Follows a layer tar's structure as its unpacked bytes go by, so that a decompression bomb is refused early: a
 * few hundred KiB of zstd can unpack to terabytes of zeros, and a reader that hashes the whole output for the
 * diff_id (or lists entries with tar-stream, which skips zero blocks) would run for hours. Runtimes read a layer
 * tar up to its end marker (two zero blocks), so the bytes after it are only padding: past MAX_TRAILING of them,
 * or anything but zeros there, the layer is refused. Before the end every byte lies in a header or an entry's
 * data, which is the layer's real content: reading it costs what the image holds.
 *
 * TarShape is pure: fed the unpacked bytes in order, in any chunking, it throws TarShapeError, which callers word
 * for the layer; tarShaped() is the same as a pass-through stream.
 */
import { Transform } from "node:stream";

export class TarShapeError extends Error {
  override name = "TarShapeError";
}

/** Zero padding after the end marker a layer may have: GNU tar pads to its record (10 KiB; -b 2048 gives 1 MiB). */
export const MAX_TRAILING = 16 << 20;
/** As tar-stream's own bound on one PAX or GNU long-name header. */
const MAX_LONG_HEADER = 4 << 20;

const BLOCK = 512;
const pad = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** The size field (bytes 124-135): octal text, or base-256 when its first byte has the high bit (GNU, star). */
function sizeField(h: Buffer): number | undefined {
  if ((h[124]! & 0x80) !== 0) {
    let n = h[124]! & 0x7f;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = h.toString("latin1", 124, 136).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  return /^[0-7]*$/.test(text) ? (text === "" ? 0 : parseInt(text, 8)) : undefined;
}

/**
 * Whether the header's checksum (bytes 148-155, octal) is the sum of its bytes with that field read as spaces;
 * as Go's reader (and so every runtime) does, a sum of signed bytes, which old tars wrote, is taken too.
 */
function checksumOk(h: Buffer): boolean {
  let sum = 8 * 0x20;
  let signed = sum;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    sum += h[i]!;
    signed += h[i]! < 0x80 ? h[i]! : h[i]! - 0x100;
  }
  const text = h.toString("latin1", 148, 156).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  return /^[0-7]+$/.test(text) && (parseInt(text, 8) === sum || parseInt(text, 8) === signed);
}

/** The `size` record of a PAX extended header, which overrides the next entry's size field (files from 8 GiB). */
function paxSize(data: Buffer): number | undefined {
  const m = /(?:^|\n)\d+ size=(\d+)\n/.exec(data.toString("latin1"));
  return m ? Number(m[1]) : undefined;
}

export class TarShape {
  /** Bytes fed so far. */
  #pos = 0;
  /** Where the next header starts. */
  #next = 0;
  readonly #header = Buffer.alloc(BLOCK);
  #filled = 0;
  /** A zero block was the last header: the next one must be zero too (the end marker), as Go's reader has it. */
  #zero = false;
  /** Where the end marker ended; bytes after it are padding. */
  #end: number | undefined;
  /** The PAX header being read (its data up to #next), and the size it set for the next entry. */
  #pax: Buffer[] | undefined;
  #paxSize: number | undefined;
  /**
   * An old-GNU sparse entry (type S) whose header says "extended": the next block is a sparse-map extension, not a
   * header, and the entry's data (this many bytes) follows the last one. Read as a header, the blocks would put every
   * later header where the runtime does not see one.
   */
  #sparseData: number | undefined;

  /** Feeds the next unpacked bytes; throws TarShapeError when they cannot be a layer tar. */
  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#end !== undefined) {
        for (let k = i; k < chunk.length; k++) {
          if (chunk[k] !== 0) throw new TarShapeError(`bytes after the tar's end marker (at byte ${this.#end}), which runtimes do not read`);
        }
        this.#pos += chunk.length - i;
        if (this.#pos - this.#end > MAX_TRAILING) {
          throw new TarShapeError(`more than ${MAX_TRAILING >> 20} MiB of zeros after the tar's end marker (at byte ${this.#end}): not a layer, but what a decompression bomb unpacks to`);
        }
        return;
      }
      if (this.#pos < this.#next) {
        const n = Math.min(this.#next - this.#pos, chunk.length - i);
        this.#pax?.push(chunk.subarray(i, i + n));
        this.#pos += n;
        i += n;
        if (this.#pos === this.#next && this.#pax) {
          this.#paxSize = paxSize(Buffer.concat(this.#pax));
          this.#pax = undefined;
        }
        continue;
      }
      const n = Math.min(BLOCK - this.#filled, chunk.length - i);
      chunk.copy(this.#header, this.#filled, i, i + n);
      this.#filled += n;
      this.#pos += n;
      i += n;
      if (this.#filled === BLOCK) this.#onHeader();
    }
  }

  /** The stream ended: it must not end inside a header or an entry's data. */
  end(): void {
    if (this.#end === undefined && (this.#filled > 0 || this.#pos < this.#next || this.#sparseData !== undefined)) throw new TarShapeError(`the tar is cut short (it ends at byte ${this.#pos}, inside an entry)`);
  }

  #onHeader(): void {
    const h = this.#header;
    const start = this.#pos - BLOCK;
    this.#filled = 0;
    this.#next = this.#pos;
    if (this.#sparseData !== undefined) return this.#onSparseExtension(h);
    if (h.every((b) => b === 0)) {
      if (this.#zero) this.#end = this.#pos;
      this.#zero = true;
      return;
    }
    if (this.#zero) throw new TarShapeError(`a single zero block at byte ${start - BLOCK} inside the tar (runtimes read it as a broken end marker)`);
    if (!checksumOk(h)) throw new TarShapeError(`no valid tar header at byte ${start} (its checksum does not match)`);
    const size = sizeField(h);
    if (size === undefined) throw new TarShapeError(`the tar header at byte ${start} has an invalid size field`);
    const type = String.fromCharCode(h[156]!);
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (size > MAX_LONG_HEADER) throw new TarShapeError(`the tar's extended header at byte ${start} is ${size} bytes, more than ${MAX_LONG_HEADER >> 20} MiB`);
      if (type === "x" && size > 0) this.#pax = [];
      this.#next += pad(size);
      return;
    }
    // As tar-stream reads it: a directory has no data, whatever its size field says.
    const data = type === "5" ? 0 : (this.#paxSize ?? size);
    this.#paxSize = undefined;
    // Byte 482 of an old-GNU sparse header: more of its map follows in extension blocks (GNU tar, Go's reader).
    if (type === "S" && h[482] !== 0) this.#sparseData = data;
    else this.#next += pad(data);
  }

  /** One 512-byte block of an old-GNU sparse map: 21 entries, then byte 504 saying whether another block follows. */
  #onSparseExtension(h: Buffer): void {
    if (h[504] !== 0) return;
    this.#next += pad(this.#sparseData!);
    this.#sparseData = undefined;
  }
}

/** A pass-through of a layer's unpacked bytes that fails the stream where TarShape refuses them. */
export function tarShaped(): Transform {
  const shape = new TarShape();
  const step = (f: () => void, done: (err?: Error | null) => void) => {
    try {
      f();
    } catch (err) {
      return done(err as Error);
    }
    done();
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      step(() => (shape.feed(chunk), this.push(chunk)), done);
    },
    flush(done) {
      step(() => shape.end(), done);
    },
  });
}
