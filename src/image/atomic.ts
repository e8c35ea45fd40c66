/** Outputs appear whole or not at all: write beside the target under a temp name, rename at the end. */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";
import { collectStale, isStale, tempName } from "../util/temp.ts";

/** Fails early, before any work, when the output's directory does not exist. */
export function checkOutputDir(outPath: string): void {
  const dir = path.dirname(path.resolve(outPath));
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new BuildError(`output directory ${dir} does not exist (output.path ${outPath}); create it first`);
  }
  if (!st.isDirectory()) throw new BuildError(`output directory ${dir} is not a directory (output.path ${outPath})`);
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
    throw err;
  }
}
