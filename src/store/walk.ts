/**
 * Depth-first walk of a store item (or any directory tree) in the one order every consumer shares: entries of a
 * directory sorted bytewise by name, a directory before its children. That is NAR order and GNU tar's
 * `--sort=name` order, so the NAR hash, the reference scan and the layer tar all see the same sequence.
 *
 * Metadata is read synchronously: tens of thousands of lstat calls are far cheaper without a thread-pool round
 * trip each, and the walk never reads file contents (consumers stream those themselves).
 */
import * as fs from "node:fs";
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
  /**
   * Yield regular files below the root unstated (size -1, mode 0) for a consumer that opens them anyway and takes
   * size and mode from the open file (openEntry): one path lookup per file instead of two.
   */
  lazyFiles?: boolean;
}


/** Sorts names bytewise (UTF-8), the order of NAR and GNU tar --sort=name. */
export function sortNames(names: string[]): string[] {
  return names.sort(byBytes);
}

function describe(label: string, rel: string): string {
  return rel === "" ? label : `${label}/${rel}`;
}

/**
 * The error for an entry that cannot be read. Names are read as UTF-8, so a name that is not (NAR allows any bytes)
 * comes back with U+FFFD in it and is then not found: say that rather than "no such file".
 */
function entryError(label: string, rel: string, cause: unknown): StoreError {
  if ((cause as NodeJS.ErrnoException).code === "ENOENT" && rel.includes("\uFFFD")) {
    return new StoreError(`${describe(label, rel)}: the file name is not valid UTF-8 (shown with U+FFFD); layerpack cannot archive such names yet`, { cause });
  }
  return new StoreError(`reading ${describe(label, rel)}: ${(cause as Error).message}`, { cause });
}

function statEntry(hostPath: string, rel: string, label: string): WalkEntry {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(hostPath);
  } catch (cause) {
    throw entryError(label, rel, cause);
  }
  const mode = st.mode & 0o7777;
  if (st.isFile()) return { rel, hostPath, type: "file", mode, size: st.size };
  if (st.isDirectory()) return { rel, hostPath, type: "directory", mode, size: 0 };
  if (st.isSymbolicLink()) return { rel, hostPath, type: "symlink", mode, size: 0, target: readTarget(hostPath, rel, label) };
  const kind = st.isSocket() ? "a socket" : st.isFIFO() ? "a fifo" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "a special file";
  throw new StoreError(`${describe(label, rel)} is ${kind}; store items can hold only regular files, directories and symlinks`);
}

/** Walks `root` depth first in sorted order, yielding the root first. */
export function* walkTree(root: string, options: WalkOptions = {}): Generator<WalkEntry> {
  const label = options.label ?? root;
  const first = statEntry(root, "", label);
  yield first;
  if (first.type !== "directory") return;
  yield* walkChildren(first, label, options.lazyFiles === true);
}

function readEntries(dir: WalkEntry, label: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir.hostPath, { withFileTypes: true }).sort((a, b) => byBytes(a.name, b.name));
  } catch (cause) {
    throw new StoreError(`reading directory ${describe(label, dir.rel)}: ${(cause as Error).message}`, { cause });
  }
}

// The directory entry's type (node:fs lstats the entries a file system does not type) spares a symlink its lstat:
// its mode is always 0777 and nothing else is needed but the target. Directories still need theirs for the mode.
function* walkChildren(dir: WalkEntry, label: string, lazyFiles: boolean): Generator<WalkEntry> {
  const prefix = dir.hostPath.endsWith("/") ? dir.hostPath : `${dir.hostPath}/`;
  for (const d of readEntries(dir, label)) {
    const rel = dir.rel === "" ? d.name : `${dir.rel}/${d.name}`;
    const hostPath = prefix + d.name;
    let entry: WalkEntry;
    if (d.isSymbolicLink()) entry = { rel, hostPath, type: "symlink", mode: 0o777, size: 0, target: readTarget(hostPath, rel, label) };
    else if (lazyFiles && d.isFile()) entry = { rel, hostPath, type: "file", mode: 0, size: -1 };
    else entry = statEntry(hostPath, rel, label);
    yield entry;
    if (entry.type === "directory") yield* walkChildren(entry, label, lazyFiles);
  }
}

function readTarget(hostPath: string, rel: string, label: string): string {
  try {
    return fs.readlinkSync(hostPath);
  } catch (cause) {
    throw new StoreError(`reading link ${describe(label, rel)}: ${(cause as Error).message}`, { cause });
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

const OPEN_ENTRY = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * Opens a regular file a lazy walk yielded and completes its entry from the open file. Without following a
 * symlink and without blocking: an entry that became a symlink, a FIFO or a device since the directory was read
 * fails with a StoreError instead of being read (or hanging). The caller closes `fd`.
 */
export function openEntry(entry: WalkEntry, label: string): { fd: number; entry: WalkEntry } {
  const changed = () => new StoreError(`${describe(label, entry.rel)} is no longer a regular file (it changed while the store was read); build again`);
  let fd: number;
  try {
    fd = fs.openSync(entry.hostPath, OPEN_ENTRY);
  } catch (cause) {
    // O_NOFOLLOW refuses a symlink with ELOOP, which would read as a link loop.
    if ((cause as NodeJS.ErrnoException).code === "ELOOP") throw changed();
    throw entryError(label, entry.rel, cause);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw changed();
    return { fd, entry: { ...entry, mode: st.mode & 0o7777, size: st.size } };
  } catch (err) {
    fs.closeSync(fd);
    throw err instanceof StoreError ? err : new StoreError(`reading ${describe(label, entry.rel)}: ${(err as Error).message}`, { cause: err });
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
