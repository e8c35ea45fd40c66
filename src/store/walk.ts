/**
 * Depth-first walk of a store item (or any directory tree) in the one order every consumer shares: entries of a
 * directory sorted bytewise by name, a directory before its children. That is NAR order and GNU tar's
 * `--sort=name` order, so the NAR hash, the reference scan and the layer tar all see the same sequence.
 *
 * Metadata is read synchronously: tens of thousands of lstat calls are far cheaper without a thread-pool round
 * trip each, and the walk never reads file contents (consumers stream those themselves).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StoreError } from "../errors.ts";
import { byBytes } from "../util/bytes.ts";

export type EntryType = "file" | "directory" | "symlink";

export interface WalkEntry {
  /** Path relative to the walked root, `/`-separated; "" for the root itself. */
  rel: string;
  /** Host path to read the entry from. */
  hostPath: string;
  type: EntryType;
  /** Permission bits (including setuid/setgid/sticky). */
  mode: number;
  /** Byte length of a regular file; 0 otherwise. */
  size: number;
  /** Symlink target, verbatim. */
  target?: string;
}

export interface WalkOptions {
  /** What to call the tree in errors, e.g. the logical store path. */
  label?: string;
}


/** Sorts names bytewise (UTF-8), the order of NAR and GNU tar --sort=name. */
export function sortNames(names: string[]): string[] {
  return names.sort(byBytes);
}

function describe(label: string, rel: string): string {
  return rel === "" ? label : `${label}/${rel}`;
}

function statEntry(hostPath: string, rel: string, label: string): WalkEntry {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(hostPath);
  } catch (cause) {
    throw new StoreError(`reading ${describe(label, rel)}: ${(cause as Error).message}`, { cause });
  }
  const mode = st.mode & 0o7777;
  if (st.isFile()) return { rel, hostPath, type: "file", mode, size: st.size };
  if (st.isDirectory()) return { rel, hostPath, type: "directory", mode, size: 0 };
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = fs.readlinkSync(hostPath);
    } catch (cause) {
      throw new StoreError(`reading link ${describe(label, rel)}: ${(cause as Error).message}`, { cause });
    }
    return { rel, hostPath, type: "symlink", mode, size: 0, target };
  }
  const kind = st.isSocket() ? "a socket" : st.isFIFO() ? "a fifo" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "a special file";
  throw new StoreError(`${describe(label, rel)} is ${kind}; store items can hold only regular files, directories and symlinks`);
}

/** Walks `root` depth first in sorted order, yielding the root first. */
export function* walkTree(root: string, options: WalkOptions = {}): Generator<WalkEntry> {
  const label = options.label ?? root;
  const first = statEntry(root, "", label);
  yield first;
  if (first.type !== "directory") return;
  yield* walkChildren(first, readNames(first, label), label);
}

function readNames(dir: WalkEntry, label: string): string[] {
  try {
    return sortNames(fs.readdirSync(dir.hostPath));
  } catch (cause) {
    throw new StoreError(`reading directory ${describe(label, dir.rel)}: ${(cause as Error).message}`, { cause });
  }
}

function* walkChildren(dir: WalkEntry, names: string[], label: string): Generator<WalkEntry> {
  for (const name of names) {
    const rel = dir.rel === "" ? name : `${dir.rel}/${name}`;
    const entry = statEntry(path.join(dir.hostPath, name), rel, label);
    yield entry;
    if (entry.type === "directory") yield* walkChildren(entry, readNames(entry, label), label);
  }
}

/** Opens a file of a walked tree for reading; failures name it (`label`) as a StoreError. */
export function openForRead(hostPath: string, label: string): number {
  try {
    return fs.openSync(hostPath, "r");
  } catch (cause) {
    throw new StoreError(`reading ${label}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads the next bytes of an open file into `buf`; failures name it (`label`) as a StoreError. */
export function readInto(fd: number, buf: Buffer, length: number, label: string): number {
  try {
    return fs.readSync(fd, buf, 0, length, null);
  } catch (cause) {
    throw new StoreError(`reading ${label}: ${(cause as Error).message}`, { cause });
  }
}
