/**
 * An output never destroys an input or a device. Checked before any work: the output path must be a regular file
 * (archives) or a directory holding an OCI layout (layouts), or not exist; and it must not be, hold or lie inside
 * anything the build reads or keeps — the config and the files it imports, a `paths[].source`, the root system, the
 * store, the layer cache. Paths are compared after resolving symlinks, and existing files also by device and inode,
 * so a symlinked directory or a hard link does not hide a clash.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";

export interface OutputGuard {
  /** Absolute output path. */
  output: string;
  /** The output is a directory (OCI layout) rather than a file. */
  directory: boolean;
  /** Inputs and places the output must keep clear of, each with the role shown in the error. */
  protected: { path: string; role: string; tree?: boolean }[];
}

/** The path with every existing ancestor's symlinks resolved (the path itself may not exist yet). */
function realish(p: string): string {
  const abs = path.resolve(p);
  const tail: string[] = [];
  for (let dir = abs; ; dir = path.dirname(dir)) {
    try {
      return path.join(fs.realpathSync(dir), ...tail.reverse());
    } catch {
      if (path.dirname(dir) === dir) return abs;
      tail.push(path.basename(dir));
    }
  }
}

const inside = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

export function checkOutputPath(guard: OutputGuard): void {
  const shown = guard.output;
  const out = realish(guard.output);
  const st = fs.statSync(out, { throwIfNoEntry: false });
  if (st) {
    if (guard.directory && !st.isDirectory()) throw new BuildError(`output.path ${shown} is ${st.isFile() ? "a file" : kindOf(st)}; an OCI layout is written as a directory`);
    if (!guard.directory && !st.isFile()) throw new BuildError(`output.path ${shown} is ${kindOf(st)}; the image is written as a file there, replacing it — give a file path`);
    if (guard.directory && fs.readdirSync(out).length > 0 && !fs.existsSync(path.join(out, "oci-layout"))) {
      throw new BuildError(`output.path ${shown} is a directory that holds no OCI layout (no oci-layout file); refusing to write into it — give a new or empty directory`);
    }
  }
  for (const p of guard.protected) {
    const target = realish(p.path);
    const same = target === out || (st !== undefined && sameFile(st, target));
    const clash = same ? "is" : p.tree && inside(out, target) ? "is inside" : guard.directory && inside(target, out) ? "holds" : undefined;
    if (clash) throw new BuildError(`output.path ${shown} ${clash} ${p.role} (${p.path}); writing the image there would destroy it — choose another output path`);
  }
}

function sameFile(st: fs.Stats, other: string): boolean {
  const o = fs.statSync(other, { throwIfNoEntry: false });
  return o !== undefined && o.dev === st.dev && o.ino === st.ino;
}
