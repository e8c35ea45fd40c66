/**
 * NAR serialisation (FORMATS.md §5), as sizes and a streaming sha256. Nothing is ever serialised to memory: the
 * size comes from metadata alone, the hash from tokens pushed in walk order plus the file contents as they stream.
 *
 * str(s) = u64le length, bytes, zero padding to 8. Archive = str("nix-archive-1") node.
 * node = "(" "type" body ")"; regular: "regular" ["executable" ""] "contents" u64 data pad;
 * symlink: "symlink" "target" str; directory: "directory" { "entry" "(" "name" str "node" node ")" }.
 */
import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import { StoreError } from "../errors.ts";
import { openForRead, readInto, walkTree, type WalkEntry } from "./walk.ts";

const pad8 = (n: number): number => (8 - (n % 8)) % 8;
/** Serialised length of str(s) for a byte length `n`. */
const strLen = (n: number): number => 8 + n + pad8(n);

function str(s: string): Buffer {
  const bytes = Buffer.from(s);
  const out = Buffer.alloc(strLen(bytes.length));
  out.writeBigUInt64LE(BigInt(bytes.length), 0);
  bytes.copy(out, 8);
  return out;
}

const T = {
  magic: str("nix-archive-1"),
  open: str("("),
  close: str(")"),
  type: str("type"),
  regular: str("regular"),
  executable: Buffer.concat([str("executable"), str("")]),
  contents: str("contents"),
  symlink: str("symlink"),
  target: str("target"),
  directory: str("directory"),
  entry: str("entry"),
  name: str("name"),
  node: str("node"),
};
const ZEROS = Buffer.alloc(8);

const byteLength = (s: string): number => Buffer.byteLength(s);
const baseName = (rel: string): string => rel.slice(rel.lastIndexOf("/") + 1);

/** NAR bytes of the header every archive starts with. */
export const NAR_MAGIC_SIZE = T.magic.length;

/** NAR bytes one walk entry contributes, including its entry wrapper and its node's closing token. */
export function entrySize(e: Pick<WalkEntry, "rel" | "type" | "mode" | "size" | "target">): number {
  let n = e.rel === "" ? 0 : T.entry.length + T.open.length + T.name.length + strLen(byteLength(baseName(e.rel))) + T.node.length + T.close.length;
  n += T.open.length + T.type.length + T.close.length;
  if (e.type === "file") {
    n += T.regular.length + (e.mode & 0o100 ? T.executable.length : 0) + T.contents.length + 8 + e.size + pad8(e.size);
  } else if (e.type === "symlink") {
    n += T.symlink.length + T.target.length + strLen(byteLength(e.target ?? ""));
  } else {
    n += T.directory.length;
  }
  return n;
}

/** NAR size of a tree from metadata only (no content reads). */
export function narSize(hostPath: string, options: { label?: string } = {}): number {
  let n = T.magic.length;
  for (const e of walkTree(hostPath, options)) n += entrySize(e);
  return n;
}

/** Incremental NAR size: feed walk entries in walk order (for consumers that already walk the tree). */
export class NarSizer {
  size = T.magic.length;
  entry(e: WalkEntry): void {
    this.size += entrySize(e);
  }
}

export interface NarResult {
  /** `sha256:<hex>` of the NAR serialisation. */
  hash: string;
  /** NAR length in bytes. */
  size: number;
}

/**
 * Push-style NAR hasher. Call `entry()` for each walk entry in walk order (walk.ts), after a file entry call
 * `data()` with exactly its bytes, then `end()`. The serialisation is only hashed, never kept.
 */
export class NarHasher {
  private readonly hash: Hash = createHash("sha256");
  private size = 0;
  /** rel paths of the directories still open, innermost last. */
  private readonly open: string[] = [];
  /** Bytes still expected for the current file, -1 when not in a file. */
  private remaining = -1;
  private fileSize = 0;
  private current = "";
  private started = false;
  private label: string;

  constructor(label = "tree") {
    this.label = label;
  }

  private put(buf: Uint8Array): void {
    this.hash.update(buf);
    this.size += buf.length;
  }

  private closeFile(): void {
    if (this.remaining < 0) return;
    if (this.remaining !== 0) {
      throw new StoreError(`${this.where(this.current)} changed while being read: ${this.remaining} bytes fewer than its size ${this.fileSize}`);
    }
    const pad = pad8(this.fileSize);
    if (pad) this.put(ZEROS.subarray(0, pad));
    this.put(T.close);
    if (this.current !== "") this.put(T.close);
    this.remaining = -1;
  }

  private where(rel: string): string {
    return rel === "" ? this.label : `${this.label}/${rel}`;
  }

  /** Closes open directories until `rel`'s parent is the innermost one. */
  private closeDirsUntil(rel: string): void {
    for (;;) {
      const top = this.open.at(-1);
      if (top === undefined) return;
      if (top === "" || rel.startsWith(`${top}/`)) return;
      this.open.pop();
      this.put(T.close);
      this.put(T.close);
    }
  }

  entry(e: WalkEntry): void {
    this.closeFile();
    if (!this.started) {
      if (e.rel !== "") throw new Error("NarHasher: the first entry must be the root");
      this.started = true;
      this.put(T.magic);
    } else {
      if (e.rel === "") throw new Error("NarHasher: a second root entry");
      this.closeDirsUntil(e.rel);
      if (this.open.length === 0) throw new Error(`NarHasher: ${e.rel} is not inside the walked root`);
      this.put(T.entry);
      this.put(T.open);
      this.put(T.name);
      this.put(str(baseName(e.rel)));
      this.put(T.node);
    }
    this.put(T.open);
    this.put(T.type);
    if (e.type === "file") {
      this.put(T.regular);
      if (e.mode & 0o100) this.put(T.executable);
      this.put(T.contents);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(e.size), 0);
      this.put(len);
      this.remaining = e.size;
      this.fileSize = e.size;
      this.current = e.rel;
    } else if (e.type === "symlink") {
      this.put(T.symlink);
      this.put(T.target);
      this.put(str(e.target ?? ""));
      this.put(T.close);
      if (e.rel !== "") this.put(T.close);
    } else {
      this.put(T.directory);
      this.open.push(e.rel);
    }
  }

  /** Contents of the current file, in order. */
  data(chunk: Uint8Array): void {
    if (this.remaining < 0) throw new Error("NarHasher: data() outside a file entry");
    if (chunk.length > this.remaining) {
      throw new StoreError(`${this.where(this.current)} changed while being read: it grew past its size ${this.fileSize}`);
    }
    this.remaining -= chunk.length;
    this.put(chunk);
  }

  end(): NarResult {
    if (!this.started) throw new Error("NarHasher: end() before any entry");
    this.closeFile();
    while (this.open.length > 0) {
      const rel = this.open.pop()!;
      this.put(T.close);
      if (rel !== "") this.put(T.close);
    }
    return { hash: `sha256:${this.hash.digest("hex")}`, size: this.size };
  }
}

const CHUNK = 1 << 20;
let sharedBuffer: Buffer | undefined;

/** Reads a regular file in large chunks into a reused buffer, calling `onChunk` with views of it. */
export function readFileChunks(host: string, label: string, onChunk: (chunk: Buffer) => void): void {
  sharedBuffer ??= Buffer.allocUnsafe(CHUNK);
  const buf = sharedBuffer;
  const fd = openForRead(host, label);
  try {
    for (;;) {
      const n = readInto(fd, buf, CHUNK, label);
      if (n === 0) break;
      onChunk(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** `sha256:<hex>` of a tree's NAR serialisation (reads every file once). */
export function narHash(hostPath: string, options: { label?: string } = {}): string {
  return narDigest(hostPath, options).hash;
}

/** NAR hash and size of a tree on the host (reads every file once). */
export function narDigest(hostPath: string, options: { label?: string } = {}): NarResult {
  const label = options.label ?? hostPath;
  const hasher = new NarHasher(label);
  for (const e of walkTree(hostPath, { label })) {
    hasher.entry(e);
    if (e.type === "file") readFileChunks(e.hostPath, e.rel === "" ? label : `${label}/${e.rel}`, (c) => hasher.data(c));
  }
  return hasher.end();
}
