import { describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { groupBySharing, planLayers } from "../../src/plan/index.ts";
import { sizeClass } from "../../src/plan/sharing-graph.ts";
import { layerPlanSchema, type LayerPlan } from "../../src/plan/types.ts";
import type { Closure } from "../../src/store/types.ts";
import { byBytes, closureOf, layerNames, prng, randomClosure, shuffled, specOf, storePath, type ItemDef } from "./fixtures.ts";

const plan = (closure: Closure, max: number): LayerPlan =>
  planLayers(specOf({ roots: ["/x"], layers: { max, strategy: "sharing" } }), closure);

/** Store layers as sorted name lists, the layers themselves sorted, so tests do not depend on image order. */
const grouping = (p: LayerPlan): string[][] =>
  layerNames(p)
    .filter((l) => l[0] !== "<custom>")
    .sort((a, b) => byBytes(a.join(","), b.join(",")));

describe("sharing strategy: properties over random closures", () => {
  it("every item in exactly one layer, at most max layers, all of them used, no empty layer", () => {
    const rand = prng(7);
    for (let round = 0; round < 40; round++) {
      const closure = randomClosure(rand, 1 + Math.floor(rand() * 60), { maxSize: rand() < 0.5 ? 5 : 1e6 });
      const max = 2 + Math.floor(rand() * 20);
      const p = plan(closure, max);
      expect(layerPlanSchema.parse(p)).toEqual(p);
      expect(p.layers.length).toBeLessThanOrEqual(max);
      expect(p.layers.length).toBe(Math.min(max, closure.items.length + 1));
      const seen = p.layers.flatMap((l) => (l.kind === "store" ? l.items.map((i) => i.path) : []));
      expect(seen.sort(byBytes)).toEqual(closure.items.map((i) => i.path));
      for (const l of p.layers.slice(0, -1)) {
        if (l.kind !== "store") throw new Error("store layers come first");
        expect(l.items.length).toBeGreaterThan(0);
        expect(l.reason).toMatch(/\w/);
      }
      expect(p.layers.at(-1)!.kind).toBe("customisation");
    }
  });

  it("same closure, shuffled items and references: the same plan", () => {
    const rand = prng(11);
    for (let round = 0; round < 15; round++) {
      const closure = randomClosure(rand, 5 + Math.floor(rand() * 50), { maxSize: 1000 });
      const max = 2 + Math.floor(rand() * 12);
      const mixed: Closure = { ...closure, items: shuffled(closure.items, rand).map((it) => ({ ...it, references: shuffled(it.references, rand) })) };
      expect(plan(mixed, max)).toEqual(plan(closure, max));
    }
  });

  it("large closures (a coarse pass first): valid, and the same plan for shuffled input", () => {
    const rand = prng(23);
    const closure = randomClosure(rand, 1300, { maxSize: 1e6 });
    const p = plan(closure, 100);
    expect(p.layers.length).toBe(100);
    const seen = p.layers.flatMap((l) => (l.kind === "store" ? l.items.map((i) => i.path) : []));
    expect(seen.sort(byBytes)).toEqual(closure.items.map((i) => i.path));
    const mixed: Closure = { ...closure, items: shuffled(closure.items, rand) };
    expect(plan(mixed, 100)).toEqual(p);
  });

  it("does not depend on store hashes: renaming hashes keeps the grouping by name", () => {
    const rand = prng(5);
    const closure = randomClosure(rand, 40, { maxSize: 1e5 });
    const renamed: Closure = {
      ...closure,
      items: closure.items.map((it) => ({
        ...it,
        path: rehash(it.path),
        references: it.references.map(rehash),
      })),
    };
    expect(grouping(plan(renamed, 9))).toEqual(grouping(plan(closure, 9)));
  });
});

/** The same name under another hash, as an update gives it. */
function rehash(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 34);
  return storePath(`${name}`, "/gnu/store").replace(/\/[^/]{32}-/, `/${"0".repeat(31)}${path.length % 10}-`);
}

describe("sharing strategy: crafted graphs", () => {
  // Two applications with a tiny private library each, a shared library, and a profile.
  const defs: ItemDef[] = [
    { name: "profile", size: 10, refs: ["app-a", "app-b"] },
    { name: "app-a", size: 1000, refs: ["liba", "libshared"] },
    { name: "app-b", size: 1000, refs: ["libb", "libshared"] },
    { name: "liba", size: 1, refs: [] },
    { name: "libb", size: 1, refs: [] },
    { name: "libshared", size: 1000, refs: [] },
  ];

  it("enough layers: every item alone", () => {
    expect(grouping(plan(closureOf(defs), 7))).toEqual([["app-a"], ["app-b"], ["liba"], ["libb"], ["libshared"], ["profile"]]);
  });

  it("one layer short of that: the tiny private libraries join their applications, the profile stays alone", () => {
    expect(grouping(plan(closureOf(defs), 5))).toEqual([["app-a", "liba"], ["app-b", "libb"], ["libshared"], ["profile"]]);
  });

  it("a large item that nothing small depends on stays alone; small leaf tools never join it", () => {
    const tools: ItemDef[] = [
      { name: "profile", size: 1000, refs: ["big", "tool1", "tool2", "tool3"] },
      { name: "big", size: 500_000_000, refs: [] },
      { name: "tool1", size: 200, refs: ["libc"] },
      { name: "tool2", size: 300, refs: ["libc"] },
      { name: "tool3", size: 100, refs: ["libc"] },
      { name: "libc", size: 30_000_000, refs: [] },
    ];
    const groups = grouping(plan(closureOf(tools), 4));
    expect(groups).toContainEqual(["big"]);
    expect(groups.flat().sort()).toEqual(["big", "libc", "profile", "tool1", "tool2", "tool3"]);
  });

  it("the profile, which every update changes, gets a layer with nothing but what depends on everything", () => {
    const p = plan(closureOf(defs), 5);
    const profileLayer = p.layers.find((l) => l.kind === "store" && l.items.some((i) => i.path === storePath("profile")));
    expect(profileLayer?.kind === "store" && profileLayer.items.length).toBe(1);
    // Image order: the layer fewest updates touch at the bottom, the profile on top of the store layers.
    expect(layerNames(p).at(-2)).toEqual(["profile"]);
    expect(layerNames(p)[0]).toEqual(["libshared"]);
  });

  it("says why items share a layer", () => {
    const p = plan(closureOf(defs), 5);
    const reasons = p.layers.flatMap((l) => (l.kind === "store" ? [l.reason] : []));
    expect(reasons).toContainEqual("app-a with 1 item it uses (1001 B): updating one of them changes app-a too, so the layer changes only when one of the 3 items of app-a's closure is updated");
    expect(reasons).toContainEqual("libshared (1000 B) alone: changes only when it is updated");
    expect(reasons).toContainEqual("profile (10 B) alone: changes only when one of the 6 items of its closure is updated");
    const roots = plan(
      closureOf([
        { name: "env-a", size: 10, refs: ["t1", "t2"] },
        { name: "env-b", size: 10, refs: ["t1", "t2"] },
        { name: "t1", size: 1000, refs: [] },
        { name: "t2", size: 1000, refs: [] },
      ]),
      3,
    );
    expect(roots.layers.map((l) => l.kind === "store" && l.reason)).toEqual([
      "2 items (2.0 KiB) put together to stay within max layers; no one update changes them all",
      "2 roots or items depending on the whole closure (20 B): every update changes them all, so they share a small layer of their own",
      false,
    ]);
    // Everything in one layer (as when a sticky plan places new items apart): nothing is outside it to depend on.
    const alone = closureOf([
      { name: "profile", size: 10, refs: ["newtool"] },
      { name: "newtool", size: 100, refs: [] },
    ]);
    expect(groupBySharing(alone.items, 1).map((g) => g.reason)).toEqual([
      "profile with 1 item it uses (110 B): updating one of them changes profile too, so the layer changes only when one of the 2 items of profile's closure is updated",
    ]);
  });

  it("max 2: one store layer with everything", () => {
    const p = plan(closureOf(defs), 2);
    expect(p.layers.length).toBe(2);
    expect(layerNames(p)[0]).toHaveLength(6);
  });

  it("small items join the layer that costs least by the model, not a rank: big items alone, one shared small layer", () => {
    const MB = 1e6;
    const defs: ItemDef[] = [
      { name: "profile", size: 10 * MB, refs: ["big-app", "app2"] },
      { name: "big-app", size: 200 * MB, refs: ["libonly", "libmid", "libshared", "libhuge"] },
      { name: "libonly", size: 1 * MB, refs: ["libdeep"] },
      { name: "libdeep", size: 0.5 * MB, refs: [] },
      { name: "libmid", size: 55 * MB, refs: [] },
      { name: "libshared", size: 1 * MB, refs: [] },
      { name: "libhuge", size: 60 * MB, refs: [] },
      { name: "app2", size: 5 * MB, refs: ["libshared"] },
    ];
    // max 7: 6 store layers for 8 items, so two merges; the large items each stay alone.
    const c = closureOf(defs);
    const p = plan(c, 7);
    const groups = grouping(p);
    for (const alone of ["big-app", "libhuge", "libmid", "profile", "app2"]) expect(groups).toContainEqual([alone]);
    expect(groups).toContainEqual(["libdeep", "libonly", "libshared"]);
    // The alternative a rank-based rule picks (the private libraries with big-app) costs more in the model.
    const layersOf = (names: string[][]) => names.map((g) => ({ items: g.map((n) => ({ path: storePath(n) })) }));
    const chosen = objective(c.items, layersOf(groups));
    const byRank = objective(c.items, layersOf([["big-app", "libdeep", "libonly"], ["libshared"], ["libhuge"], ["libmid"], ["profile"], ["app2"]]));
    expect(chosen).toBeLessThan(byRank);
  });

  it("the root is never a large item that others join, though it uses everything", () => {
    const defs: ItemDef[] = [
      { name: "profile", size: 500_000_000, refs: ["a", "b", "c"] },
      { name: "a", size: 100, refs: [] },
      { name: "b", size: 200, refs: [] },
      { name: "c", size: 300, refs: [] },
    ];
    expect(grouping(plan(closureOf(defs), 4))).toContainEqual(["profile"]);
  });

  it("refuses a reference cycle and a reference outside the closure", () => {
    const cyc = closureOf([
      { name: "a", refs: ["b"] },
      { name: "b", refs: ["a"] },
    ]);
    expect(() => groupBySharing(cyc.items, 1)).toThrow(PlanError);
    expect(() => groupBySharing(cyc.items, 1)).toThrow(/reference cycle/);
    const broken = closureOf([{ name: "a", refs: ["missing"] }]).items;
    expect(() => groupBySharing(broken, 1)).toThrow(/not in the closure/);
  });
});

/** The objective the strategy lowers (sharing-state.ts), computed here from scratch: Σ_L bytes(L) · Σ_{P ∈ T_L} 1/(changed(P) + 1). */
function objective(items: readonly { path: string; narSize: number; references: string[] }[], groups: { items: { path: string }[] }[]): number {
  const byPath = new Map(items.map((it) => [it.path, it]));
  const closures = new Map<string, Set<string>>();
  const closure = (p: string): Set<string> => {
    let c = closures.get(p);
    if (c) return c;
    c = new Set([p]);
    for (const r of byPath.get(p)!.references) if (r !== p) for (const q of closure(r)) c.add(q);
    closures.set(p, c);
    return c;
  };
  const changed = new Map<string, number>();
  for (const it of items) for (const p of closure(it.path)) changed.set(p, (changed.get(p) ?? 0) + sizeClass(it.narSize));
  let sum = 0;
  for (const g of groups) {
    const triggers = new Set(g.items.flatMap((it) => [...closure(it.path)]));
    const bytes = g.items.reduce((n, it) => n + sizeClass(byPath.get(it.path)!.narSize), 0);
    for (const p of triggers) sum += bytes / (sizeClass(changed.get(p)!) + 1);
  }
  return sum;
}

describe("sharing strategy: the summed update cost", () => {
  it("is lower than the size strategy's on random closures", () => {
    const rand = prng(31);
    let sharingSum = 0;
    let sizeSum = 0;
    let lower = 0;
    for (let round = 0; round < 30; round++) {
      const closure = randomClosure(rand, 20 + Math.floor(rand() * 120), { maxSize: 1e7 });
      const max = 4 + Math.floor(rand() * 15);
      const storeLayers = (p: LayerPlan) => p.layers.flatMap((l) => (l.kind === "store" ? [l] : []));
      const sharing = objective(closure.items, storeLayers(plan(closure, max)));
      const size = objective(closure.items, storeLayers(planLayers(specOf({ roots: ["/x"], layers: { max, strategy: "size" } }), closure)));
      sharingSum += Math.log(sharing);
      sizeSum += Math.log(size);
      if (sharing < size) lower++;
    }
    expect(lower).toBeGreaterThanOrEqual(27);
    expect(Math.exp((sharingSum - sizeSum) / 30)).toBeLessThan(0.8);
  });
});
