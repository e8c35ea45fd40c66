/** Outputs appear whole or not at all: write beside the target under a temp name, rename at the end. */
import * as fs from "node:fs";
import * as path from "node:path";
import { aboutConfigKey, BuildError, LayerpackError } from "../errors.ts";
import { collectStale, isStale, tempName } from "../util/temp.ts";

/**
 * Fails early, before any work, unless the output's directory exists and is writable. `label` names where the path came from (`-o FILE`); without one it
 * is the config's output.path, and the error is about that key (located at its line:column).
 */
export function checkOutputDir(outPath: string, label?: string): void {
  const dir = path.dirname(path.resolve(outPath));
  const fail = (why: string, cause?: unknown) => {
    const err = new BuildError(`${label ?? "output.path"}: the directory ${dir} ${why}`, cause === undefined ? undefined : { cause });
    return label === undefined ? aboutConfigKey(err, ["output", "path"]) : err;
  };
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw fail("does not exist; create it first");
  }
  if (!st.isDirectory()) throw fail("is not a directory");
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw fail(code === "EROFS" ? "is on a read-only file system" : code === "EACCES" ? "is not writable by this user" : `cannot be written: ${(cause as Error).message}`, cause);
  }
}

export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), tempName(`.${path.basename(target)}.tmp`));
}

/** Removes what killed builds of `target` left beside it: its temp files and no-cache directories. */
export function collectStaleBeside(target: string): void {
  const own = `.${path.basename(target)}.tmp-`;
  collectStale(path.dirname(target), (name) => (name.startsWith(own) || name.startsWith(".layerpack-nocache-")) && isStale(name));
}

/** Runs `write(temp)` and renames temp to target; removes temp on any failure. */
export async function writeAtomically<T>(target: string, write: (temp: string) => Promise<T>): Promise<T> {
  const temp = tempPathFor(target);
  try {
    const result = await write(temp);
    fs.renameSync(temp, target);
    return result;
  } catch (err) {
    fs.rmSync(temp, { force: true, recursive: true });
    // A file system error here (full, read-only, gone) is the user's to fix, not a bug.
    if (!(err instanceof Error) || err instanceof LayerpackError || typeof (err as NodeJS.ErrnoException).code !== "string" || err.name === "AbortError") throw err;
    throw new BuildError(`writing ${target}: ${err.message}`, { cause: err });
  }
}
