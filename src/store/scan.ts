/**
 * Reference scanning as Nix does it: an item refers to another when the other's 32-char hash part appears anywhere
 * in its file contents, file names or symlink targets. One pass over each item's bytes looks for every candidate
 * at once: a window of 32 nix32 bytes is looked up in a Set; bytes outside the alphabet let the scan jump ahead.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StoreError } from "../errors.ts";
import { NarSizer, readFileChunks } from "./nar.ts";
import { HASH_PART_LENGTH, NIX32_ALPHABET, byBytes, hashPart, hostPath, isItemName } from "./path.ts";
import type { StoreItem, StoreLocation } from "./types.ts";
import { walkTree, type WalkEntry } from "./walk.ts";

const W = HASH_PART_LENGTH;

/** 0 for bytes outside the nix32 alphabet, else 1 + the digit's value. */
const CODE = new Uint8Array(256);
for (let i = 0; i < NIX32_ALPHABET.length; i++) CODE[NIX32_ALPHABET.charCodeAt(i)] = i + 1;

/** Index of four nix32 codes (as in CODE): windows whose first and last four chars match no candidate's are
 * rejected before a string is built for the Set lookup, which matters in long runs of alphabet text. */
const quadIndex = (a: number, b: number, c: number, d: number): number => ((a - 1) << 15) | ((b - 1) << 10) | ((c - 1) << 5) | (d - 1);
const quadAt = (s: string, i: number): number =>
  quadIndex(CODE[s.charCodeAt(i)]!, CODE[s.charCodeAt(i + 1)]!, CODE[s.charCodeAt(i + 2)]!, CODE[s.charCodeAt(i + 3)]!);

/** Finds, in a stream of chunks, which of a fixed set of hash parts occur. */
export class HashScanner {
  private readonly candidates: Set<string>;
  private readonly heads = new Uint8Array(1 << 20);
  private readonly tails = new Uint8Array(1 << 20);
  /** Chunk-boundary carry: the previous chunk's last W-1 bytes, placed in front of the next chunk. */
  private readonly work: Buffer;
  private carry = 0;
  readonly found = new Set<string>();

  constructor(candidates: Iterable<string>) {
    this.candidates = new Set(candidates);
    for (const c of this.candidates) {
      if (c.length !== W || [...c].some((ch) => CODE[ch.charCodeAt(0)] === 0)) throw new Error(`HashScanner: ${c} is not a hash part`);
      this.heads[quadAt(c, 0)] = 1;
      this.tails[quadAt(c, W - 4)] = 1;
    }
    this.work = Buffer.allocUnsafe(2 * W);
  }

  /** Scans one contiguous byte range: windows lying wholly inside `buf[start, end)`. */
  private scanRange(buf: Buffer, start: number, end: number): void {
    const code = CODE;
    const heads = this.heads;
    const tails = this.tails;
    let i = start;
    let good = 0; // bytes buf[i, i+good) are known to be in the alphabet
    while (i + W <= end) {
      let j = W - 1;
      while (j >= good && code[buf[i + j]!] !== 0) j--;
      if (j >= good) {
        // buf[i+j] is outside the alphabet: no window containing it can match.
        good = W - 1 - j;
        i += j + 1;
        continue;
      }
      if (
        tails[quadIndex(code[buf[i + W - 4]!]!, code[buf[i + W - 3]!]!, code[buf[i + W - 2]!]!, code[buf[i + W - 1]!]!)] !== 0 &&
        heads[quadIndex(code[buf[i]!]!, code[buf[i + 1]!]!, code[buf[i + 2]!]!, code[buf[i + 3]!]!)] !== 0
      ) {
        const s = buf.toString("latin1", i, i + W);
        if (this.candidates.has(s)) this.found.add(s);
      }
      i++;
      good = W - 1;
    }
  }

  /** Feeds the next chunk of the current stream. Windows spanning chunk boundaries are found. */
  write(chunk: Buffer): void {
    if (this.carry > 0) {
      // Windows that start in the carried tail end within the chunk's first W-1 bytes: only those are copied.
      const head = Math.min(chunk.length, W - 1);
      this.work.set(chunk.subarray(0, head), this.carry);
      this.scanRange(this.work, 0, this.carry + head);
      if (chunk.length < W - 1) {
        const total = this.carry + chunk.length;
        const keep = Math.min(total, W - 1);
        this.work.copyWithin(0, total - keep, total);
        this.carry = keep;
        return;
      }
    }
    if (chunk.length >= W) this.scanRange(chunk, 0, chunk.length);
    const keep = Math.min(chunk.length, W - 1);
    this.work.set(chunk.subarray(chunk.length - keep), 0);
    this.carry = keep;
  }

  /** Ends the current stream (a file, a name): the next write starts fresh. */
  endStream(): void {
    this.carry = 0;
  }

  /** Scans a whole string (a file name or symlink target) as its own stream. */
  scanString(s: string): void {
    this.endStream();
    const b = Buffer.from(s);
    if (b.length >= W) this.scanRange(b, 0, b.length);
  }
}

/**
 * The items of a host store directory, by hash part. Lock files Nix leaves beside items (`<item>.lock`) share the
 * item's hash part; the item wins.
 */
export function listStoreItems(store: StoreLocation): Map<string, string> {
  const dir = hostPath(store, store.dir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (cause) {
    throw new StoreError(`listing the store ${dir}: ${(cause as Error).message}`, { cause });
  }
  const out = new Map<string, string>();
  for (const name of names.sort()) {
    if (!isItemName(name)) continue;
    const hash = name.slice(0, W);
    const prev = out.get(hash);
    if (prev === undefined || (prev.endsWith(".lock") && !name.endsWith(".lock"))) out.set(hash, path.posix.join(store.dir, name));
  }
  return out;
}

export interface ScanResult {
  /** Hash parts of the candidates found (including the item's own, for a self reference). */
  hashes: Set<string>;
  narSize: number;
  /**
   * Hash parts of store paths the item's files spell out (`<store dir>/<hash part>-`) that were no candidate: items
   * the store lacked when it was scanned. A remembered scan is stale once one of them appears (scanClosure).
   */
  mentions: Set<string>;
}

/**
 * Finds `<store dir>/<hash part>-` in a stream of chunks where the hash part is no candidate. The hash scanner
 * finds only the candidates (a bare hash part of a missing item is indistinguishable from any 32 letters), but a
 * full store path is what binaries and scripts hold, so this is what a later scan, with that item present, would
 * find as a reference.
 */
export class MentionScanner {
  readonly found = new Set<string>();
  readonly #prefix: Buffer;
  /** Bytes a mention spans: the prefix, the hash part, the dash. */
  readonly #span: number;
  #carry: Buffer = Buffer.alloc(0);
  readonly #isCandidate: (hash: string) => boolean;

  constructor(storeDir: string, isCandidate: (hash: string) => boolean) {
    this.#isCandidate = isCandidate;
    this.#prefix = Buffer.from(`${storeDir}/`, "latin1");
    this.#span = this.#prefix.length + W + 1;
  }

  /** Mentions wholly inside `buf` that start before `limit`. */
  #scan(buf: Buffer, limit: number): void {
    for (let i = buf.indexOf(this.#prefix); i >= 0 && i < limit; i = buf.indexOf(this.#prefix, i + 1)) {
      const at = i + this.#prefix.length;
      if (at + W >= buf.length) break; // runs past this buffer: the next chunk's junction has it
      if (buf[at + W] !== 0x2d) continue;
      let hash = true;
      for (let k = at; k < at + W && hash; k++) hash = CODE[buf[k]!] !== 0;
      if (!hash) continue;
      const h = buf.toString("latin1", at, at + W);
      if (!this.#isCandidate(h)) this.found.add(h);
    }
  }

  write(chunk: Buffer): void {
    // Mentions across the boundary: those starting in the previous chunk's tail.
    if (this.#carry.length > 0) this.#scan(Buffer.concat([this.#carry, chunk.subarray(0, this.#span - 1)]), this.#carry.length);
    this.#scan(chunk, chunk.length);
    const keep = this.#span - 1;
    this.#carry = Buffer.from(chunk.length >= keep ? chunk.subarray(chunk.length - keep) : Buffer.concat([this.#carry, chunk]).subarray(-keep));
  }

  /** The current file ended: the next bytes are another's. */
  endStream(): void {
    this.#carry = Buffer.alloc(0);
  }
}

/** Lets the scan report links into the store that point at items the store does not have. */
export interface DanglingCheck {
  location: StoreLocation;
  byHash: Map<string, string>;
}

/**
 * A scan only finds hashes of items that exist, so a reference to a missing item would go unnoticed and the image
 * would be broken. Symlinks are where such references are explicit and cheap to check; a missing item named only
 * inside file contents is not detected.
 */
function checkLinkTarget(store: DanglingCheck, label: string, { rel, target }: Required<Pick<WalkEntry, "rel" | "target">>): void {
  const prefix = `${store.location.dir}/`;
  if (!target.startsWith(prefix)) return;
  const name = target.slice(prefix.length).split("/")[0]!;
  const item = `${prefix}${name}`;
  if (store.byHash.get(name.slice(0, 32)) === item) return;
  throw new StoreError(
    `${label} refers to ${item} (link ${rel || "."} -> ${target}), which is missing from the store ${hostPath(store.location, store.location.dir)}`,
  );
}

export interface ScanItemOptions {
  /** How messages name the item; default its host path. */
  label?: string;
  /** Report links into the store that point at items the store does not have. */
  store?: DanglingCheck;
}

/**
 * Scans one item on the host for the candidate hash parts: every file's bytes once, every entry name and symlink
 * target. Computes the item's NAR size from the same walk.
 */
export function scanItem(host: string, scanner: HashScanner, { label = host, store }: ScanItemOptions = {}): ScanResult {
  scanner.found.clear();
  const sizer = new NarSizer();
  // (Links into the store are checked against it directly, checkLinkTarget; file contents are where mentions hide.)
  const mentions = store ? new MentionScanner(store.location.dir, (h) => store.byHash.has(h)) : undefined;
  for (const e of walkTree(host, { label })) {
    sizer.entry(e);
    if (e.rel !== "") scanner.scanString(e.rel.slice(e.rel.lastIndexOf("/") + 1));
    if (e.type === "symlink") {
      scanner.scanString(e.target ?? "");
      if (store) checkLinkTarget(store, label, { rel: e.rel, target: e.target ?? "" });
    } else if (e.type === "file") {
      scanner.endStream();
      mentions?.endStream();
      readFileChunks(e.hostPath, e.rel === "" ? label : `${label}/${e.rel}`, (c) => {
        scanner.write(c);
        mentions?.write(c);
      });
    }
  }
  scanner.endStream();
  return { hashes: new Set(scanner.found), narSize: sizer.size, mentions: mentions?.found ?? new Set() };
}

/**
 * The closure of `roots` by scanning: breadth first from the roots, each item's references being the store items
 * (of the host store dir) whose hash parts it contains. Referenced items that do not exist cannot be found this
 * way, so every item returned exists.
 */
/** What a scan memo keeps of an item: its NAR size, references and mentions of missing items (ScanResult). */
export interface ScanMemoRecord {
  narSize: number;
  references: string[];
  /** Hash parts; absent in records from before they were kept, which are then scanned again. */
  mentions?: string[];
}

/**
 * Remembers scan results between builds. Store items are immutable, so an item scanned once need not be read
 * again; the memo itself decides whether the item on disk is still the one it scanned.
 */
export interface ScanMemo {
  get(hostPath: string): ScanMemoRecord | undefined;
  put(hostPath: string, record: ScanMemoRecord): void;
  /** Called once the closure is scanned: a memo may keep what was put until then. */
  save?(): void;
}

export interface ScanClosureOptions {
  memo?: ScanMemo | undefined;
  /** Told of the store paths the closure's files name that the store lacks (which a scan cannot follow). */
  onWarning?: ((message: string) => void) | undefined;
}

export function scanClosure(store: StoreLocation, roots: string[], { memo, onWarning }: ScanClosureOptions = {}): StoreItem[] {
  const byHash = listStoreItems(store);
  for (const r of roots) {
    if (byHash.get(hashPart(r)) !== r) throw new StoreError(`${r} is missing from the store ${hostPath(store, store.dir)}`);
  }
  const scanner = new HashScanner(byHash.keys());
  const items = new Map<string, StoreItem>();
  const missing = new Map<string, string[]>();
  const queue = [...new Set(roots)];
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i]!;
    if (items.has(p)) continue;
    const host = hostPath(store, p);
    const known = memo?.get(host);
    // A remembered reference must still exist (else a fresh scan reports it), and an item the scan found mentioned
    // but missing must still be missing (else it is a reference the record lacks).
    const usable = known?.mentions && known.references.every((r) => byHash.get(hashPart(r)) === r) && !known.mentions.some((h) => byHash.has(h));
    let narSize: number;
    let references: string[];
    if (usable) {
      ({ narSize, references } = known);
    } else {
      const scanned = scanItem(host, scanner, { label: p, store: { location: store, byHash } });
      narSize = scanned.narSize;
      references = [...scanned.hashes].map((h) => byHash.get(h)!).sort(byBytes);
      memo?.put(host, { narSize, references, mentions: [...scanned.mentions].sort() });
      if (scanned.mentions.size > 0) missing.set(p, [...scanned.mentions].sort());
    }
    if (usable && known.mentions!.length > 0) missing.set(p, known.mentions!);
    items.set(p, { path: p, narSize, references });
    for (const r of references) if (!items.has(r)) queue.push(r);
  }
  memo?.save?.();
  if (missing.size > 0) onWarning?.(missingWarning(store, missing));
  return [...items.values()].sort((a, b) => byBytes(a.path, b.path));
}

/** The warning for items whose files name store paths the store lacks: what a scan cannot see. */
function missingWarning(store: StoreLocation, missing: Map<string, string[]>): string {
  const named = [...missing].sort(([a], [b]) => byBytes(a, b));
  const shown = named.slice(0, 3).map(([item, hashes]) => `${item} names ${hashes.slice(0, 2).map((h) => `${store.dir}/${h}-…`).join(", ")}${hashes.length > 2 ? ` and ${hashes.length - 2} more` : ""}`);
  const more = named.length > 3 ? `; and ${named.length - 3} more items` : "";
  return `closure: ${shown.join("; ")}${more}, which the store ${hostPath(store, store.dir)} does not have: a scan finds only items that are there, so if they are references the image lacks them (copy them into the store, or use the store's database: closure.from database)`;
}
