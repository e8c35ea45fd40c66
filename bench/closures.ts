/**
 * Store closures for the sharing benchmark (no files: the planner only needs paths, sizes and references).
 *
 * - `distroClosure`: a deterministic closure shaped like a distribution's system profile: a few core libraries
 *   nearly everything depends on, shared libraries that depend on earlier ones with preferential attachment (popular
 *   libraries get more dependents), data packages (time zones, fonts, icons) that few items use, applications on
 *   top (some using others), and a profile referring to every application and data package. Sizes are log-normal
 *   per kind (bytes to hundreds of MB, heavy-tailed) scaled to a total.
 * - `updateClosure`: the closure after updating one package: it and every item depending on it get new store paths
 *   (new hash); the package's size moves by up to ±10 %, its dependents keep theirs (only hashes change inside).
 * - `namedScenarios`: update targets picked by rule, like the table (leaf application, small leaf tool,
 *   data package, library with many dependents, ...).
 * - `siblingImages`: two closures from one store for different applications, each with its own profile.
 * - `readPathInfo`: the output of `nix path-info --json -r` (array form, or the object keyed by path).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import type { Closure, StoreItem } from "../src/store/types.ts";
import { byBytes } from "../src/util/bytes.ts";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";
const DIR = "/gnu/store";
const MB = 1024 * 1024;

export type Kind = "core" | "lib" | "data" | "app" | "profile";

export interface DistroParams {
  items: number;
  /** Total NAR bytes the sizes are scaled to. */
  totalBytes: number;
  seed: number;
  /** The profile's share of the bytes (default PROFILE_SHARE). */
  profileShare?: number;
}

/**
 * A profile is a tree of symlinks to its packages' files (about 250 bytes of NAR per file), so its size grows with
 * the closure. 0.55 % reproduces the issue's measurements on real closures: updating a small leaf tool of a 3.0 GB
 * closure changes 18 MB (the tool plus the profile), and a 10 MB leaf application of a 1.2 GB one changes 10 MB.
 */
export const PROFILE_SHARE = 0.0055;

/** A closure plus what the generator knows about each item (kind, name), keyed by path. */
export interface Distro {
  closure: Closure;
  kind: Map<string, Kind>;
}

/** mulberry32: tiny seeded PRNG, so every closure is reproducible. */
export function prng(seed: number): () => number {
  let a = (seed * 0x9e3779b9) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const normal = (r: () => number): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

/** `<dir>/<32 nix32 chars>-<name>`, the hash derived from the name and a generation (bumped by updates). */
export function storePath(name: string, generation = 0, dir = DIR): string {
  const digest = createHash("sha256").update(`${name}\0${generation}`).digest();
  let hash = "";
  for (let i = 0; i < 32; i++) hash += NIX32[digest[i]! % 32];
  return `${dir}/${hash}-${name}`;
}

export const nameOf = (path: string): string => path.slice(path.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");

interface Def {
  name: string;
  kind: Kind;
  weight: number;
  refs: number[];
}

/** Picks `k` distinct indexes below `limit`, each with probability proportional to `score(i)`. */
function pickWeighted(r: () => number, limit: number, k: number, score: (i: number) => number): number[] {
  const out = new Set<number>();
  let total = 0;
  for (let i = 0; i < limit; i++) total += score(i);
  for (let tries = 0; out.size < Math.min(k, limit) && tries < 50 * k; tries++) {
    let x = r() * total;
    let i = 0;
    for (; i < limit - 1; i++) {
      x -= score(i);
      if (x < 0) break;
    }
    out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

export function distroClosure(params: DistroParams): Distro {
  const r = prng(params.seed);
  const n = params.items - 1; // plus the profile
  const nCore = 6;
  const nData = Math.round(n * 0.1);
  const nApp = Math.round(n * 0.3);
  const nLib = n - nCore - nData - nApp;
  const defs: Def[] = [];
  const dependents: number[] = [];
  const add = (d: Def): void => {
    for (const j of d.refs) dependents[j] = (dependents[j] ?? 0) + 1;
    dependents.push(0);
    defs.push(d);
  };
  // Log-normal weights per kind (median, sigma): libraries small, applications larger, data heavy-tailed.
  const lognormal = (median: number, sigma: number): number => median * Math.exp(sigma * normal(r));
  for (let i = 0; i < nCore; i++) {
    add({ name: `core${i}-1.${i}`, kind: "core", weight: lognormal(3 * MB, 1.2), refs: i === 0 ? [] : [0] });
  }
  const data: number[] = [];
  for (let i = 0; i < nData; i++) {
    data.push(defs.length);
    add({ name: `data${i}-20${10 + (i % 15)}`, kind: "data", weight: lognormal(400 * 1024, 2.6), refs: r() < 0.3 ? [0] : [] });
  }
  const dataScore = (i: number): number => (defs[i]!.kind === "data" ? 1 : 0);
  for (let i = 0; i < nLib; i++) {
    const limit = defs.length;
    const k = 1 + Math.floor(-Math.log(1 - r()) * 3);
    const refs = new Set(pickWeighted(r, limit, k, (j) => (defs[j]!.kind === "data" ? 0 : (dependents[j]! + 1) ** 1.1)));
    refs.add(0);
    if (r() < 0.08) for (const j of pickWeighted(r, limit, 1, dataScore)) refs.add(j);
    add({ name: `lib${i}-${1 + (i % 9)}.${i % 7}`, kind: "lib", weight: lognormal(350 * 1024, 1.9), refs: [...refs].sort((a, b) => a - b) });
  }
  for (let i = 0; i < nApp; i++) {
    const limit = defs.length;
    const k = 2 + Math.floor(-Math.log(1 - r()) * 6);
    const refs = new Set(pickWeighted(r, limit, k, (j) => (defs[j]!.kind === "data" ? 0 : defs[j]!.kind === "app" ? 0.3 : (dependents[j]! + 1) ** 1.1)));
    refs.add(0);
    if (r() < 0.25) for (const j of pickWeighted(r, limit, 1 + Math.floor(r() * 2), dataScore)) refs.add(j);
    add({ name: `app${i}-${1 + (i % 5)}.${i % 11}`, kind: "app", weight: lognormal(900 * 1024, 2.2), refs: [...refs].sort((a, b) => a - b) });
  }
  // A library is in a closure because something uses it: one nobody picked gets a later library or app as a user.
  for (let i = 0; i < defs.length; i++) {
    if (defs[i]!.kind !== "lib" || dependents[i]! > 0) continue;
    const later: number[] = [];
    for (let j = i + 1; j < defs.length; j++) if (defs[j]!.kind === "lib" || defs[j]!.kind === "app") later.push(j);
    if (later.length === 0) continue;
    const j = later[Math.floor(r() * later.length)]!;
    defs[j]!.refs = [...defs[j]!.refs, i].sort((a, b) => a - b);
    dependents[i] = 1;
  }
  // Scale to the total, clamped to [64 B, 400 MiB]; the profile gets PROFILE_SHARE of the bytes.
  const sum = defs.reduce((s, d) => s + d.weight, 0);
  const share = params.profileShare ?? PROFILE_SHARE;
  const scale = (params.totalBytes * (1 - share)) / sum;
  const sizes = defs.map((d) => Math.round(Math.min(400 * MB, Math.max(64, d.weight * scale))));
  const profileRefs = defs.map((_, i) => i).filter((i) => dependents[i] === 0 || defs[i]!.kind === "app" || defs[i]!.kind === "data");
  const profileSize = Math.round(params.totalBytes * share);
  const paths = defs.map((d) => storePath(d.name));
  const kind = new Map<string, Kind>();
  const items: StoreItem[] = defs.map((d, i) => {
    kind.set(paths[i]!, d.kind);
    const refs = d.refs.map((j) => paths[j]!);
    if (r() < 0.5) refs.push(paths[i]!); // self references, as many store items have
    return { path: paths[i]!, narSize: sizes[i]!, references: [...new Set(refs)].sort(byBytes) };
  });
  const profile = storePath("profile");
  kind.set(profile, "profile");
  items.push({ path: profile, narSize: profileSize, references: profileRefs.map((i) => paths[i]!).sort(byBytes) });
  items.sort((a, b) => byBytes(a.path, b.path));
  return { closure: { store: { dir: DIR, root: "/" }, roots: [profile], profile, items }, kind };
}

/** Referrers by path, built once per closure: namedScenarios asks for every item's dependents. */
const referrersCache = new WeakMap<Closure, Map<string, string[]>>();
function referrersOf(closure: Closure): Map<string, string[]> {
  let parents = referrersCache.get(closure);
  if (parents) return parents;
  parents = new Map<string, string[]>();
  for (const it of closure.items) {
    for (const ref of it.references) {
      if (ref === it.path) continue;
      let list = parents.get(ref);
      if (!list) parents.set(ref, (list = []));
      list.push(it.path);
    }
  }
  referrersCache.set(closure, parents);
  return parents;
}

/** Every item that depends on `path`, directly or not, plus `path` itself. */
export function dependentsOf(closure: Closure, path: string): Set<string> {
  const parents = referrersOf(closure);
  const out = new Set([path]);
  const stack = [path];
  while (stack.length > 0) {
    for (const p of parents.get(stack.pop()!) ?? []) {
      if (!out.has(p)) {
        out.add(p);
        stack.push(p);
      }
    }
  }
  return out;
}

/** The closure after updating `path`: it and its dependents get new paths; only its own size moves (±10 %). */
export function updateClosure(closure: Closure, path: string, seed: number): Closure {
  const r = prng(seed);
  const changed = dependentsOf(closure, path);
  const renamed = new Map<string, string>();
  for (const p of changed) {
    const dir = p.slice(0, p.lastIndexOf("/"));
    renamed.set(p, storePath(nameOf(p), seed + 1, dir));
  }
  const map = (p: string): string => renamed.get(p) ?? p;
  const items = closure.items.map((it) => ({
    path: map(it.path),
    narSize: it.path === path ? Math.max(0, Math.round(it.narSize * (0.9 + 0.2 * r()))) : it.narSize,
    references: it.references.map(map).sort(byBytes),
  }));
  items.sort((a, b) => byBytes(a.path, b.path));
  const out: Closure = { store: closure.store, roots: closure.roots.map(map).sort(byBytes), items };
  if (closure.profile !== undefined) out.profile = map(closure.profile);
  return out;
}

export interface Scenario {
  label: string;
  path: string;
}

/** Update targets picked by rule, like the table; duplicates dropped. */
export function namedScenarios(d: Distro): Scenario[] {
  const { closure, kind } = d;
  const dependents = new Map(closure.items.map((it) => [it.path, dependentsOf(closure, it.path).size - 1]));
  const size = new Map(closure.items.map((it) => [it.path, it.narSize]));
  const of = (k: Kind): string[] => closure.items.filter((it) => kind.get(it.path) === k).map((it) => it.path);
  const leafApps = of("app").filter((p) => dependents.get(p) === 1).sort((a, b) => size.get(a)! - size.get(b)! || byBytes(a, b));
  const libs = [...of("lib"), ...of("core")].sort((a, b) => dependents.get(a)! - dependents.get(b)! || byBytes(a, b));
  const nearest = (xs: string[], target: number): string =>
    [...xs].sort((a, b) => Math.abs(dependents.get(a)! - target) - Math.abs(dependents.get(b)! - target) || byBytes(a, b))[0]!;
  const dataFew = of("data").filter((p) => dependents.get(p)! >= 2 && dependents.get(p)! <= 20).sort((a, b) => size.get(b)! - size.get(a)! || byBytes(a, b));
  const n = closure.items.length;
  const picks: Scenario[] = [
    { label: "leaf application (largest)", path: leafApps.at(-1)! },
    { label: "leaf application (median size)", path: leafApps[Math.floor(leafApps.length / 2)]! },
    { label: "small leaf tool", path: leafApps[Math.floor(leafApps.length / 10)]! },
    { label: "data package, few dependents (tzdata-like)", path: dataFew[0] ?? of("data")[0]! },
    { label: "library, 1 dependent", path: nearest(of("lib"), 1) },
    { label: "library, ~10 dependents", path: nearest(of("lib"), 10) },
    { label: "library, ~25% dependents (libssl-like)", path: nearest(libs, Math.round(n / 4)) },
    { label: "core library (libc-like)", path: libs.at(-1)! },
  ];
  const seen = new Set<string>();
  return picks.filter((s) => s.path !== undefined && !seen.has(s.path) && (seen.add(s.path), true));
}

/** The closure of `roots` within `closure`, under a new profile referring to them (named `profileName`). */
export function subClosure(closure: Closure, roots: string[], profileName: string, profileSize: number): Closure {
  const byPath = new Map(closure.items.map((it) => [it.path, it]));
  const keep = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (keep.has(p)) continue;
    keep.add(p);
    stack.push(...byPath.get(p)!.references);
  }
  const profile = storePath(profileName, 0, closure.store.dir);
  const items = [...keep].map((p) => byPath.get(p)!);
  items.push({ path: profile, narSize: profileSize, references: [...roots].sort(byBytes) });
  items.sort((a, b) => byBytes(a.path, b.path));
  return { store: closure.store, roots: [profile], profile, items };
}

export interface SiblingPair {
  label: string;
  a: Closure;
  b: Closure;
}

/** Sibling images from one store: the two applications with the largest closures, and two halves of the apps. */
export function siblingImages(d: Distro): SiblingPair[] {
  const { closure, kind } = d;
  const apps = closure.items.filter((it) => kind.get(it.path) === "app").map((it) => it.path);
  const deps = (p: string): number => subClosure(closure, [p], "x", 0).items.length;
  const big = [...apps].sort((a, b) => deps(b) - deps(a) || byBytes(a, b));
  const byName = [...apps].sort((a, b) => byBytes(nameOf(a), nameOf(b)));
  const even = byName.filter((_, i) => i % 2 === 0);
  const odd = byName.filter((_, i) => i % 2 === 1);
  const psize = (xs: string[]): number => Math.round(PROFILE_SHARE * subClosure(closure, xs, "x", 0).items.reduce((n, it) => n + it.narSize, 0));
  return [
    { label: `${nameOf(big[0]!)} vs ${nameOf(big[1]!)}`, a: subClosure(closure, [big[0]!], "profile-a", psize([big[0]!])), b: subClosure(closure, [big[1]!], "profile-b", psize([big[1]!])) },
    { label: "even apps vs odd apps", a: subClosure(closure, even, "profile-even", psize(even)), b: subClosure(closure, odd, "profile-odd", psize(odd)) },
  ];
}

/**
 * Reads `nix path-info --json -r` output: an array of {path, narSize, references} (nix ≤ 2.18) or an object keyed
 * by store path (newer nix). References may be full paths or base names. The store directory is taken from the
 * paths; items without narSize count as 0 bytes.
 */
export function readPathInfo(file: string): Closure {
  const json: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
  const entries: { path: string; info: Record<string, unknown> }[] = [];
  if (Array.isArray(json)) {
    for (const e of json as Record<string, unknown>[]) entries.push({ path: String(e.path), info: e });
  } else if (json !== null && typeof json === "object") {
    for (const [path, info] of Object.entries(json as Record<string, Record<string, unknown> | null>)) {
      if (info !== null) entries.push({ path, info });
    }
  } else {
    throw new Error(`${file}: expected the JSON array or object that \`nix path-info --json -r\` prints`);
  }
  if (entries.length === 0) throw new Error(`${file}: no store paths (did the paths exist when nix path-info ran?)`);
  const dir = entries[0]!.path.slice(0, entries[0]!.path.lastIndexOf("/"));
  const items: StoreItem[] = entries.map(({ path, info }) => {
    const refs = Array.isArray(info.references) ? (info.references as string[]) : [];
    return {
      path,
      narSize: typeof info.narSize === "number" ? info.narSize : 0,
      references: [...new Set(refs.map((x) => (x.startsWith("/") ? x : `${dir}/${x}`)))].sort(byBytes),
    };
  });
  items.sort((a, b) => byBytes(a.path, b.path));
  const referenced = new Set(items.flatMap((it) => it.references.filter((x) => x !== it.path)));
  const roots = items.map((it) => it.path).filter((p) => !referenced.has(p));
  return { store: { dir, root: "/" }, roots, items };
}
