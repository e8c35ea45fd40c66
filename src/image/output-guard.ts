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
import { fileKind } from "../util/format.ts";
import { rootSystemOptions } from "../store/root-system.ts";
import { hostPath } from "../store/path.ts";
import { parseImageName, type ImageName } from "../oci/name.ts";
import { DEFAULT_PLAN_FILE, defaultPlanPath } from "../plan/plan-file.ts";
import type { BuildInput } from "./build.ts";

export interface OutputGuard {
  /** Absolute output path. */
  output: string;
  /** The output is a directory (OCI layout) rather than a file. */
  directory: boolean;
  /** Inputs and places the output must keep clear of, each with the role shown in the error. */
  protected: { path: string; role: string; tree?: boolean; entry?: boolean }[];
  /** How the errors name the output (default `output.path PATH`) and what is written (default "the image"). */
  label?: string;
  what?: string;
  /** Said when the path is a pipe, socket or character device: how to write there instead. */
  streamHint?: string;
  /** What to do when something other than a file is there (default: give a file path). */
  remedy?: string;
}

/** What an output must keep clear of: the config and what it reads, the profile links, `paths[].source`, the root
 * system, the store, a local base image, the cache, the committed plan file. `plan --write` may replace plan files:
 * it passes `planFiles: false` and its inputs without the previous plan. */
export function protectedPaths(input: Pick<BuildInput, "spec" | "closure" | "configDir" | "inputs" | "cache">, opts: { planFiles?: boolean } = {}): OutputGuard["protected"] {
  const { spec, closure, configDir } = input;
  const out: OutputGuard["protected"] = (input.inputs ?? []).map((f, i) => ({ path: f, role: i === 0 ? "the config" : "a file the config reads (an import or the previous plan)" }));
  if (opts.planFiles !== false) out.push({ path: defaultPlanPath(configDir), role: `the committed plan file (${DEFAULT_PLAN_FILE}, which check reads)` });
  // The link itself, not what it points to: replacing `result` by the image would lose the profile (its target is
  // the store, protected below, but under store.root the target dangles on the host and nothing else would catch it).
  const profiles = [spec.profile, ...(spec.platforms ?? []).map((p) => p.profile)].filter((p) => p !== undefined);
  for (const p of new Set(profiles)) out.push({ path: path.resolve(configDir, p), role: "the profile link", entry: true });
  spec.paths.forEach((e, i) => {
    if (e.type === "file" && e.source !== undefined) out.push({ path: path.resolve(configDir, e.source), role: `paths[${i}].source` });
  });
  const rs = rootSystemOptions(spec);
  if (rs) out.push({ path: path.resolve(configDir, rs.dir), role: "the rootSystem directory", tree: true });
  out.push({ path: hostPath(closure.store, closure.store.dir), role: "the store", tree: true });
  // A base replaced by the image built on it would be stacked on itself by the next build. A layout keeps the
  // images it holds under other names, so a base there under another ref than the output's tags is safe.
  const base = spec.base === undefined ? undefined : localImage(spec.base, configDir);
  const beside = base?.transport === "oci" && base.ref !== undefined && spec.output.format === "oci-layout" && !outputRefs(spec).includes(base.ref);
  if (base !== undefined && !beside) out.push({ path: base.path, role: "the base image", tree: true });
  if (input.cache) out.push({ path: input.cache.dir, role: "the layer cache", tree: true });
  return out;
}

/** The image the config builds, for commands that write something else (a plan file, a report): never replaced. */
export function builtImageGuard(spec: Pick<BuildInput["spec"], "output">): OutputGuard["protected"] {
  const built = spec.output.path;
  return spec.output.format !== "registry" && built !== undefined && built !== "-" ? [{ path: built, role: "the image the config builds", tree: true }] : [];
}

/** An image name that reads a file or layout directory (not a registry), parsed. */
function localImage(name: string, cwd: string): Exclude<ImageName, { transport: "registry" }> | undefined {
  let parsed: ImageName;
  try {
    parsed = parseImageName(name, { cwd });
  } catch {
    return undefined; // not an image name: whoever reads it says so
  }
  return parsed.transport === "registry" ? undefined : parsed;
}

/** The file or layout directory an image name reads, when it is local (not a registry). */
export const localImagePath = (name: string, cwd: string): string | undefined => localImage(name, cwd)?.path;

/** The ref names a layout output gives the image (`name:tag` per tag it is known to get). */
const outputRefs = (spec: Pick<BuildInput["spec"], "name" | "tag" | "tags">): string[] => [spec.tag, ...(spec.tags ?? [])].filter((t) => t !== undefined).map((t) => `${spec.name}:${t}`);

/** The directory entry a path names: its parent's symlinks resolved, not its own (a link is that entry). */
const entryPath = (p: string) => path.join(realish(path.dirname(path.resolve(p))), path.basename(p));

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

export function checkOutputPath(guard: OutputGuard): void {
  const shown = guard.label ?? `output.path ${guard.output}`;
  const what = guard.what ?? "the image";
  const abs = path.resolve(guard.output);
  const out = realish(abs);
  // The kernel's stat of the path as given: /dev/stdout's link into /proc resolves to no path (pipe:[N]), yet it
  // is a pipe, and taking it for a new file would rename the output over the link.
  const st = fs.statSync(abs, { throwIfNoEntry: false });
  if (st) {
    if (guard.directory && !st.isDirectory()) throw new BuildError(`${shown} is ${st.isFile() ? "a file" : fileKind(st)}; an OCI layout is written as a directory`);
    if (!guard.directory && !st.isFile()) {
      const hint = guard.streamHint !== undefined && (st.isFIFO() || st.isCharacterDevice() || st.isSocket()) ? ` (${guard.streamHint})` : "";
      throw new BuildError(`${shown} is ${fileKind(st)}; ${what} is written as a new file that replaces what is there — ${guard.remedy ?? "give a file path"}${hint}`);
    }
    if (guard.directory && fs.readdirSync(out).length > 0 && !fs.existsSync(path.join(out, "oci-layout"))) {
      throw new BuildError(`${shown} is a directory that holds no OCI layout (no oci-layout file); refusing to write into it — give a new or empty directory`);
    }
  }
  for (const p of guard.protected) {
    const target = realish(p.path);
    const same = target === out || (st !== undefined && sameFile(st, target)) || (p.entry === true && entryPath(p.path) === entryPath(abs));
    const clash = same ? "is" : p.tree && inside(out, target) ? "is inside" : guard.directory && inside(target, out) ? "holds" : undefined;
    if (clash) throw new BuildError(`${shown} ${clash} ${p.role} (${p.path}); writing ${what} there would destroy it — choose another path`);
  }
  // Last, as the messages above say more. Outputs are renamed into place, and a rename replaces a link, not what
  // it points to (-o /dev/stdout, with stdout a file, replaced the system's link). An existing layout directory is
  // written into, so a link to one is fine.
  if (fs.lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink() && !(guard.directory && st?.isDirectory())) {
    const to = fs.readlinkSync(abs);
    const hint = guard.streamHint !== undefined && to.startsWith("/proc/") ? `; ${guard.streamHint}` : "";
    throw new BuildError(`${shown} is a symlink (to ${to}); writing ${what} would replace the link, not what it points to — give the path itself${hint}`);
  }
}

function sameFile(st: fs.Stats, other: string): boolean {
  const o = fs.statSync(other, { throwIfNoEntry: false });
  return o !== undefined && o.dev === st.dev && o.ino === st.ino;
}
