/**
 * Reading images we did not write (a layout or archive given to inspect or diff, an existing output layout) as
 * untrusted input: digests and archive paths are checked before they name anything, blob files are opened only
 * when they are regular files (never through a symlink, never a FIFO or device), reads stop at the size a
 * descriptor gives or at a limit, and bytes that are used are checked against their digest.
 */
import * as fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { createHash } from "node:crypto";
import { LayerpackError } from "../errors.ts";
import { fileKind, mib } from "../util/format.ts";
import { SHA256_DIGEST } from "../util/digest.ts";

/** The only digest form we accept: it is also a file name, so nothing else may pass (no `/`, no `..`). */
export const DIGEST = SHA256_DIGEST;
/** index.json, oci-layout, manifests, configs, docker manifest.json: ours are a few KiB, docker's far below this. */
export const MAX_DOCUMENT = 16 << 20;
/** All documents one archive may make us keep in memory at once. */
export const MAX_KEPT = 64 << 20;
/** Entries (or store items) one archive may make us remember, and the bytes of their names. */
export const MAX_NAMES = 200_000;
export const MAX_NAME_BYTES = 32 << 20;

/** A value from the input as an error shows it: quoted, and cut short. */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
export const sha256Of = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** `value` as a digest; else an error naming `where` (the file) and `what` (the key, e.g. `manifests[0].digest`). */
export function checkDigest(value: unknown, where: string, what: string): string {
  if (typeof value === "string" && DIGEST.test(value)) return value;
  throw new LayerpackError(`${where}: ${what} is not a valid digest: ${shown(value)} (expected sha256: and 64 lowercase hex digits)`);
}

export function checkSize(value: unknown, where: string, what: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new LayerpackError(`${where}: ${what} is not a valid size: ${shown(value)} (expected a whole number of bytes)`);
}

/** A descriptor's digest and size, checked. */
export function checkDescriptor(value: unknown, where: string, what: string): { digest: string; size: number; mediaType: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new LayerpackError(`${where}: ${what} is not a descriptor object: ${shown(value)}`);
  const d = value as Record<string, unknown>;
  const mediaType = d.mediaType === undefined ? "" : d.mediaType;
  if (typeof mediaType !== "string") throw new LayerpackError(`${where}: ${what}.mediaType is not a string: ${shown(mediaType)}`);
  return { digest: checkDigest(d.digest, where, `${what}.digest`), size: checkSize(d.size, where, `${what}.size`), mediaType };
}

/** A path inside an archive, as docker's manifest.json names entries: relative, `/`-separated, no `..`. */
export function checkArchivePath(value: unknown, where: string, what: string): string {
  const bad = (why: string) => new LayerpackError(`${where}: ${what} ${shown(value)} ${why}; it must be a relative path inside the archive`);
  if (typeof value !== "string" || value === "") throw bad("is not a file name");
  if (value.startsWith("/")) throw bad("is absolute");
  if (value.includes("\0") || value.includes("\\")) throw bad("has a NUL or backslash");
  const parts = value.split("/");
  if (parts.includes("..")) throw bad("goes up with ..");
  const clean = parts.filter((p) => p !== "" && p !== ".").join("/");
  if (clean === "") throw bad("names no file");
  return clean;
}

/** What kind of non-regular file `st` is, for errors. */
/** lstat, or undefined when nothing is there. */
function lstatOrUndefined(file: string, what: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(file, { bigint: true });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new LayerpackError(`${file}: cannot read ${what}: ${(cause as Error).message}`, { cause });
  }
}

/** Fails unless `dir` is a real directory (not a symlink to one): blobs must live inside the layout. */
export function checkRealDirectory(dir: string, what: string): void {
  const st = lstatOrUndefined(dir, what);
  if (st === undefined) throw new LayerpackError(`${dir}: ${what} is missing`);
  if (!st.isDirectory()) throw new LayerpackError(`${dir}: ${what} is ${fileKind(st)}, not a directory; layout blobs are never read through links`);
}

/**
 * Opens `file` if it is a regular file; undefined when it does not exist. The type is checked with lstat before
 * opening (a FIFO would block open), and O_NOFOLLOW | O_NONBLOCK guard against a swap in between.
 */
export function openRegular(file: string, what: string): { fd: number; stats: fs.BigIntStats } | undefined {
  const before = lstatOrUndefined(file, what);
  if (before === undefined) return undefined;
  if (!before.isFile()) throw new LayerpackError(`${file}: ${what} is ${fileKind(before)}, not a regular file; refusing to read it`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new LayerpackError(`${file}: ${what} is a symbolic link, not a regular file; refusing to read it`, { cause });
    throw new LayerpackError(`${file}: cannot read ${what}: ${(cause as Error).message}`, { cause });
  }
  const stats = fs.fstatSync(fd, { bigint: true });
  if (!stats.isFile() || stats.ino !== before.ino || stats.dev !== before.dev) {
    fs.closeSync(fd);
    throw new LayerpackError(`${file}: ${what} changed while it was being opened; refusing to read it`);
  }
  return { fd, stats };
}

/** Identity of a file's current content, as far as the file system tells: a write or a new link changes it. */
export function stampOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Reads up to `limit` bytes from `fd`, and whether there was more. */
function readAtMost(fd: number, limit: number): { data: Buffer; more: boolean } {
  const buf = Buffer.allocUnsafe(limit + 1);
  let got = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, got, buf.length - got, got);
    if (n === 0) break;
    got += n;
    if (got === buf.length) break;
  }
  return got > limit ? { data: buf.subarray(0, limit), more: true } : { data: buf.subarray(0, got), more: false };
}

export type Expect = { size: number; digest?: string } | { max: number };

/**
 * Reads a regular file whole: exactly `size` bytes (and checks `digest`), or at most `max`. Undefined when the
 * file does not exist; a LayerpackError naming `file` and `what` when it is anything else than expected.
 */
export function readRegular(file: string, what: string, expect: Expect): Buffer | undefined {
  const opened = openRegular(file, what);
  if (opened === undefined) return undefined;
  try {
    const actual = Number(opened.stats.size);
    const limit = "size" in expect ? expect.size : expect.max;
    if ("size" in expect && actual !== expect.size) throw new LayerpackError(`${file}: ${what} is ${actual} bytes, but its descriptor says ${expect.size}`);
    if ("max" in expect && actual > expect.max) throw new LayerpackError(`${file}: ${what} is ${mib(actual)}, over the ${mib(expect.max)} limit for such documents`);
    // Never more than the limit in memory, and no more than the file holds (a 40-byte index.json gets 40 bytes).
    const { data, more } = readAtMost(opened.fd, "size" in expect ? limit : Math.min(actual, limit));
    // The file grew or shrank after fstat.
    if (more || ("size" in expect && data.length !== expect.size)) throw new LayerpackError(`${file}: ${what} changed size while it was being read`);
    if ("digest" in expect && expect.digest !== undefined && sha256Of(data) !== expect.digest) {
      throw new LayerpackError(`${file}: ${what} does not match its digest ${expect.digest}`);
    }
    return data;
  } finally {
    fs.closeSync(opened.fd);
  }
}

/** A regular file opened for hashing when it is exactly `size` bytes; undefined when missing, another kind, or another size. */
function openSized(file: string, size: number): NonNullable<ReturnType<typeof openRegular>> | undefined {
  let opened: ReturnType<typeof openRegular>;
  try {
    opened = openRegular(file, "blob");
  } catch {
    return undefined;
  }
  if (opened !== undefined && Number(opened.stats.size) !== size) {
    fs.closeSync(opened.fd);
    return undefined;
  }
  return opened;
}

/**
 * Hashes `size` bytes read by `read` 1 MiB at a time (memory stays flat whatever the file): the digest, or undefined
 * when the file holds more or fewer bytes. One loop for the synchronous and the asynchronous reader.
 */
function* hashChunks(size: number): Generator<{ buf: Buffer; at: number }, string | undefined, number> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, size + 1));
  let done = 0;
  for (;;) {
    const n = yield { buf, at: done };
    if (n === 0) break;
    done += n;
    if (done > size) return undefined;
    hash.update(buf.subarray(0, n));
  }
  return done === size ? `sha256:${hash.digest("hex")}` : undefined;
}

/** The sha256 of a regular file of `size` bytes and its stamp when opened (see openSized and hashChunks). */
export function hashRegularSync(file: string, size: number): { digest: string; stamp: string } | undefined {
  const opened = openSized(file, size);
  if (opened === undefined) return undefined;
  try {
    const steps = hashChunks(size);
    let step = steps.next(0);
    while (!step.done) step = steps.next(fs.readSync(opened.fd, step.value.buf, 0, step.value.buf.length, step.value.at));
    return step.value === undefined ? undefined : { digest: step.value, stamp: stampOf(opened.stats) };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(opened.fd);
  }
}

/** Like hashRegularSync, without blocking: for layer blobs of many MiB. */
export async function hashRegular(file: string, size: number): Promise<string | undefined> {
  const opened = openSized(file, size);
  if (opened === undefined) return undefined;
  try {
    const steps = hashChunks(size);
    let step = steps.next(0);
    while (!step.done) {
      const { buf, at } = step.value;
      step = steps.next(await new Promise<number>((resolve, reject) => fs.read(opened.fd, buf, 0, buf.length, at, (err, n) => (err ? reject(err) : resolve(n)))));
    }
    return step.value;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(opened.fd);
  }
}

/**
 * What one archive may make us hold: documents kept (each at most MAX_DOCUMENT, all at most MAX_KEPT) and names
 * remembered (entries, store items). Past a limit the read stops with an error naming the archive, so a hostile
 * archive costs bounded memory however it is built.
 */
/**
 * Layers an image read may have: runtimes stack about 128 (overlay), so more than this is no image anyone runs,
 * and a manifest listing one layer 200 000 times would cost a reader minutes.
 */
export const MAX_READ_LAYERS = 1000;

/** Refuses a list of more than MAX_READ_LAYERS layers, naming where it was read. */
export function checkLayerCount(count: number, where: string, what = "layers"): void {
  if (count > MAX_READ_LAYERS) throw new LayerpackError(`${where}: ${what} lists ${count} layers; an image has at most ${MAX_READ_LAYERS} (runtimes stack about 128)`);
}

export class ArchiveBudget {
  #kept = 0;
  #names = 0;
  #nameBytes = 0;
  readonly #entries = new Set<string>();
  readonly archive: string;
  constructor(archive: string) {
    this.archive = archive;
  }

  /** Called with an entry's size (from its header, before its data is read) when it is to be kept. */
  keep(entry: string, size: number): void {
    if (size > MAX_DOCUMENT) {
      throw new LayerpackError(`${this.archive}: entry ${shown(entry)} is ${mib(size)}; an entry that is not a layer (a tar, plain or gzip) must be a document of at most ${mib(MAX_DOCUMENT)}`);
    }
    this.#kept += size;
    if (this.#kept > MAX_KEPT) throw new LayerpackError(`${this.archive}: its entries that are not layers add up to more than ${mib(MAX_KEPT)}; this is not an image archive`);
  }

  /**
   * An entry of the image archive itself (a document or a layer), counted as name() counts. One name twice (but a
   * directory) is refused: tools disagree on which copy counts — the last for a reader that indexes the archive,
   * the first for one that streams to it — so the copy checked need not be the copy used.
   */
  entry(name: string, type: string | null | undefined): void {
    this.name(name);
    if (type === "directory") return;
    if (this.#entries.has(name)) throw new LayerpackError(`${this.archive}: holds two entries named ${shown(name)}; an image archive names each document and layer once`);
    this.#entries.add(name);
  }

  name(name: string, what = "entries"): void {
    this.#names++;
    this.#nameBytes += name.length;
    if (this.#names > MAX_NAMES || this.#nameBytes > MAX_NAME_BYTES) {
      throw new LayerpackError(`${this.archive}: more than ${MAX_NAMES} ${what} (or ${mib(MAX_NAME_BYTES)} of names); this is not an image archive layerpack can read`);
    }
  }
}

export const isGzip = (b: Buffer): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
export const isTar = (b: Buffer): boolean => b.length >= 262 && b.subarray(257, 262).toString("latin1") === "ustar";
export const isZstd = (b: Buffer): boolean => b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;

/**
 * Opens an image archive the user named: symlinks followed (a `result` link is normal), but it must be a regular
 * file; O_NONBLOCK so that a FIFO cannot block the open.
 */
export function openArchive(file: string, label: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (cause) {
    throw new LayerpackError(`cannot read image ${label}: ${(cause as Error).message}`, { cause });
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new LayerpackError(`${label} is ${fileKind(st)}, not a regular file; an image archive must be a file`);
  }
  return fd;
}

export interface PipeArchiveOptions {
  /** How messages name the archive. */
  label: string;
  /** The error for a first read that fails. */
  unreadable: (cause: unknown) => Error;
}

/**
 * Streams an image archive (a tar, or a tar gzipped as a whole, told by its first bytes) into `into`. Returns the
 * pipeline and its input, which a reader may destroy to stop early. A first read that fails is `unreadable`'s error.
 */
export function pipeArchive(file: string, into: NodeJS.WritableStream, { label, unreadable }: PipeArchiveOptions): { done: Promise<void>; input: fs.ReadStream } {
  const fd = openArchive(file, label);
  const magic = Buffer.alloc(2);
  try {
    fs.readSync(fd, magic, 0, 2, 0);
  } catch (cause) {
    fs.closeSync(fd);
    throw unreadable(cause);
  }
  const input = fs.createReadStream("", { fd, start: 0 });
  return { done: isGzip(magic) ? pipeline(input, createGunzip(), into) : pipeline(input, into), input };
}
