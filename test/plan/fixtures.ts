/** Plain-data closures and specs for the planner tests (no files: the planner never touches the disk). */
import { createHash } from "node:crypto";
import { imageSpecSchema, type ImageSpec, type ImageSpecInput } from "../../src/config/schema.ts";
import type { Closure, StoreItem } from "../../src/store/types.ts";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** A deterministic store path for `name`: `<dir>/<32 nix32 chars derived from the name>-<name>`. */
export function storePath(name: string, dir = "/gnu/store"): string {
  const digest = createHash("sha256").update(name).digest();
  let hash = "";
  for (let i = 0; i < 32; i++) hash += NIX32[digest[i]! % 32];
  return `${dir}/${hash}-${name}`;
}

export interface ItemDef {
  name: string;
  size?: number;
  refs?: string[];
}

/** A closure from names: references are names too; items and references sorted as the resolve stage gives them. */
export function closureOf(defs: ItemDef[], options: { profile?: string; dir?: string } = {}): Closure {
  const dir = options.dir ?? "/gnu/store";
  const items: StoreItem[] = defs.map((d) => ({
    path: storePath(d.name, dir),
    narSize: d.size ?? 1000,
    references: (d.refs ?? []).map((r) => storePath(r, dir)).sort(byBytes),
  }));
  items.sort((a, b) => byBytes(a.path, b.path));
  const profile = options.profile === undefined ? undefined : storePath(options.profile, dir);
  const roots = profile ? [profile] : items.filter((it) => !items.some((o) => o !== it && o.references.includes(it.path))).map((it) => it.path);
  return { store: { dir, root: "/" }, roots, ...(profile ? { profile } : {}), items };
}

export function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A validated spec with the schema's defaults; a profile unless `roots` is given. */
export function specOf(over: Partial<ImageSpecInput> = {}): ImageSpec {
  const base: ImageSpecInput = { name: "test", output: { path: "out.tar" }, ...over };
  if (base.profile === undefined && base.roots === undefined) base.profile = "./profile";
  return imageSpecSchema.parse(base);
}

/** The seeded PRNG the benchmarks use (mulberry32), so property tests are reproducible without a dependency. */
export { prng } from "../../bench/closures.ts";

export function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A random DAG closure: item i may refer only to items after it, so there are no cycles. */
export function randomClosure(rand: () => number, count: number, options: { maxSize?: number } = {}): Closure {
  const defs: ItemDef[] = [];
  for (let i = 0; i < count; i++) {
    const refs: string[] = [];
    for (let j = i + 1; j < count; j++) if (rand() < 3 / count) refs.push(`item${j}`);
    if (rand() < 0.3) refs.push(`item${i}`); // self reference, as store items often have
    defs.push({ name: `item${i}`, size: Math.floor(rand() * (options.maxSize ?? 5)), refs });
  }
  return closureOf(defs);
}

/** The item names (the part after the hash) of each store layer, in layer order; names sorted within a layer. */
export function layerNames(plan: { layers: ({ kind: "store"; items: { path: string }[] } | { kind: "customisation" } | { kind: "root-system" })[] }): string[][] {
  return plan.layers.map((l) => (l.kind === "store" ? l.items.map((it) => nameOf(it.path)).sort() : l.kind === "root-system" ? ["<root-system>"] : ["<custom>"]));
}

export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1 + 33);
}
