/**
 * The customisation layer's contents, computed from the spec: `symlinks` (as `guix pack -S`), `paths` entries,
 * and every parent directory they need. Pure: the executor creates what this returns and checks what exists.
 */
import { aboutConfigKey, PlanError } from "../errors.ts";
import { formatKeyPath } from "../config/format.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import type { CustomEntry } from "./types.ts";
import { accountFiles } from "./accounts.ts";
import { databaseEntries, databaseLayout } from "./database-layout.ts";
import { byBytes } from "../util/bytes.ts";

/** Mode of the parent directories nobody declared (what `mkdir -p` gives under umask 022, as Guix does). */
export const IMPLICIT_DIR_MODE = "755";

type Key = readonly (string | number)[];

interface Defined {
  entry: CustomEntry;
  /** Where the spec defines it, for the messages about others, e.g. `symlinks[0] "/bin=bin"`. */
  origin: string;
  /** The config key it comes from (`["paths", 2]`; an implicit parent's: its child's); none for the default /tmp. */
  key: Key | undefined;
  /** False for implicit parent directories. */
  explicit: boolean;
}

/**
 * A PlanError about a config key, led by its path (`paths[1]: ...`) and marked with it (aboutConfigKey): the
 * pipeline then shows it at the key's file:line:column, the path said once.
 */
function keyError(key: Key, text: string): PlanError {
  return aboutConfigKey(new PlanError(`${formatKeyPath(key)}: ${text}`), key);
}

/** The error about an entry: at its key, else named by its origin. */
function entryError(def: Defined, text: string): PlanError {
  return def.key ? keyError(def.key, text) : new PlanError(`${def.origin}: ${text}`);
}

/** Compares absolute paths component by component, bytewise: tar --sort=name order, parents first. */
export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = byBytes(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

/** The components of an absolute image path, without empty and `.` parts; refuses `..` and the root. */
function components(p: string, key: Key): string[] {
  if (!p.startsWith("/")) throw keyError(key, `"${p}" must be an absolute path (start with /)`);
  const parts = p.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw keyError(key, `"${p}" must not contain '..'`);
  if (parts.length === 0) throw keyError(key, `cannot replace the image root "/"; name a path below it`);
  return parts;
}

function normaliseMode(mode: string, key: Key): string {
  if (!/^[0-7]{3,4}$/.test(mode)) throw keyError(key, `mode "${mode}" must be octal, such as "755" or "1777"`);
  return parseInt(mode, 8).toString(8).padStart(3, "0");
}

/** A `symlinks` target: absolute is used as written, relative is joined to the profile's store path. */
function linkTarget(target: string, profile: string | undefined, key: Key): string {
  const parts = target.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw keyError(key, `target "${target}" must not contain '..'`);
  if (target.startsWith("/")) return target;
  if (profile === undefined) {
    throw keyError(key, `target "${target}" is relative to the profile, but the spec has no profile (it packs roots); write an absolute target`);
  }
  return parts.length === 0 ? profile : `${profile}/${parts.join("/")}`;
}

function describeEntry(e: CustomEntry): string {
  return e.type === "symlink" ? `a symlink to ${e.target}` : `a ${e.type}`;
}

/** The explicit entries, in spec order: `symlinks` first, then `paths`. */
function explicitEntries(spec: ImageSpec, profile: string | undefined): { parts: string[]; def: Defined }[] {
  const out: { parts: string[]; def: Defined }[] = [];
  spec.symlinks.forEach((s, i) => {
    const key = ["symlinks", i];
    const eq = s.indexOf("=");
    if (eq < 0) throw keyError(key, `"${s}" must look like "/bin=bin" (link=target)`);
    const parts = components(s.slice(0, eq), key);
    const target = linkTarget(s.slice(eq + 1), profile, key);
    out.push({ parts, def: { entry: { path: "/" + parts.join("/"), type: "symlink", target }, origin: `symlinks[${i}] "${s}"`, key, explicit: true } });
  });
  spec.paths.forEach((p, i) => {
    const key = ["paths", i];
    const parts = components(p.path, key);
    const path = "/" + parts.join("/");
    let entry: CustomEntry;
    if (p.type === "directory") entry = { path, type: "directory", mode: normaliseMode(p.mode, key) };
    else if (p.type === "symlink") entry = { path, type: "symlink", target: p.target };
    else {
      entry = { path, type: "file", mode: normaliseMode(p.mode, key) };
      if (p.content !== undefined) entry.content = p.content;
      if (p.source !== undefined) entry.source = p.source;
    }
    out.push({ parts, def: { entry, origin: `paths[${i}] (${p.path})`, key, explicit: true } });
  });
  return out;
}

/** Entries made from `accounts` and `database`, after the spec's own. */
function generatedEntries(spec: ImageSpec, closure: Closure): { parts: string[]; def: Defined }[] {
  const out: { parts: string[]; def: Defined }[] = [];
  const files = accountFiles(spec, closure);
  if (files) {
    for (const [name, content] of [["passwd", files.passwd], ["group", files.group]] as const) {
      const entry: CustomEntry = { path: `/etc/${name}`, type: "file", mode: "644", content };
      out.push({ parts: ["etc", name], def: { entry, origin: `accounts (/etc/${name})`, key: ["accounts"], explicit: true } });
    }
  }
  const layout = databaseLayout(spec, closure.store.dir);
  if (layout) {
    for (const entry of databaseEntries(layout, closure)) {
      out.push({ parts: components(entry.path, ["database"]), def: { entry, origin: `database (${entry.path})`, key: ["database"], explicit: true } });
    }
  }
  return out;
}

/** Files of the root system that accounts rewrites (merged), so defining them again is intended. */
const MERGED = new Set(["/etc/passwd", "/etc/group"]);

/**
 * Checks the customisation entries against the root system beneath them: a path both define is an error naming
 * both, unless both are directories (then the entry is the same directory; an implicit one takes the root
 * system's mode) or it is a file accounts merges. Root-system entries inside the store directory are refused.
 */
function checkRootSystem(byPath: Map<string, Defined>, closure: Closure, accounts: boolean): void {
  const rs = closure.rootSystem;
  if (!rs) return;
  const store = closure.store.dir;
  const under = new Map(rs.entries.map((e) => [e.path, e]));
  for (const e of rs.entries) {
    if (e.path === store || store.startsWith(`${e.path}/`)) {
      if (e.type !== "directory") throw keyError(["rootSystem"], `${rs.source}: ${e.path} is a ${e.type}, but the store needs it to be a directory (${store})`);
    } else if (e.path.startsWith(`${store}/`)) {
      throw keyError(["rootSystem"], `${rs.source}: ${e.path} is inside the store directory ${store}; the store layers own it`);
    }
  }
  for (const [p, def] of byPath) {
    const low = under.get(p);
    if (!low) continue;
    if (low.type === "directory" && def.entry.type === "directory") {
      if (!def.explicit) byPath.set(p, { ...def, entry: { ...def.entry, mode: low.mode.toString(8).padStart(3, "0") } });
      continue;
    }
    if (accounts && MERGED.has(p) && low.type === "file") continue;
    const what = low.type === "symlink" ? `a symlink to ${low.target}` : `a ${low.type}`;
    // An implicit parent is a directory the entry below it needs.
    if (!def.explicit) throw entryError(def, `needs ${p} to be a directory, but the root system ${rs.source} has ${what}`);
    throw entryError(def, `${p} is already in the root system ${rs.source} (${what}); keep one of them`);
  }
}

/** Refuses entries that would replace the store directory, one of its parents, or something inside it. */
function checkStoreOverlap(parts: string[], def: Defined, storeDir: string): void {
  const store = storeDir.split("/").filter((c) => c !== "");
  const n = Math.min(parts.length, store.length);
  for (let i = 0; i < n; i++) if (parts[i] !== store[i]) return;
  const what = parts.length <= store.length ? "the store directory or one of its parents" : "a path inside the store";
  throw entryError(def, `"/${parts.join("/")}" would replace ${what} (${storeDir}); the store layers own it`);
}

/** The /tmp every image gets (programs expect a writable /tmp; Nix images lack one and users add it by hand). */
const DEFAULT_TMP: CustomEntry = { path: "/tmp", type: "directory", mode: "1777" };

/**
 * Adds /tmp (1777) unless something else has it: `symlinks` or `paths` (theirs wins: another mode, a link),
 * the root system (its /tmp is what was provisioned), or the store (a store under /tmp cannot be replaced).
 */
function addDefaultTmp(byPath: Map<string, Defined>, closure: Closure): void {
  const p = DEFAULT_TMP.path;
  if (byPath.has(p)) return;
  if (closure.store.dir === p || closure.store.dir.startsWith(`${p}/`)) return;
  if (closure.rootSystem?.entries.some((e) => e.path === p)) return;
  byPath.set(p, { entry: DEFAULT_TMP, origin: "the default /tmp", key: undefined, explicit: true });
}

/**
 * The customisation entries: explicit ones plus their implicit parent directories (mode 755), sorted component
 * by component, bytewise, so parents come first. Two definitions of one path, or a path that must be both a
 * parent directory and a file or symlink, are PlanErrors naming both.
 */
export function customEntries(spec: ImageSpec, closure: Closure): CustomEntry[] {
  const byPath = new Map<string, Defined>();
  const explicit = [...explicitEntries(spec, closure.profile), ...generatedEntries(spec, closure)];
  for (const { parts, def } of explicit) {
    checkStoreOverlap(parts, def, closure.store.dir);
    const seen = byPath.get(def.entry.path);
    if (seen) throw entryError(def, `${def.entry.path} is already defined by ${seen.origin}; keep one of them`);
    byPath.set(def.entry.path, def);
  }
  addDefaultTmp(byPath, closure);
  for (const { parts, def } of explicit) {
    for (let i = 1; i < parts.length; i++) {
      const parent = "/" + parts.slice(0, i).join("/");
      const seen = byPath.get(parent);
      if (!seen) {
        const entry: CustomEntry = { path: parent, type: "directory", mode: IMPLICIT_DIR_MODE };
        byPath.set(parent, { entry, origin: `parent of ${def.origin}`, key: def.key, explicit: false });
      } else if (seen.entry.type !== "directory") {
        throw entryError(def, `${def.entry.path} needs ${parent} to be a directory, but ${seen.origin} makes it ${describeEntry(seen.entry)}`);
      }
    }
  }
  checkRootSystem(byPath, closure, spec.accounts !== undefined);
  return [...byPath.values()].map((d) => d.entry).sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * The entrypoint's absolute path in the image, or undefined when the spec has none: a relative entrypoint is
 * relative to the profile (as `guix pack --entry-point`). Existence is the executor's to check.
 */
export function resolveEntrypoint(spec: ImageSpec, closure: Closure): string | undefined {
  const ep = spec.entrypoint;
  if (ep === undefined) return undefined;
  const key = ["entrypoint"];
  const parts = ep.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw keyError(key, `"${ep}" must not contain '..'`);
  if (parts.length === 0) throw keyError(key, `"${ep}" names no file; give a path such as bin/hello`);
  if (ep.startsWith("/")) return "/" + parts.join("/");
  if (closure.profile === undefined) throw keyError(key, `"${ep}" is relative to the profile, but the spec has no profile (it packs roots); write an absolute path`);
  return `${closure.profile}/${parts.join("/")}`;
}
