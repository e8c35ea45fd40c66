/**
 * The customisation layer's contents, computed from the spec: `symlinks` (as `guix pack -S`), `paths` entries,
 * and every parent directory they need. Pure: the executor creates what this returns and checks what exists.
 */
import { PlanError } from "../errors.ts";
import type { ImageSpec } from "../spec/schema.ts";
import type { Closure } from "../store/types.ts";
import type { CustomEntry } from "./types.ts";

/** Mode of the parent directories nobody declared (what `mkdir -p` gives under umask 022, as Guix does). */
export const IMPLICIT_DIR_MODE = "755";

interface Defined {
  entry: CustomEntry;
  /** Where the spec defines it, for error messages, e.g. `symlinks[0] "/bin=bin"`. */
  origin: string;
  /** False for implicit parent directories. */
  explicit: boolean;
}

const cmpBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Compares absolute paths component by component, bytewise: tar --sort=name order, parents first. */
export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = cmpBytes(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

/** The components of an absolute image path, without empty and `.` parts; refuses `..` and the root. */
function components(p: string, origin: string): string[] {
  if (!p.startsWith("/")) throw new PlanError(`${origin}: "${p}" must be an absolute path (start with /)`);
  const parts = p.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new PlanError(`${origin}: "${p}" must not contain '..'`);
  if (parts.length === 0) throw new PlanError(`${origin}: cannot replace the image root "/"; name a path below it`);
  return parts;
}

function normaliseMode(mode: string, origin: string): string {
  if (!/^[0-7]{3,4}$/.test(mode)) throw new PlanError(`${origin}: mode "${mode}" must be octal, such as "755" or "1777"`);
  return parseInt(mode, 8).toString(8).padStart(3, "0");
}

/** A `symlinks` target: absolute is used as written, relative is joined to the profile's store path. */
function linkTarget(target: string, profile: string | undefined, origin: string): string {
  const parts = target.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new PlanError(`${origin}: target "${target}" must not contain '..'`);
  if (target.startsWith("/")) return target;
  if (profile === undefined) {
    throw new PlanError(
      `${origin}: target "${target}" is relative to the profile, but the spec has no profile (it packs roots); write an absolute target`,
    );
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
    const origin = `symlinks[${i}] "${s}"`;
    const eq = s.indexOf("=");
    if (eq < 0) throw new PlanError(`${origin}: must look like "/bin=bin" (link=target)`);
    const parts = components(s.slice(0, eq), origin);
    const target = linkTarget(s.slice(eq + 1), profile, origin);
    out.push({ parts, def: { entry: { path: "/" + parts.join("/"), type: "symlink", target }, origin, explicit: true } });
  });
  spec.paths.forEach((p, i) => {
    const origin = `paths[${i}] (${p.path})`;
    const parts = components(p.path, origin);
    const path = "/" + parts.join("/");
    let entry: CustomEntry;
    if (p.type === "directory") entry = { path, type: "directory", mode: normaliseMode(p.mode, origin) };
    else if (p.type === "symlink") entry = { path, type: "symlink", target: p.target };
    else {
      entry = { path, type: "file", mode: normaliseMode(p.mode, origin) };
      if (p.content !== undefined) entry.content = p.content;
      if (p.source !== undefined) entry.source = p.source;
    }
    out.push({ parts, def: { entry, origin, explicit: true } });
  });
  return out;
}

/** Refuses entries that would replace the store directory, one of its parents, or something inside it. */
function checkStoreOverlap(parts: string[], origin: string, storeDir: string): void {
  const store = storeDir.split("/").filter((c) => c !== "");
  const n = Math.min(parts.length, store.length);
  for (let i = 0; i < n; i++) if (parts[i] !== store[i]) return;
  const what = parts.length <= store.length ? "the store directory or one of its parents" : "a path inside the store";
  throw new PlanError(`${origin}: "/${parts.join("/")}" would replace ${what} (${storeDir}); the store layers own it`);
}

/**
 * The customisation entries: explicit ones plus their implicit parent directories (mode 755), sorted component
 * by component, bytewise, so parents come first. Two definitions of one path, or a path that must be both a
 * parent directory and a file or symlink, are PlanErrors naming both.
 */
export function customEntries(spec: ImageSpec, closure: Closure): CustomEntry[] {
  const byPath = new Map<string, Defined>();
  const explicit = explicitEntries(spec, closure.profile);
  for (const { parts, def } of explicit) {
    checkStoreOverlap(parts, def.origin, closure.store.dir);
    const seen = byPath.get(def.entry.path);
    if (seen) {
      throw new PlanError(`${def.origin} defines ${def.entry.path} again: ${seen.origin} already defines it; keep one of them`);
    }
    byPath.set(def.entry.path, def);
  }
  for (const { parts, def } of explicit) {
    for (let i = 1; i < parts.length; i++) {
      const parent = "/" + parts.slice(0, i).join("/");
      const seen = byPath.get(parent);
      if (!seen) {
        const entry: CustomEntry = { path: parent, type: "directory", mode: IMPLICIT_DIR_MODE };
        byPath.set(parent, { entry, origin: `parent of ${def.origin}`, explicit: false });
      } else if (seen.entry.type !== "directory") {
        throw new PlanError(
          `${def.origin} needs ${parent} to be a directory, but ${seen.origin} makes it ${describeEntry(seen.entry)}`,
        );
      }
    }
  }
  return [...byPath.values()].map((d) => d.entry).sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * The entrypoint's absolute path in the image, or undefined when the spec has none: a relative entrypoint is
 * relative to the profile (as `guix pack --entry-point`). Existence is the executor's to check.
 */
export function resolveEntrypoint(spec: ImageSpec, closure: Closure): string | undefined {
  const ep = spec.entrypoint;
  if (ep === undefined) return undefined;
  const origin = `entrypoint "${ep}"`;
  if (ep.startsWith("/")) return "/" + components(ep, origin).join("/");
  const parts = ep.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new PlanError(`${origin}: must not contain '..'`);
  if (parts.length === 0) throw new PlanError(`${origin}: names no file; give a path such as bin/hello`);
  if (closure.profile === undefined) {
    throw new PlanError(`${origin} is relative to the profile, but the spec has no profile (it packs roots); write an absolute path`);
  }
  return `${closure.profile}/${parts.join("/")}`;
}
