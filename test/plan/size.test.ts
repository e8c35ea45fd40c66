import { describe, expect, it } from "vitest";
import { planLayers } from "../../src/plan/index.ts";
import { orderBySize, ownLayerCount } from "../../src/plan/size.ts";
import { closureOf, layerNames, specOf, storePath } from "./fixtures.ts";

// Five items of distinct sizes: e is the largest, a the smallest; names sort the opposite way to sizes.
const five = closureOf(
  [
    { name: "a", size: 10 },
    { name: "b", size: 20 },
    { name: "c", size: 30 },
    { name: "d", size: 40 },
    { name: "e", size: 50 },
  ],
  { profile: "e" },
);

const C = "<custom>";

describe("size strategy (Guix): layer split by max", () => {
  const table: { max: number; layers: string[][] }[] = [
    { max: 2, layers: [["a", "b", "c", "d", "e"], [C]] },
    { max: 3, layers: [["e"], ["a", "b", "c", "d"], [C]] },
    { max: 4, layers: [["e"], ["d"], ["a", "b", "c"], [C]] },
    // count == max: max-2 own layers, the rest share one
    { max: 5, layers: [["e"], ["d"], ["c"], ["a", "b"], [C]] },
    // count == max-1: every item alone, exactly max layers
    { max: 6, layers: [["e"], ["d"], ["c"], ["b"], ["a"], [C]] },
    // fewer items than max-1: every item alone, fewer layers than max
    { max: 7, layers: [["e"], ["d"], ["c"], ["b"], ["a"], [C]] },
    { max: 100, layers: [["e"], ["d"], ["c"], ["b"], ["a"], [C]] },
  ];
  for (const row of table) {
    it(`max ${row.max}`, () => {
      const plan = planLayers(specOf({ layers: { max: row.max, strategy: "size" } }), five);
      expect(layerNames(plan)).toEqual(row.layers);
      expect(plan.totals).toEqual({ items: 5, bytes: 150, layers: row.layers.length });
      expect(plan.layers.length).toBeLessThanOrEqual(row.max);
    });
  }

  it("max 1 puts the store items and the customisation entries in one layer", () => {
    const plan = planLayers(specOf({ layers: { max: 1 }, symlinks: ["/bin=bin"] }), five);
    expect(plan.layers).toHaveLength(1);
    const only = plan.layers[0]!;
    expect(only.kind).toBe("store");
    if (only.kind !== "store") return;
    expect(only.items.map((i) => i.path)).toEqual(five.items.map((i) => i.path));
    expect(only.size).toBe(150);
    expect(only.entries).toEqual([
      { path: "/bin", type: "symlink", target: `${storePath("e")}/bin` },
      { path: "/tmp", type: "directory", mode: "1777" },
    ]);
    expect(plan.totals).toEqual({ items: 5, bytes: 150, layers: 1 });
  });

  it("more items than max: 100 items, max 3 and max 100", () => {
    const many = closureOf(Array.from({ length: 100 }, (_, i) => ({ name: `p${String(i).padStart(3, "0")}`, size: 1000 + i })));
    const three = planLayers(specOf({ roots: ["/x"], layers: { max: 3, strategy: "size" } }), many);
    expect(layerNames(three).map((l) => l.length)).toEqual([1, 99, 1]);
    expect(layerNames(three)[0]).toEqual(["p099"]);
    const hundred = planLayers(specOf({ roots: ["/x"], layers: { max: 100, strategy: "size" } }), many);
    expect(hundred.layers).toHaveLength(100);
    // the 98 largest alone, largest at the bottom; the 2 smallest share the 99th layer
    expect(layerNames(hundred).slice(0, 3)).toEqual([["p099"], ["p098"], ["p097"]]);
    expect(layerNames(hundred)[98]).toEqual(["p000", "p001"]);
    expect(hundred.layers[98]).toMatchObject({ kind: "store", size: 2001 });
  });

  it("one item, and an empty closure", () => {
    const one = closureOf([{ name: "solo", size: 7 }]);
    for (const max of [2, 3, 100]) {
      expect(layerNames(planLayers(specOf({ roots: ["/x"], layers: { max } }), one))).toEqual([["solo"], [C]]);
    }
    const none = closureOf([]);
    expect(layerNames(planLayers(specOf({ roots: ["/x"], layers: { max: 5 } }), none))).toEqual([[C]]);
    const single = planLayers(specOf({ roots: ["/x"], layers: { max: 1 } }), none);
    expect(single.layers).toEqual([{ kind: "store", size: 0, reason: expect.any(String), items: [], entries: [{ path: "/tmp", type: "directory", mode: "1777" }] }]);
  });

  it("breaks size ties by path, bytewise, whatever the input order", () => {
    const tied = closureOf([
      { name: "x", size: 5 },
      { name: "y", size: 5 },
      { name: "z", size: 5 },
      { name: "big", size: 9 },
    ]);
    const byPath = tied.items.filter((i) => i.narSize === 5).map((i) => i.path);
    const expected = [storePath("big"), ...byPath];
    expect(orderBySize(tied.items).map((i) => i.path)).toEqual(expected);
    expect(orderBySize([...tied.items].reverse()).map((i) => i.path)).toEqual(expected);
  });

  it("labels each layer with the reason it exists", () => {
    const plan = planLayers(specOf({ layers: { max: 3, strategy: "size" } }), five);
    expect(plan.layers[0]).toMatchObject({ reason: "size rank 1: 50 bytes" });
    expect(plan.layers[1]).toMatchObject({ reason: "the 4 smallest items share this layer (max 3 layers)" });
  });
});

describe("ownLayerCount", () => {
  const table: [count: number, max: number, own: number][] = [
    [0, 2, 0], [1, 2, 0], [5, 2, 0],
    [1, 3, 0], [2, 3, 1], [3, 3, 1], [9, 3, 1],
    [4, 5, 3], [5, 5, 3], [6, 5, 3], [3, 5, 2],
    [98, 100, 97], [99, 100, 98], [100, 100, 98], [5000, 100, 98],
  ];
  for (const [count, max, own] of table) {
    it(`${count} items, max ${max} -> ${own} own layers`, () => {
      expect(ownLayerCount(count, max)).toBe(own);
      // own + shared + customisation never exceeds max, and the shared layer is never empty
      if (count > 0) {
        expect(own + 2).toBeLessThanOrEqual(max);
        expect(count - own).toBeGreaterThanOrEqual(1);
      }
    });
  }
});
