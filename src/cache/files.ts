/**
 * Reading and placing the cache's own files. The cache is a directory anyone with write access to it can change (a
 * CI cache restored from another job): what is in a file's place may be a link, a FIFO, a device or a directory,
 * and none of them may be followed, block a build, or crash one.
 */
import * as fs from "node:fs";
import { readRegular } from "../oci/blob-file.ts";
import { BuildError } from "../errors.ts";

/** The most bytes of one cache file read whole (a scan file of a large store is tens of MiB). */
const MAX_CACHE_FILE = 512 << 20;

/**
 * A cache file's bytes: undefined when it is missing or unreadable, null when something other than a regular file
 * is in its place (a link, FIFO, device or directory: never followed, never opened blocking; the caller drops it).
 */
export function readCacheFile(file: string): Buffer | undefined | null {
  try {
    return readRegular(file, "cache file", { max: MAX_CACHE_FILE });
  } catch {
    return fs.lstatSync(file, { throwIfNoEntry: false })?.isFile() === false ? null : undefined;
  }
}

/** lstat (a link is itself, never its target), or undefined when nothing readable is there. */
export function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

/** Removes what is at `file` (recursive: a directory inside the cache; rm never follows the links in it). */
export function removeIfWritable(file: string): void {
  try {
    fs.rmSync(file, { force: true, recursive: true });
  } catch {
    // read-only cache: a miss all the same
  }
}

/** Renames a finished temp file into place; a directory someone put there is removed first (rename cannot replace it). */
export function placeFile(temp: string, target: string): void {
  try {
    try {
      fs.renameSync(temp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EISDIR" && (err as NodeJS.ErrnoException).code !== "ENOTEMPTY") throw err;
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(temp, target);
    }
  } catch (cause) {
    throw vanished(temp, cause);
  }
}

/**
 * A temp file gone before its rename: something swept the cache's tmp/ while this build was writing it. Said so,
 * rather than a bare ENOENT; any other failure is passed on as it is.
 */
export function vanished(temp: string, cause: unknown): unknown {
  if ((cause as NodeJS.ErrnoException).code !== "ENOENT" || fs.existsSync(temp)) return cause;
  return new BuildError(
    `the cache's temp file ${temp} was removed while this build was using it (by \`layerpack cache prune\`, which takes temp files untouched for an hour, or by something else cleaning the cache directory); build again`,
    { cause },
  );
}
