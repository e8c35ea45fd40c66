import { describe, expect, it } from "vitest";
import { placeItems, planLayers } from "../../src/plan/index.ts";
import { distroClosure, updateClosure } from "../../bench/closures.ts";
import { repullAgainst, stickyOrFresh, stickyStoreLayers } from "../../src/plan/sticky.ts";
import type { LayerPlan, StoreLayer } from "../../src/plan/types.ts";
import type { Closure, StoreItem } from "../../src/store/types.ts";
import { byBytes, closureOf, layerNames, nameOf, prng, randomClosure, specOf, storePath, type ItemDef } from "./fixtures.ts";

type Strategy = "size" | "popularity" | "sharing";
const plan = (c: Closure, max: number, strategy: Strategy = "size", previous?: LayerPlan) =>
  planLayers(specOf({ name: "t", layers: { max, strategy } }), c, previous ? { previous } : {});

const defs: ItemDef[] = [
  { name: "profile", size: 10, refs: ["app", "tool", "glibc"] },
  { name: "app", size: 500, refs: ["lib", "glibc"] },
  { name: "lib", size: 400, refs: ["glibc"] },
  { name: "tool", size: 300, refs: ["glibc"] },
  { name: "glibc", size: 1000 },
  { name: "tzdata", size: 50 },
  { name: "locales", size: 40 },
];

/** Replaces item `name` by `newName` (a new version, another size) and rewrites every reference to it. */
function update(list: ItemDef[], name: string, newName: string, size: number): ItemDef[] {
  return list.map((d) => (d.name === name ? { name: newName, size, refs: d.refs ?? [] } : { ...d, refs: (d.refs ?? []).map((r) => (r === name ? newName : r)) }));
}

/** Store layers whose item sets are not in `old`: what a host re-pulls. */
function repull(old: LayerPlan, neu: LayerPlan): number {
  const ids = new Set(old.layers.filter((l) => l.kind === "store").map((l) => JSON.stringify(l.items)));
  return neu.layers.filter((l): l is StoreLayer => l.kind === "store" && !ids.has(JSON.stringify(l.items))).reduce((n, l) => n + l.size, 0);
}

function expectValid(p: LayerPlan, c: Closure, max: number): void {
  expect(p.layers.length).toBeLessThanOrEqual(max);
  const placed = p.layers.flatMap((l) => (l.kind === "store" ? l.items.map((it) => it.path) : []));
  expect(placed.sort(byBytes)).toEqual(c.items.map((it) => it.path));
  for (const l of p.layers) if (l.kind === "store") expect(l.items.length).toBeGreaterThan(0);
  expect(p.layers.at(-1)!.kind).toBe(max === 1 ? "store" : "customisation");
  expect(p.totals.layers).toBe(p.layers.length);
}

describe("sticky planning", () => {
  it("gives the same plan as without it when nothing changed, and is a fixed point", () => {
    const c = closureOf(defs, { profile: "profile" });
    for (const strategy of ["size", "popularity"] as const) {
      for (const max of [2, 3, 5, 100]) {
        const p = plan(c, max, strategy);
        expect(plan(c, max, strategy, p)).toEqual(p);
      }
    }
  });

  it("keeps every still-valid layer where it was and puts the new items above them", () => {
    const c0 = closureOf(defs, { profile: "profile" });
    const p0 = plan(c0, 5);
    expect(layerNames(p0)).toEqual([["glibc"], ["app"], ["lib"], ["locales", "profile", "tool", "tzdata"], ["<custom>"]]);
    // tool 300 -> 350 bytes: a new tool item and a new profile; the shared layer is broken.
    const c1 = closureOf(update(update(defs, "tool", "tool-2", 350), "profile", "profile-2", 10), { profile: "profile-2" });
    const sticky = plan(c1, 5, "size", p0);
    expect(layerNames(sticky)).toEqual([["glibc"], ["app"], ["lib"], ["locales", "profile-2", "tool-2", "tzdata"], ["<custom>"]]);
    expectValid(sticky, c1, 5);
    // tool grows past lib (300 -> 450 bytes): without the previous plan, tool-2 takes lib's own layer and lib
    // joins the shared layer, so both change; with it, lib keeps its layer and only the shared one changes.
    const c2 = closureOf(update(update(defs, "tool", "tool-2", 450), "profile", "profile-2", 10), { profile: "profile-2" });
    const fresh = plan(c2, 5);
    const kept = plan(c2, 5, "size", p0);
    expect(layerNames(fresh)).toEqual([["glibc"], ["app"], ["tool-2"], ["lib", "locales", "profile-2", "tzdata"], ["<custom>"]]);
    expect(layerNames(kept)).toEqual([["glibc"], ["app"], ["lib"], ["locales", "profile-2", "tool-2", "tzdata"], ["<custom>"]]);
    expect(repull(p0, fresh)).toBe(450 + (400 + 40 + 10 + 50));
    expect(repull(p0, kept)).toBe(450 + 40 + 10 + 50);
  });

  it("keeps a broken layer's other items together and gives a new root (the profile) a layer of its own", () => {
    const c0 = closureOf(defs, { profile: "profile" });
    const bump = (list: ItemDef[], n: number) => update(update(list, "app", `app-${n}`, 500), "profile", `profile-${n}`, 10);
    const c1 = closureOf(bump(defs, 2), { profile: "profile-2" });
    // Room to spare: app-2 and profile-2 each get a layer above the kept ones.
    const roomy = plan(c1, 100, "size", plan(c0, 100));
    expect(layerNames(roomy)).toEqual([["glibc"], ["lib"], ["tool"], ["tzdata"], ["locales"], ["app-2"], ["profile-2"], ["<custom>"]]);
    expect(roomy.layers.at(-2)).toMatchObject({ reason: "the new root item (nothing refers to it; it changes with every update)" });
    // A full budget: the shared layer's survivors join the new app, the profile still goes alone.
    const p0 = plan(c0, 5);
    const tight = plan(c1, 5, "size", p0);
    expect(layerNames(tight)).toEqual([["glibc"], ["lib"], ["app-2", "locales", "tool", "tzdata"], ["profile-2"], ["<custom>"]]);
    expect(repull(p0, tight)).toBe(500 + 40 + 300 + 50 + 10);
    expect(repull(p0, plan(c1, 5))).toBe(500 + 400);
  });

  it("with regroupSurvivors (the sharing strategy), places a broken layer's unchanged items again with the new ones", () => {
    const c0 = closureOf(defs, { profile: "profile" });
    const p0 = plan(c0, 5);
    const c1 = closureOf(update(update(defs, "tool", "tool-2", 350), "profile", "profile-2", 10), { profile: "profile-2" });
    const given: string[][] = [];
    const place = (free: StoreItem[]): StoreLayer[] => {
      given.push(free.map((it) => nameOf(it.path)).sort());
      return [{ kind: "store", size: free.reduce((n, it) => n + it.narSize, 0), items: free.map((it) => ({ path: it.path, size: it.narSize })).sort((a, b) => byBytes(a.path, b.path)) }];
    };
    stickyStoreLayers(c1.items, p0, 6, place);
    expect(given).toEqual([["tool-2"]]);
    given.length = 0;
    const layers = stickyStoreLayers(c1.items, p0, 6, place, { regroupSurvivors: true });
    expect(given).toEqual([["locales", "tool-2", "tzdata"]]);
    expect(layers.map((l) => l.items.map((it) => nameOf(it.path)).sort())).toEqual([["glibc"], ["app"], ["lib"], ["locales", "tool-2", "tzdata"], ["profile-2"]]);
  });

  it("sharing with sticky plans stays close to fresh plans over many updates in a row", () => {
    // Three chains of updates: fresh plans; sticky plans (survivors regrouped, as planLayers does for sharing); and
    // sticky plans that keep the survivors of broken layers together, as for the other strategies.
    const d = distroClosure({ items: 200, totalBytes: 4e8, seed: 4 });
    const max = 40;
    const sharingSpec = specOf({ name: "t", layers: { max, strategy: "sharing" } });
    let fresh = plan(d.closure, max, "sharing");
    let [sticky, kept] = [fresh, fresh];
    let closure = d.closure;
    const rand = prng(9);
    let [pullFresh, pullSticky, pullKept] = [0, 0, 0];
    for (let step = 0; step < 20; step++) {
      const candidates = closure.items.filter((it) => !closure.roots.includes(it.path));
      const next = updateClosure(closure, candidates[Math.floor(rand() * candidates.length)]!.path, 50 + step);
      const f = plan(next, max, "sharing");
      const s = plan(next, max, "sharing", sticky);
      const k: LayerPlan = { ...s, layers: [...stickyStoreLayers(next.items, kept, max - 1, (free, budget) => placeItems(sharingSpec, free, budget)), s.layers.at(-1)!] };
      expectValid(s, next, max);
      expectValid(k, next, max);
      pullFresh += repull(fresh, f);
      pullSticky += repull(sticky, s);
      pullKept += repull(kept, k);
      [fresh, sticky, kept, closure] = [f, s, k, next];
    }
    expect(pullSticky).toBeLessThan(pullKept);
    expect(pullSticky).toBeLessThan(1.25 * pullFresh);
  });

  it("gives up the smallest kept layers when the budget is full", () => {
    const c0 = closureOf(defs, { profile: "profile" });
    const p0 = plan(c0, 100); // every item in its own layer
    const c1 = closureOf([...defs, { name: "extra", size: 5 }], { profile: "profile" });
    expect(layerNames(plan(c1, 100, "size", p0)).at(-2)).toEqual(["extra"]);
    // With max 8 there is room for 7 store layers: all 7 kept ones and one for the new item does not fit,
    // so the smallest kept layer (profile, 10) gives its item up to share a layer with the new one.
    const tight = plan(c1, 8, "size", p0);
    expect(layerNames(tight)).toEqual([["glibc"], ["app"], ["lib"], ["tool"], ["tzdata"], ["locales"], ["extra", "profile"], ["<custom>"]]);
    expectValid(tight, c1, 8);
    // A smaller max than the previous plan had: still at most max layers.
    expectValid(plan(c0, 3, "size", p0), c0, 3);
    expectValid(plan(c0, 1, "size", p0), c0, 1);
  });

  it("gives up layers that lost an item, or whose item changed size, or that repeat an item", () => {
    const c0 = closureOf(defs, { profile: "profile" });
    const p0 = plan(c0, 4);
    const items = (names: string[]): StoreItem[] => c0.items.filter((it) => names.some((n) => it.path === storePath(n)));
    const place = (free: StoreItem[]) => [{ kind: "store" as const, size: 0, reason: "free", items: free.map((it) => ({ path: it.path, size: it.narSize })) }];
    // The shared layer lost "tool": a new blob either way, but its other items stay together.
    const without = c0.items.filter((it) => it.path !== storePath("tool"));
    const layers = stickyStoreLayers(without, p0, 3, place);
    expect(layers.map((l) => l.reason)).toEqual(["size rank 1: 1000 bytes", "size rank 2: 500 bytes", "the 4 unchanged items of a previous layer whose other items changed"]);
    expect(layers[2]!.items.map((it) => it.path)).toEqual(["lib", "locales", "profile", "tzdata"].map((n) => storePath(n)).sort(byBytes));
    // A resized item is not the same item.
    const resized = c0.items.map((it) => (it.path === storePath("glibc") ? { ...it, narSize: 999 } : it));
    expect(stickyStoreLayers(resized, p0, 3, place).map((l) => l.reason)).toEqual(["size rank 2: 500 bytes", "the 5 smallest items share this layer (max 4 layers)", "free"]);
    // A hand-edited previous plan naming an item twice never makes it appear twice.
    const dup: LayerPlan = { ...p0, layers: [p0.layers[0]!, p0.layers[0]!, ...p0.layers.slice(1)] };
    const out = stickyStoreLayers(c0.items, dup, 3, place).flatMap((l) => l.items.map((it) => it.path));
    expect(out.sort(byBytes)).toEqual(c0.items.map((it) => it.path));
    expect(items(["glibc"])).toHaveLength(1);
  });

  it("never produces an invalid plan (random closures, random updates, random budgets)", () => {
    const rand = prng(62);
    for (let round = 0; round < 300; round++) {
      const count = 1 + Math.floor(rand() * 40);
      const c0 = randomClosure(rand, count, { maxSize: 1000 });
      const strategy: Strategy = (["size", "popularity", "sharing"] as const)[Math.floor(rand() * 3)]!;
      const max0 = 1 + Math.floor(rand() * 12);
      const p0 = plan(c0, max0, strategy);
      // Update: drop some items, resize some (a new path, as a new version would be), add a few new ones.
      const defs1: ItemDef[] = [];
      for (const it of c0.items) {
        const name = it.path.slice(it.path.indexOf("-") + 1);
        const r = rand();
        if (r < 0.1) continue;
        const refs = it.references.map((p) => p.slice(p.indexOf("-") + 1));
        if (r < 0.25) defs1.push({ name: `${name}-v2`, size: Math.floor(rand() * 1000), refs: refs.filter((x) => x === name) });
        else defs1.push({ name, size: it.narSize, refs: refs.filter((x) => c0.items.some((o) => o.path === storePath(x))) });
      }
      for (let k = Math.floor(rand() * 4); k > 0; k--) defs1.push({ name: `new${round}-${k}`, size: Math.floor(rand() * 1000) });
      if (defs1.length === 0) defs1.push({ name: "only" });
      const c1 = closureOf(defs1.filter((d, i) => defs1.findIndex((e) => e.name === d.name) === i).map((d) => ({ ...d, refs: (d.refs ?? []).filter((r) => defs1.some((e) => e.name === r)) })));
      const max1 = rand() < 0.5 ? max0 : 1 + Math.floor(rand() * 12);
      const p1 = plan(c1, max1, strategy, p0);
      expectValid(p1, c1, max1);
      // Planning again with the result as previous changes nothing.
      expect(plan(c1, max1, strategy, p1)).toEqual(p1);
    }
  });
});

describe("sticky or fresh: whichever re-pulls less against the previous plan", () => {
  const layer = (names: string[], size: number): StoreLayer => ({ kind: "store", size, items: names.map((n) => ({ path: storePath(n), size: size / names.length })) });
  const previous: LayerPlan = {
    version: 1, name: "t", storeDir: "/gnu/store", strategy: "sharing", max: 4,
    layers: [layer(["a"], 100), layer(["b", "c"], 200), { kind: "customisation", entries: [] }],
    totals: { items: 3, bytes: 300, layers: 3 },
  };
  const sticky = [layer(["a"], 100), layer(["b", "c2"], 150)]; // re-pulls 150
  it("counts the bytes of layers whose exact item set the previous plan lacks", () => {
    expect(repullAgainst(previous, sticky)).toBe(150);
    expect(repullAgainst(previous, [layer(["c", "b"], 200)])).toBe(0);
  });
  it("keeps the sticky layers on a tie and when they re-pull less; takes fresh ones that re-pull less", () => {
    expect(stickyOrFresh(previous, sticky, () => [layer(["a", "c2"], 150), layer(["b"], 100)])).toBe(sticky); // 250 > 150
    expect(stickyOrFresh(previous, sticky, () => [layer(["x"], 150)])).toBe(sticky); // tie
    const better = [layer(["a"], 100), layer(["b", "c"], 200), layer(["c2"], 50)]; // re-pulls 50
    expect(stickyOrFresh(previous, sticky, () => better)).toBe(better);
  });
  it("with realign 2, follows the fresh layers unless they re-pull over twice as much", () => {
    const fresh = [layer(["a", "b"], 200), layer(["c2"], 100)]; // 300 = 2 x 150
    expect(stickyOrFresh(previous, sticky, () => fresh, 1)).toBe(sticky);
    expect(stickyOrFresh(previous, sticky, () => fresh, 2)).toBe(fresh);
    expect(stickyOrFresh(previous, sticky, () => [layer(["a", "b", "c2"], 301)], 2)).toBe(sticky);
  });
});
