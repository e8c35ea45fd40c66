/**
 * A tar file written entry by entry with explicit positions (so a header can be filled in after its data), for the
 * archive outputs: docker archives and OCI archives. Entries are owned by root and stamped with one mtime.
 */
import * as fs from "node:fs";
import { createHash } from "node:crypto";
import { openRegular } from "../oci/blob-file.ts";
import { writeError } from "./sink.ts";
import { encodeHeader, paddingFor, ZERO_BLOCKS } from "./tar.ts";

export class TarFileWriter {
  readonly fd: number;
  readonly file: string;
  readonly #mtime: number;
  /** Where the next entry goes. */
  pos = 0;
  #copyBuffer: Buffer | undefined;

  /** Creates `file` (a temp name; the caller renames it into place). */
  constructor(file: string, mtime: number) {
    this.file = file;
    this.#mtime = mtime;
    try {
      this.fd = fs.openSync(file, "wx", 0o644);
    } catch (cause) {
      throw writeError(file, cause);
    }
  }

  /** Writes at `position`, or appends at the current end when none is given. */
  write(buf: Buffer, position?: number): void {
    const at = position ?? this.pos;
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off, at + off);
    } catch (cause) {
      throw writeError(this.file, cause);
    }
    if (position === undefined) this.pos += buf.length;
  }

  header(name: string, size: number, options: { type?: "file" | "directory"; mode?: number } = {}): Buffer {
    const type = options.type ?? "file";
    const mode = options.mode ?? (type === "directory" ? 0o755 : 0o644);
    return encodeHeader({ name, type, mode, size, mtime: this.#mtime, uid: 0, gid: 0, uname: "root", gname: "root" });
  }

  entry(name: string, data: Buffer, mode?: number): void {
    this.write(this.header(name, data.length, mode === undefined ? {} : { mode }));
    this.write(data);
    this.write(Buffer.alloc(paddingFor(data.length)));
  }

  directory(name: string): void {
    this.write(this.header(name, 0, { type: "directory" }));
  }

  /**
   * Copies `size` bytes of `file` from `offset` in as entry `name`, checking their sha256 is `digest`. Returns
   * where the entry's data starts (after a header that may be PAX-extended), or undefined, having written nothing,
   * when the bytes are not what they claim to be (or cannot be read, or are not a regular file).
   */
  copyEntry(name: string, blob: { file: string; digest: string; size: number; offset?: number }, mode?: number): number | undefined {
    const start = this.pos;
    this.write(this.header(name, blob.size, mode === undefined ? {} : { mode }));
    const dataAt = this.pos;
    const from = blob.offset ?? 0;
    // One copy buffer per archive: a fresh 4 MiB one per layer is garbage the collector frees late (peak memory).
    this.#copyBuffer ??= Buffer.allocUnsafe(4 << 20);
    const buf = this.#copyBuffer;
    const hash = createHash("sha256");
    // A regular file only, never through a link: a FIFO in a cached blob's place would block the open for ever.
    let opened: ReturnType<typeof openRegular>;
    try {
      opened = openRegular(blob.file, "blob");
    } catch {
      opened = undefined;
    }
    if (opened === undefined) {
      this.pos = start;
      return undefined;
    }
    const fd = opened.fd;
    let copied = 0;
    try {
      while (copied < blob.size) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, blob.size - copied), from + copied);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        this.write(buf.subarray(0, n));
        copied += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    if (copied !== blob.size || `sha256:${hash.digest("hex")}` !== blob.digest) {
      this.pos = start;
      return undefined;
    }
    this.write(Buffer.alloc(paddingFor(blob.size)));
    return dataAt;
  }

  /** Writes the end-of-archive blocks, drops anything past them (rewound entries), and closes the file. */
  end(): void {
    this.write(ZERO_BLOCKS);
    try {
      fs.ftruncateSync(this.fd, this.pos);
    } catch (cause) {
      throw writeError(this.file, cause);
    }
    this.close();
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
