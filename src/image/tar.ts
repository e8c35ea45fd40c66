/**
 * Reproducible tar header encoder (FORMATS.md §1). The layer writer streams the data itself; this module only
 * produces header bytes, the padding size and the end-of-archive marker.
 *
 * Byte layout follows what GNU tar 1.34 writes, so our archives can be compared with GNU tar's byte for byte:
 * - ustar magic "ustar\0", version "00"; numeric fields are zero-padded octal followed by one NUL
 *   (mode/uid/gid/devmajor/devminor: 7 digits, size/mtime: 11 digits); devmajor/devminor are written (as zeros)
 *   for every entry; the checksum is 6 octal digits, NUL, space.
 * - Names over 100 bytes are split into prefix + name at the last '/' that fits (as GNU `--format=ustar` does).
 * - When a PAX 'x' header is needed it comes first, named like GNU tar's default `%d/PaxHeaders/%f`
 *   (`<dirname or .>/PaxHeaders/<basename>`, cut to 100 bytes), mode 0644, uid/gid 0, empty uname/gname, no device
 *   numbers, mtime = the entry's mtime. Records, in this order: path, linkpath, size, uid, gid; never atime/ctime.
 * - When a value moves to a PAX record, the ustar field gets what GNU tar writes: the first 100 bytes of the
 *   name/link target (prefix empty), or 0 for size/uid/gid.
 * Matches GNU tar `--format=posix --pax-option=delete=atime,delete=ctime` byte for byte except where GNU differs on
 * purpose: GNU in posix mode never uses the prefix field (it writes `path=` instead), and it only writes `linkpath=`
 * for targets over 100 bytes (we also write it for non-ASCII targets, as FORMATS.md asks).
 */
import { BuildError } from "../errors.ts";

export type TarType = "file" | "hardlink" | "symlink" | "char" | "block" | "fifo" | "directory";

export interface TarHeader {
  /** Relative, '/'-separated, no leading '/' or './', no '..'; directories get a trailing '/' added if missing. */
  name: string;
  type: TarType;
  /** Permission bits incl. setuid/setgid/sticky (masked with 0o7777). */
  mode: number;
  /** Regular files only (0 otherwise); may exceed 8 GiB (up to Number.MAX_SAFE_INTEGER). */
  size?: number;
  /** Symlink target / hardlink target name. */
  linkname?: string;
  /** Seconds since the epoch (integer). */
  mtime: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

const BLOCK = 512;
/** Bytes of one tar block (a ustar header, the unit of padding). */
export const TAR_BLOCK = BLOCK;
/** End-of-archive marker: two 512-byte zero blocks. */
export const ZERO_BLOCKS: Buffer = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<TarType, number> = {
  file: 0x30,
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  directory: 0x35,
  fifo: 0x36,
};

const MAX_OCT7 = 0o7777777; // 2097151: uid, gid, devmajor, devminor
const MAX_OCT11 = 0o77777777777; // 8 GiB - 1: size, mtime
const PAX_HEADER_MODE = 0o644;

/** Bytes of zero padding after `size` bytes of data. */
export function paddingFor(size: number): number {
  const rem = size % BLOCK;
  return rem === 0 ? 0 : BLOCK - rem;
}

/** Throws a BuildError unless `name` is a canonical relative entry name (a trailing '/' is allowed). */
export function validateEntryName(name: string): void {
  const why = entryNameProblem(name);
  if (why !== null) throw new BuildError(`invalid tar entry name ${JSON.stringify(name)}: ${why}`);
}

function entryNameProblem(name: string): string | null {
  if (typeof name !== "string" || name.length === 0) return "it is empty";
  if (name.charCodeAt(0) === 0x2f) return "it is absolute (starts with '/')";
  // One pass over the characters, checking each component as it ends (no split(): this runs per entry).
  let start = 0;
  const end = name.length;
  for (let i = 0; i <= end; i++) {
    const c = i < end ? name.charCodeAt(i) : 0x2f;
    if (c === 0) return "it contains a NUL byte";
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0 && i < end) return "it has an empty component ('//')";
    if (len === 1 && name.charCodeAt(start) === 0x2e) {
      return start === 0 ? "it starts with './' or is '.'" : "it has a '.' component";
    }
    if (len === 2 && name.charCodeAt(start) === 0x2e && name.charCodeAt(start + 1) === 0x2e) {
      return "it has a '..' component";
    }
    start = i + 1;
  }
  return null;
}

/** True when every UTF-16 unit is 7-bit ASCII (so the string's UTF-8 bytes equal its characters). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Writes `value` as `digits` zero-padded octal digits followed by a NUL. Caller checks the range. */
function writeOctal(buf: Buffer, off: number, digits: number, value: number): void {
  let v = value;
  for (let i = off + digits - 1; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + digits] = 0;
}

function checkInt(what: string, name: string, v: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: ${what} ${v} is not an integer in 0..${max}`);
  }
}

/**
 * Last '/' at which `name` (ASCII, > 100 bytes) splits into prefix (≤155) + name (≤100, non-empty),
 * or -1. The largest prefix leaves the shortest name part, so it is the only candidate worth trying.
 */
function splitPoint(name: string): number {
  const len = name.length;
  for (let i = Math.min(155, len - 2); i > 0; i--) {
    if (name.charCodeAt(i) === 0x2f) return len - i - 1 <= 100 ? i : -1;
  }
  return -1;
}

/** Appends one self-inclusive PAX record "<len> <key>=<value>\n"; `value` is UTF-8 bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const base = key.length + value.length + 3; // ' ', '=', '\n'
  let len = base + 1;
  while (len !== base + String(len).length) len = base + String(len).length;
  const head = `${len} ${key}=`;
  const out = Buffer.allocUnsafe(len);
  out.write(head, 0, "latin1");
  value.copy(out, head.length);
  out[len - 1] = 0x0a;
  return out;
}

/** GNU tar's default extended header name `%d/PaxHeaders/%f`, cut to 100 bytes. */
function paxHeaderName(nameBytes: Buffer): Buffer {
  let end = nameBytes.length;
  if (end > 1 && nameBytes[end - 1] === 0x2f) end--;
  const slash = nameBytes.lastIndexOf(0x2f, end - 1);
  const dir = slash < 0 ? Buffer.from(".") : nameBytes.subarray(0, slash);
  const base = nameBytes.subarray(slash + 1, end);
  const full = Buffer.concat([dir, Buffer.from("/PaxHeaders/"), base]);
  return full.length > 100 ? full.subarray(0, 100) : full;
}

/** The fields of one ustar header block, as writeUstar writes them (numbers already range-checked; strings ASCII,
 * anything else comes as bytes). */
interface UstarFields {
  name: Buffer | string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: number;
  linkname: Buffer | string;
  uname: string;
  gname: string;
  /** Whether devmajor/devminor are written (zero-filled otherwise, as for a PAX header). */
  dev: boolean;
  devmajor: number;
  devminor: number;
}

/** Writes ASCII `s`, which fits its field (resolve() cut or refused what does not), at `off`: a JS loop is cheaper
 * than buf.write's call for the short strings of a header, and costs nothing for an empty one. */
function putAscii(buf: Buffer, off: number, s: string): void {
  for (let i = 0; i < s.length; i++) buf[off + i] = s.charCodeAt(i);
}

const MAGIC = "ustar\u000000";

/** What the checksum field adds to a header's checksum: it is counted as 8 spaces. */
const CHECKSUM_SPACES = 8 * 0x20;

/** The byte sum of `buf` from `from` to `to`. */
function sumOf(buf: Buffer, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += buf[i]!;
  return sum;
}

/**
 * Fills one ustar header block at `off`, whose bytes must be zero. `name`/`prefix`/`linkname` are written as given
 * (already cut to fit); `dev` false leaves devmajor/devminor empty (PAX headers).
 */
function writeUstar(buf: Buffer, off: number, f: UstarFields): void {
  const { name, prefix, mode, uid, gid, size, mtime, typeflag, linkname, uname, gname, dev, devmajor, devminor } = f;
  if (typeof name === "string") putAscii(buf, off, name);
  else name.copy(buf, off, 0, 100);
  writeOctal(buf, off + 100, 7, mode);
  writeOctal(buf, off + 108, 7, uid);
  writeOctal(buf, off + 116, 7, gid);
  writeOctal(buf, off + 124, 11, size);
  writeOctal(buf, off + 136, 11, mtime);
  buf[off + 156] = typeflag;
  if (typeof linkname === "string") putAscii(buf, off + 157, linkname);
  else linkname.copy(buf, off + 157, 0, 100);
  putAscii(buf, off + 257, MAGIC);
  putAscii(buf, off + 265, uname);
  putAscii(buf, off + 297, gname);
  if (dev) {
    writeOctal(buf, off + 329, 7, devmajor);
    writeOctal(buf, off + 337, 7, devminor);
  }
  putAscii(buf, off + 345, prefix);
  // Checksum: the byte sum, with the checksum field as spaces.
  const sum = CHECKSUM_SPACES + sumOf(buf, off, off + 148) + sumOf(buf, off + 156, off + BLOCK);
  writeOctal(buf, off + 148, 6, sum);
  buf[off + 155] = 0x20;
}

/** What encoding one entry needs, after its checks: its ustar fields, and the values that go to PAX records. */
interface Resolved {
  /** The name as checked, a directory's with its trailing '/'. */
  name: string;
  /** The values as given (a PAX record holds them when they are too large for ustar). */
  size: number;
  uid: number;
  gid: number;
  ustar: UstarFields;
  /** The name and link target as UTF-8 bytes, when they do not fit ustar (PAX `path` / `linkpath`). */
  pathBytes: Buffer | null;
  linkBytes: Buffer | null;
  bigSize: boolean;
  bigUid: boolean;
  bigGid: boolean;
}

/** Checks `h` (throwing BuildError on an invalid name, link target or number) and decides what fits ustar. */
function resolve(h: TarHeader): Resolved {
  const type = h.type;
  const typeflag = TYPEFLAG[type];
  if (typeflag === undefined) throw new BuildError(`tar entry ${JSON.stringify(h.name)}: unknown type ${String(type)}`);
  let name = h.name;
  validateEntryName(name);
  if (type === "directory") {
    if (name.charCodeAt(name.length - 1) !== 0x2f) name += "/";
  } else if (name.charCodeAt(name.length - 1) === 0x2f) {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: only a directory name may end in '/' (type ${type})`);
  }

  const size = h.size ?? 0;
  checkInt("size", name, size, Number.MAX_SAFE_INTEGER);
  if (size !== 0 && type !== "file") {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: a ${type} entry cannot have a size (${size})`);
  }
  const uid = h.uid ?? 0;
  const gid = h.gid ?? 0;
  checkInt("uid", name, uid, Number.MAX_SAFE_INTEGER);
  checkInt("gid", name, gid, Number.MAX_SAFE_INTEGER);
  checkInt("mtime", name, h.mtime, MAX_OCT11);
  checkInt("mode", name, h.mode, Number.MAX_SAFE_INTEGER);
  const devmajor = h.devmajor ?? 0;
  const devminor = h.devminor ?? 0;
  checkInt("devmajor", name, devmajor, MAX_OCT7);
  checkInt("devminor", name, devminor, MAX_OCT7);
  const uname = h.uname ?? "root";
  const gname = h.gname ?? "root";
  if (uname.length > 31 || !isAscii(uname) || uname.includes("\0")) {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: uname ${JSON.stringify(uname)} must be ASCII, ≤ 31 bytes`);
  }
  if (gname.length > 31 || !isAscii(gname) || gname.includes("\0")) {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: gname ${JSON.stringify(gname)} must be ASCII, ≤ 31 bytes`);
  }

  const linkname = h.linkname ?? "";
  if (type === "symlink" || type === "hardlink") {
    if (linkname.length === 0) throw new BuildError(`tar entry ${JSON.stringify(name)}: ${type} needs a linkname`);
    if (linkname.includes("\0")) {
      throw new BuildError(`tar entry ${JSON.stringify(name)}: link target contains a NUL byte`);
    }
    if (type === "hardlink") {
      const why = entryNameProblem(linkname);
      if (why !== null) throw new BuildError(`tar entry ${JSON.stringify(name)}: hardlink target ${JSON.stringify(linkname)}: ${why}`);
    }
  } else if (linkname.length !== 0) {
    throw new BuildError(`tar entry ${JSON.stringify(name)}: a ${type} entry cannot have a linkname`);
  }

  // Decide what fits ustar; everything else goes to PAX records (in the fixed order encodeHeader writes them).
  let ustarName: Buffer | string = name;
  let prefix = "";
  let pathBytes: Buffer | null = null;
  if (!isAscii(name)) {
    pathBytes = Buffer.from(name, "utf8");
  } else if (name.length > 100) {
    const at = splitPoint(name);
    if (at > 0) {
      prefix = name.slice(0, at);
      ustarName = name.slice(at + 1);
    } else {
      pathBytes = Buffer.from(name, "latin1");
    }
  }
  if (pathBytes !== null) ustarName = pathBytes; // writeUstar keeps the first 100 bytes

  let ustarLink: Buffer | string = linkname;
  let linkBytes: Buffer | null = null;
  if (!isAscii(linkname)) linkBytes = Buffer.from(linkname, "utf8");
  else if (linkname.length > 100) linkBytes = Buffer.from(linkname, "latin1");
  if (linkBytes !== null) ustarLink = linkBytes;

  const bigSize = size > MAX_OCT11;
  const bigUid = uid > MAX_OCT7;
  const bigGid = gid > MAX_OCT7;
  const ustar: UstarFields = {
    name: ustarName, prefix, mode: h.mode & 0o7777, uid: bigUid ? 0 : uid, gid: bigGid ? 0 : gid, size: bigSize ? 0 : size,
    mtime: h.mtime, typeflag, linkname: ustarLink, uname, gname, dev: true, devmajor, devminor,
  };
  return { name, size, uid, gid, ustar, pathBytes, linkBytes, bigSize, bigUid, bigGid };
}

const needsPax = (r: Resolved): boolean => r.pathBytes !== null || r.linkBytes !== null || r.bigSize || r.bigUid || r.bigGid;

/**
 * Writes the header of `h` into `buf` at `off` when it is a single ustar block (no PAX header needed) and returns
 * true; returns false, writing nothing, when it needs encodeHeader's PAX header. Throws as encodeHeader does. The
 * layer writer encodes most entries straight into its batch this way: no buffer per entry, no copy.
 */
export function encodeHeaderInto(buf: Buffer, off: number, h: TarHeader): boolean {
  const r = resolve(h);
  if (needsPax(r)) return false;
  if (buf.length < off + BLOCK) throw new RangeError(`tar header at ${off} does not fit a buffer of ${buf.length} bytes`);
  buf.fill(0, off, off + BLOCK); // writeUstar leaves unused field bytes as they are
  writeUstar(buf, off, r.ustar);
  return true;
}

/** The types RootHeaders encodes, with their typeflags. */
const FAST_TYPES: Partial<Record<TarType, number>> = { file: TYPEFLAG.file, symlink: TYPEFLAG.symlink, directory: TYPEFLAG.directory };

/** Copies ASCII `s` to `off` and returns its byte sum, or -1 at the first non-ASCII or NUL unit. */
function asciiSum(buf: Buffer, off: number, s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || c === 0) return -1;
    buf[off + i] = c;
    sum += c;
  }
  return sum;
}

/**
 * encodeHeaderInto for what store layers are made of: a file, directory or symlink owned by root, stamped with one
 * mtime, whose name and target are ASCII and fit ustar (a long name split into prefix and name). It writes the same
 * bytes from a template block that holds the fields such entries share (owner, mtime, magic, device numbers), with
 * no per-entry objects and no checksum pass over the whole block. Its checks are resolve()'s for these entries:
 * a rule added there must be added here, or this path must decline what it covers (test/image/tar.test.ts compares
 * both paths on generated entries).
 */
export class RootHeaders {
  readonly #block: Buffer;
  /** The template's byte sum, its checksum field counted as spaces. */
  readonly #sum: number;

  private constructor(mtime: number) {
    const r = resolve({ name: "x", type: "directory", mode: 0, mtime });
    const block = Buffer.alloc(BLOCK);
    writeUstar(block, 0, { ...r.ustar, name: "" });
    // Left out: what each entry writes itself (mode, size, checksum, typeflag; name, link and prefix are empty).
    block.fill(0, 100, 108);
    block.fill(0, 124, 136);
    block.fill(0, 148, 157);
    this.#block = block;
    this.#sum = CHECKSUM_SPACES + sumOf(block, 0, BLOCK);
  }

  /** The headers for `mtime`, or null when it is not a valid tar mtime (the general path then says why). */
  static for(mtime: number): RootHeaders | null {
    return Number.isSafeInteger(mtime) && mtime >= 0 && mtime <= MAX_OCT11 ? new RootHeaders(mtime) : null;
  }

  /**
   * Writes the header of `e` at `off` and returns true; returns false for anything this path does not cover or
   * refuses (possibly having scribbled on the block), which the caller encodes the general way, getting its errors.
   */
  encodeInto(buf: Buffer, off: number, e: Pick<TarHeader, "name" | "type" | "mode" | "size" | "linkname">): boolean {
    const typeflag = FAST_TYPES[e.type];
    const { mode } = e;
    const size = e.size ?? 0;
    const linkname = e.linkname ?? "";
    const dir = e.type === "directory";
    if (typeflag === undefined || linkname.length > 100 || buf.length < off + BLOCK) return false;
    if (!Number.isSafeInteger(mode) || mode < 0 || !Number.isSafeInteger(size) || size < 0 || size > MAX_OCT11) return false;
    if ((e.type === "symlink") !== (linkname.length > 0) || (size !== 0 && e.type !== "file")) return false;
    const given = e.name;
    const endsInSlash = given.charCodeAt(given.length - 1) === 0x2f;
    if ((!dir && endsInSlash) || entryNameProblem(given) !== null) return false;
    const name = dir && !endsInSlash ? `${given}/` : given;
    // As resolve(): over 100 bytes, the name is split at the last '/' that leaves a prefix of at most 155.
    const at = name.length > 100 ? splitPoint(name) : -1;
    if (name.length > 100 && at <= 0) return false;
    this.#block.copy(buf, off);
    const prefix = at > 0 ? asciiSum(buf, off + 345, name.slice(0, at)) : 0;
    const rest = asciiSum(buf, off, at > 0 ? name.slice(at + 1) : name);
    const link = asciiSum(buf, off + 157, linkname);
    if (prefix < 0 || rest < 0 || link < 0) return false;
    writeOctal(buf, off + 100, 7, mode & 0o7777);
    writeOctal(buf, off + 124, 11, size);
    buf[off + 156] = typeflag;
    const sum = this.#sum + prefix + rest + link + typeflag + sumOf(buf, off + 100, off + 107) + sumOf(buf, off + 124, off + 135);
    writeOctal(buf, off + 148, 6, sum);
    buf[off + 155] = 0x20;
    return true;
  }
}

/**
 * The 512-byte ustar header for `h`, preceded by a PAX 'x' header and its records when a value does not fit
 * ustar (see the module comment). Throws BuildError on an invalid name, link target, or out-of-range number.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const r = resolve(h);
  if (!needsPax(r)) {
    const buf = Buffer.alloc(BLOCK);
    writeUstar(buf, 0, r.ustar);
    return buf;
  }
  const { pathBytes, linkBytes } = r;
  const records: Buffer[] = [];
  if (pathBytes !== null) records.push(paxRecord("path", pathBytes));
  if (linkBytes !== null) records.push(paxRecord("linkpath", linkBytes));
  if (r.bigSize) records.push(paxRecord("size", Buffer.from(String(r.size), "latin1")));
  if (r.bigUid) records.push(paxRecord("uid", Buffer.from(String(r.uid), "latin1")));
  if (r.bigGid) records.push(paxRecord("gid", Buffer.from(String(r.gid), "latin1")));
  let paxSize = 0;
  for (const rec of records) paxSize += rec.length;

  const total = BLOCK + paxSize + paddingFor(paxSize) + BLOCK;
  const buf = Buffer.alloc(total);
  const nameBytes = pathBytes ?? Buffer.from(r.name, "latin1");
  writeUstar(buf, 0, { name: paxHeaderName(nameBytes), prefix: "", mode: PAX_HEADER_MODE, uid: 0, gid: 0, size: paxSize, mtime: h.mtime, typeflag: 0x78, linkname: "", uname: "", gname: "", dev: false, devmajor: 0, devminor: 0 });
  let off = BLOCK;
  for (const rec of records) {
    rec.copy(buf, off);
    off += rec.length;
  }
  writeUstar(buf, total - BLOCK, r.ustar);
  return buf;
}

