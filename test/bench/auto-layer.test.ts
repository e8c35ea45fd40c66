import { describe, expect, it } from "vitest";
import { groupByAutoLayer, autoLayerGroups, planAutoLayer } from "../../bench/auto-layer.ts";
import { distroClosure, prng, storePath } from "../../bench/closures.ts";
import type { Closure, StoreItem } from "../../src/store/types.ts";
import { byBytes } from "../../src/util/bytes.ts";

const p = (name: string): string => storePath(name, 0, "/nix/store");

/** A closure from {name: [size, refs]}; references as names. */
function closureOf(spec: Record<string, [number, string[]]>): Closure {
  const items: StoreItem[] = Object.entries(spec).map(([name, [size, refs]]) => ({ path: p(name), narSize: size, references: refs.map(p).sort(byBytes) }));
  items.sort((a, b) => byBytes(a.path, b.path));
  const referenced = new Set(items.flatMap((it) => it.references.filter((r) => r !== it.path)));
  return { store: { dir: "/nix/store", root: "/" }, roots: items.map((it) => it.path).filter((x) => !referenced.has(x)), items };
}

const names = (groups: StoreItem[][]): string[][] => groups.map((g) => g.map((it) => it.path.slice(it.path.indexOf("-") + 1)).sort());
const asSet = (groups: string[][]): string[] => groups.map((g) => g.join(",")).sort();

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const r = prng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Reference: nixpkgs' formulation, literally and slowly. Each item maps to the set of lowest primaries above it;
 * a new primary N takes itself, and each strict dependency D of N drops N's strict users from its set and gains N
 * unless its set already holds one of N's dependencies. Stop before the count of distinct sets exceeds the limit.
 */
function reference(items: readonly StoreItem[], limit: number): string[][] {
  const byPath = new Map(items.map((it) => [it.path, it]));
  const walk = (start: string, next: (x: string) => string[]): Set<string> => {
    const seen = new Set<string>();
    const todo = [start];
    while (todo.length) {
      const x = todo.pop()!;
      if (seen.has(x)) continue;
      seen.add(x);
      todo.push(...next(x));
    }
    seen.delete(start);
    return seen;
  };
  const deps = (x: string) => byPath.get(x)!.references.filter((r) => byPath.has(r));
  const users = (x: string) => items.filter((it) => it.references.includes(x) && it.path !== x).map((it) => it.path);
  const key = (s: Set<string>) => [...s].sort().join("|");
  let split = new Map(items.map((it) => [it.path, new Set<string>()]));
  const order = [...items].sort((a, b) => a.narSize - b.narSize || byBytes(a.path, b.path));
  while (order.length) {
    const n = order.pop()!.path;
    const next = new Map([...split].map(([k, v]) => [k, new Set(v)]));
    next.set(n, new Set([n]));
    const d = walk(n, deps);
    const u = walk(n, users);
    for (const dep of d) {
      const s = next.get(dep)!;
      for (const x of u) s.delete(x);
      if (![...s].some((x) => d.has(x))) s.add(n);
    }
    if (new Set([...next.values()].map(key)).size > limit) break;
    split = next;
  }
  const groups = new Map<string, string[]>();
  for (const [path, s] of split) groups.set(key(s), [...(groups.get(key(s)) ?? []), path]);
  return [...groups.values()].map((g) => g.map((x) => x.slice(x.indexOf("-") + 1)).sort());
}

describe("auto-layer (nixpkgs' default layering)", () => {
  // app1 (big) and app2 both use libA; only app1 uses libB; tool uses nothing; profile refers to all apps.
  const c = closureOf({
    profile: [5, ["app1", "app2", "tool"]],
    app1: [1000, ["libA", "libB", "libc"]],
    app2: [500, ["libA", "libc"]],
    tool: [3, []],
    libA: [50, ["libc"]],
    libB: [40, ["libc", "libB"]],
    libc: [200, []],
  });

  it("groups by the set of primaries that reach an item", () => {
    // Primaries by size: app1, app2, libc (then the limit). libB only under app1 joins its layer; libA under both
    // apps gets a layer of its own; profile and tool are reached by no primary.
    expect(asSet(names(groupByAutoLayer(c.items, 5)))).toEqual(asSet([["app1", "libB"], ["app2"], ["libA"], ["libc"], ["profile", "tool"]]));
    expect(asSet(names(groupByAutoLayer(c.items, 1)))).toEqual([["app1", "app2", "libA", "libB", "libc", "profile", "tool"].join(",")]);
  });

  it("never exceeds the limit, places every item exactly once, and matches nixpkgs' formulation", () => {
    const gen = distroClosure({ items: 120, totalBytes: 1e8, seed: 5 }).closure;
    for (const [items, limits] of [[c.items, [1, 2, 3, 4, 5, 6, 7, 8]], [gen.items, [1, 2, 5, 20, 60, 99]]] as const) {
      for (const limit of limits) {
        const groups = groupByAutoLayer(items, limit);
        expect(groups.length).toBeLessThanOrEqual(limit);
        const all = groups.flat().map((it) => it.path);
        expect(all.length).toBe(items.length);
        expect(new Set(all).size).toBe(items.length);
        expect(asSet(names(groups))).toEqual(asSet(reference(items, limit)));
      }
    }
  });

  it("items owned by the same primaries share a layer; reasons name the lowest primaries", () => {
    // Limit 4: app1, app2, then libc would make a fifth layer. libA and libc, under both apps, share one.
    const four = autoLayerGroups(c.items, 4);
    const in4 = (name: string) => four.find((g) => g.items.some((it) => it.path === p(name)))!;
    expect(in4("libA")).toBe(in4("libc"));
    expect(in4("libA").primaries).toEqual([p("app1"), p("app2")].sort(byBytes));
    expect(in4("libB")).toBe(in4("app1"));
    expect(in4("tool")).toBe(in4("profile"));
    expect(in4("tool").primaries).toEqual([]);
    // Limit 5: libc splits off; then libA becomes a primary at no cost (its closure splits no layer), and libB
    // would make a sixth layer, so the split stops there.
    const five = autoLayerGroups(c.items, 5);
    const in5 = (name: string) => five.find((g) => g.items.some((it) => it.path === p(name)))!;
    expect(in5("libA").primaries).toEqual([p("libA")]);
    expect(in5("libc").primaries).toEqual([p("libc")]);
    // Bottom first, by closure size: libc's layer has the smallest closure.
    expect(names(five.map((g) => g.items))[0]).toEqual(["libc"]);
  });

  it("is deterministic under input order shuffles", () => {
    const gen = distroClosure({ items: 200, totalBytes: 1e9, seed: 2 }).closure;
    const paths = (groups: StoreItem[][]) => JSON.stringify(groups.map((g) => g.map((it) => it.path)));
    const base = paths(groupByAutoLayer(gen.items, 30));
    for (let seed = 1; seed <= 5; seed++) {
      const items = shuffled(gen.items, seed).map((it) => ({ ...it, references: shuffled(it.references, seed + 10) }));
      expect(paths(groupByAutoLayer(items, 30))).toBe(base);
    }
  });

  it("equal sizes: the path that sorts last becomes a primary first, as nixpkgs' stable sort and pop give", () => {
    const t = closureOf({ a: [10, []], b: [10, []], top: [1, ["a", "b"]] });
    // Room for 2 layers: one primary splits the set; the later path of a and b wins.
    const last = [p("a"), p("b")].sort(byBytes)[1]!;
    const groups = groupByAutoLayer(t.items, 2);
    expect(groups.find((g) => g.length === 1)![0]!.path).toBe(last);
  });

  it("plans like planLayers: store layers within max - 1, an empty customisation layer last; sticky keeps layers", () => {
    const d = distroClosure({ items: 150, totalBytes: 5e8, seed: 4 }).closure;
    const plan = planAutoLayer(d, 20);
    expect(plan.layers.length).toBeLessThanOrEqual(20);
    expect(plan.layers.at(-1)).toEqual({ kind: "customisation", entries: [] });
    expect(plan.strategy).toBe("auto-layer");
    expect(plan.totals.items).toBe(150);
    const again = planAutoLayer(d, 20, { previous: plan });
    expect(again.layers).toEqual(plan.layers);
    expect(() => planAutoLayer(d, 1)).toThrow(/at least 2/);
  });
});
