// The reachability estimate of bench/sharing-reach.ts: static ratios by hand, and the annealer's incremental
// bookkeeping against a from-scratch recomputation of the cost of the assignment it returns.
import { describe, expect, it } from "vitest";
import { anneal, staticStats } from "../../bench/sharing-anneal.ts";
import { dependentsOf, distroClosure, storePath } from "../../bench/closures.ts";
import type { Closure } from "../../src/store/types.ts";

const p = (name: string): string => storePath(name);

/** profile -> app -> lib; profile -> data. Sizes: profile 10, app 100, lib 50, data 40. */
const small: Closure = {
  store: { dir: "/gnu/store", root: "/" },
  roots: [p("profile")],
  items: [
    { path: p("app"), narSize: 100, references: [p("lib")] },
    { path: p("data"), narSize: 40, references: [] },
    { path: p("lib"), narSize: 50, references: [] },
    { path: p("profile"), narSize: 10, references: [p("app"), p("data")] },
  ].sort((a, b) => (a.path < b.path ? -1 : 1)),
};
const at = (c: Closure, layers: Record<string, number>): number[] => c.items.map((it) => layers[it.path.slice(it.path.indexOf("-") + 1)]!);

/** The penalised cost of an assignment, recomputed the slow way. */
function costOf(c: Closure, layerOf: ArrayLike<number>, penalty: number): number {
  const bytes = new Map<number, number>();
  c.items.forEach((it, i) => bytes.set(layerOf[i]!, (bytes.get(layerOf[i]!) ?? 0) + it.narSize));
  let total = 0;
  for (const it of c.items) {
    if (c.roots.includes(it.path)) continue;
    const changed = [...dependentsOf(c, it.path)];
    const ideal = changed.reduce((s, q) => s + c.items.find((x) => x.path === q)!.narSize, 0);
    const layers = new Set(changed.map((q) => layerOf[c.items.findIndex((x) => x.path === q)]!));
    const r = Math.log([...layers].reduce((s, l) => s + bytes.get(l)!, 0) / ideal);
    total += r + (r > Math.LN2 ? penalty * (r - Math.LN2) : 0);
  }
  return total;
}

describe("static ratios", () => {
  it("counts every layer holding a changed item, by hand", () => {
    // {app, lib} {data} {profile}: app changes app+profile (110; pulls 150+10), lib changes lib+app+profile (160;
    // pulls 160), data changes data+profile (50; pulls 50).
    const s = staticStats(small, at(small, { app: 0, lib: 0, data: 1, profile: 2 }));
    expect(s.updates).toBe(3);
    expect(s.worst).toBeCloseTo(160 / 110, 12);
    expect(s.geomean).toBeCloseTo(Math.cbrt(160 / 110), 12);
    expect(s.above2).toBe(0);
    expect(s.layers).toBe(3);
    // All in one layer: data's update (50 changed) pulls all 200.
    const one = staticStats(small, at(small, { app: 0, lib: 0, data: 0, profile: 0 }));
    expect(one.worst).toBe(4);
    expect(one.above2).toBe(1);
  });
});

describe("anneal", () => {
  const closure = distroClosure({ items: 80, totalBytes: 3e8, seed: 4 }).closure;
  const start = closure.items.map(() => 0);

  it.each([0, 5])("tracks its cost exactly (penalty %i), never ends worse than it starts, stays within max", (penalty) => {
    const r = anneal(closure, start, { max: 8, iterations: 30_000, penalty, seed: 3 });
    expect(r.cost).toBeCloseTo(costOf(closure, r.layerOf, penalty), 6);
    expect(r.cost).toBeLessThanOrEqual(costOf(closure, start, penalty));
    expect(r.end.geomean).toBeLessThan(r.start.geomean);
    expect(Math.max(...r.layerOf)).toBeLessThan(8);
    expect(r.end.layers).toBeLessThanOrEqual(8);
    expect(r.layerOf.length).toBe(closure.items.length);
  });

  it("is deterministic for a seed", () => {
    const a = anneal(closure, start, { max: 8, iterations: 5_000, penalty: 5, seed: 9 });
    const b = anneal(closure, start, { max: 8, iterations: 5_000, penalty: 5, seed: 9 });
    expect([...b.layerOf]).toEqual([...a.layerOf]);
  });

  it("refuses a start outside the layers", () => {
    expect(() => anneal(closure, closure.items.map(() => 8), { max: 8, iterations: 1, penalty: 0, seed: 1 })).toThrow(/outside 0..7/);
  });
});
