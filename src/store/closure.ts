/**
 * The resolve stage: ImageSpec (store, profile | roots, closure source) -> Closure (items, sizes, references).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { atConfigKey, StoreError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import { databaseHas, defaultDatabase, readDatabaseClosure, type SourceItem } from "./database.ts";
import { closureOf, readClosureInfo, readReferencesGraph } from "./graph.ts";
import { narSize } from "./nar.ts";
import { byBytes, hostPath, isStorePath, resolveProfile, resolveRoots } from "./path.ts";
import { scanClosure, type ScanMemo } from "./scan.ts";
import { readRootSystem } from "./root-system.ts";
import type { Closure, StoreItem, StoreLocation } from "./types.ts";

export type ClosureSpec = Pick<ImageSpec, "store" | "profile" | "roots" | "closure" | "rootSystem">;
export type ClosureSource = "database" | "guix-graph" | "nix-closure-info" | "scan";

export interface ResolveOptions {
  /** Directory relative paths of the spec (profile, roots, store root, closure.file) are resolved against. */
  configDir: string;
  /** Scan results remembered between builds (the layer cache provides one). */
  scanMemo?: ScanMemo;
  /** Problems that did not stop resolving (e.g. `auto` falling back to a scan), for the caller to show. */
  onWarning?: (message: string) => void;
}

/** The spec's store as a StoreLocation with an absolute root. */
export function storeLocation(store: ClosureSpec["store"], configDir: string): StoreLocation {
  if (typeof store === "string") return { dir: store, root: "/" };
  const root = path.resolve(configDir, store.root);
  return { dir: store.dir, root: root === "/" ? "/" : root };
}

/** A profile or roots entry: logical store paths stay as they are, anything else is a host path. */
function hostOrLogical(store: StoreLocation, p: string, configDir: string): string {
  return path.isAbsolute(p) && (isStorePath(p, store.dir) || p.startsWith(`${store.dir}/`)) ? p : path.resolve(configDir, p);
}

/** A closure to resolve: the roots and the store they are in. */
export interface ClosureRoots {
  store: StoreLocation;
  /** The roots, as store paths. */
  roots: string[];
}

/** Where a closure is read from. */
export interface PickedSource {
  source: ClosureSource;
  /** The database, references graph or closureInfo directory it reads; none for a scan. */
  file?: string;
}

/** Which source `auto` picks: the host store's database when it exists and knows every root, else scanning. */
export function pickSource(
  spec: ClosureSpec,
  { store, roots }: ClosureRoots,
  { configDir, onWarning }: Pick<ResolveOptions, "configDir" | "onWarning">,
): PickedSource {
  const from = spec.closure.from;
  const given = spec.closure.file === undefined ? undefined : path.resolve(configDir, spec.closure.file);
  if (from === "scan") return { source: "scan" };
  if (from === "guix-graph" || from === "nix-closure-info") {
    if (given === undefined) {
      throw new StoreError(`closure.from ${from} needs closure.file: the ${from === "guix-graph" ? "references graph file" : "closureInfo directory"}`);
    }
    return { source: from, file: given };
  }
  const logicalDb = defaultDatabase(store.dir);
  const dbFile = given ?? (logicalDb === undefined ? undefined : hostPath(store, logicalDb));
  if (from === "database") {
    if (dbFile === undefined) {
      throw new StoreError(`closure.from database needs closure.file for the store dir ${store.dir} (no default database location is known for it)`);
    }
    return { source: "database", file: dbFile };
  }
  if (dbFile === undefined || !fs.existsSync(dbFile)) return { source: "scan" };
  try {
    if (databaseHas(dbFile, roots)) return { source: "database", file: dbFile };
  } catch (e) {
    // `auto` only prefers the database: one that cannot be read is a reason to scan, not to fail.
    if (!(e instanceof StoreError)) throw e;
    onWarning?.(`closure: ${e.message}; scanning the store instead`);
  }
  return { source: "scan" };
}

function fromSource({ source, file }: PickedSource, { store, roots }: ClosureRoots, options: Pick<ResolveOptions, "scanMemo" | "onWarning">): SourceItem[] {
  switch (source) {
    case "database":
      return readDatabaseClosure(file!, roots);
    case "guix-graph":
      return closureOf(readReferencesGraph(file!), roots, file!);
    case "nix-closure-info":
      return closureOf(readClosureInfo(file!), roots, file!);
    case "scan":
      return scanClosure(store, roots, { memo: options.scanMemo, onWarning: options.onWarning });
  }
}

/** Every item must be in the store dir and exist on the host; names a referrer of a missing one. */
function checkPresent(items: SourceItem[], store: StoreLocation, roots: string[]): void {
  const referrer = new Map<string, string>();
  for (const item of items) for (const r of item.references) if (r !== item.path && !referrer.has(r)) referrer.set(r, item.path);
  const where = store.root === "/" ? store.dir : store.root;
  for (const item of items) {
    const by = referrer.get(item.path);
    if (!isStorePath(item.path, store.dir)) {
      const who = by === undefined ? "the closure" : by;
      throw new StoreError(`${who} refers to ${item.path}, which is not an item of the store dir ${store.dir}`);
    }
    if (fs.existsSync(hostPath(store, item.path)) || isDanglingLink(hostPath(store, item.path))) continue;
    if (by !== undefined && !roots.includes(item.path)) {
      throw new StoreError(`${by} refers to ${item.path}, which is missing from the store ${where}`);
    }
    throw new StoreError(`${item.path} is missing from the store ${where}`);
  }
}

/** A store item may itself be a symlink whose target does not exist; it is still present. */
function isDanglingLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Resolves the spec's profile or roots to their closure, from the source `spec.closure` names. */
export async function resolveClosure(spec: ClosureSpec, options: ResolveOptions): Promise<Closure> {
  const { configDir } = options;
  const store = storeLocation(spec.store, configDir);
  let profile: string | undefined;
  let roots: string[];
  if (spec.profile !== undefined) {
    profile = atConfigKey(["profile"], () => resolveProfile(store, hostOrLogical(store, spec.profile!, configDir)));
    roots = [profile];
  } else if (spec.roots !== undefined) {
    roots = spec.roots.flatMap((r, i) => atConfigKey(["roots", i], () => resolveRoots(store, [hostOrLogical(store, r, configDir)])));
    roots = [...new Set(roots)].sort(byBytes);
  } else {
    throw new StoreError("the spec has neither profile nor roots");
  }
  const { source, file } = pickSource(spec, { store, roots }, options);
  // Reading a file the config names (closure.file) fails at that key; a database found by default has none.
  const found = spec.closure.file !== undefined && file !== undefined
    ? atConfigKey(["closure", "file"], () => fromSource({ source, file }, { store, roots }, options))
    : fromSource({ source, file }, { store, roots }, options);
  // A scan finds only items that exist in the store dir: checking them again would stat every item once more.
  if (source !== "scan") checkPresent(found, store, roots);
  const items: StoreItem[] = found
    .map((s) => {
      const item: StoreItem = {
        path: s.path,
        narSize: s.narSize ?? narSize(hostPath(store, s.path), { label: s.path }),
        references: [...new Set(s.references)].sort(byBytes),
      };
      if (s.narHash !== undefined) item.narHash = s.narHash;
      return item;
    })
    .sort((a, b) => byBytes(a.path, b.path));
  const closure: Closure = { store, roots, items };
  if (profile !== undefined) closure.profile = profile;
  // The root system is listed here, with the other inputs read from disk, so planning stays pure.
  const rootSystem = readRootSystem(spec, configDir);
  if (rootSystem !== undefined) closure.rootSystem = rootSystem;
  return closure;
}
