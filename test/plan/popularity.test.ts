import { describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { planLayers } from "../../src/plan/index.ts";
import { orderByPopularity, packageNameKey, popularityContest } from "../../src/plan/popularity.ts";
import type { StoreItem } from "../../src/store/types.ts";
import { closureOf, layerNames, nameOf, prng, randomClosure, specOf, storePath } from "./fixtures.ts";

/** The dependency tree of closure-graph.py's docstring: A-B-C-D-F, C-E-F, B-E, A-G. */
const docstringGraph = closureOf(
  [
    { name: "A", refs: ["A", "B", "G"] },
    { name: "B", refs: ["C", "E"] },
    { name: "C", refs: ["D", "E"] },
    { name: "D", refs: ["F"] },
    { name: "E", refs: ["F"] },
    { name: "F", refs: ["F"] },
    { name: "G" },
  ],
  { dir: "/nix/store", profile: "A" },
);

function popularityByName(items: StoreItem[]): Record<string, number> {
  return Object.fromEntries([...popularityContest(items)].map(([p, n]) => [nameOf(p), Number(n)]));
}

/**
 * A slow, literal reference: fold each node's children into a tally map (child +1, each of the child's
 * descendants + its count + 1), memoised per node, then fold the roots the same way.
 */
function referenceContest(items: StoreItem[]): Map<string, bigint> {
  const refs = new Map(items.map((it) => [it.path, [...new Set(it.references)].filter((r) => r !== it.path)]));
  const memo = new Map<string, Map<string, bigint>>();
  const fold = (children: string[]): Map<string, bigint> => {
    const out = new Map<string, bigint>();
    for (const c of children) {
      out.set(c, (out.get(c) ?? 0n) + 1n);
      let sub = memo.get(c);
      if (!sub) memo.set(c, (sub = fold(refs.get(c)!)));
      for (const [d, n] of sub) out.set(d, (out.get(d) ?? 0n) + n + 1n);
    }
    return out;
  };
  const roots = items.filter((it) => !items.some((o) => o !== it && refs.get(o.path)!.includes(it.path))).map((it) => it.path);
  return fold(roots);
}

describe("popularity contest (nixpkgs closure-graph.py)", () => {
  it("gives the docstring's popularity for each path", () => {
    expect(popularityByName(docstringGraph.items)).toEqual({ A: 1, B: 2, C: 3, D: 4, E: 5, F: 9, G: 2 });
  });

  it("orders the docstring example F E D C B G A", () => {
    expect(orderByPopularity(docstringGraph.items).ordered.map((i) => nameOf(i.path))).toEqual(["F", "E", "D", "C", "B", "G", "A"]);
  });

  it("counts the script's unit-test graph foo 1, bar 2, baz 4, tux 6", () => {
    const items = closureOf(
      [
        { name: "foo", refs: ["foo", "bar", "baz"] },
        { name: "bar", refs: ["bar", "baz"] },
        { name: "baz", refs: ["baz", "tux"] },
        { name: "tux", refs: ["tux"] },
      ],
      { dir: "/nix/store" },
    ).items;
    expect(popularityByName(items)).toEqual({ foo: 1, bar: 2, baz: 4, tux: 6 });
    expect(orderByPopularity(items).ordered.map((i) => nameOf(i.path))).toEqual(["tux", "baz", "bar", "foo"]);
  });

  it("orders equal popularity by name, then hash, not by the hash first", () => {
    // Four unrelated roots, all popularity 1; by path the hash decides, by the script's key the name does.
    const items = closureOf([{ name: "foo" }, { name: "bar" }, { name: "baz" }, { name: "tux" }], { dir: "/nix/store" }).items;
    expect(orderByPopularity(items).ordered.map((i) => nameOf(i.path))).toEqual(["bar", "baz", "foo", "tux"]);
    expect(packageNameKey("/nix/store/abc-hello-2.12")).toBe("hello-2.12-/nix/store/abc");
    expect(packageNameKey("/nix/store/abc")).toBe("/nix/store/abc");
  });

  it("agrees with the literal reference on random closures", () => {
    const rand = prng(42);
    for (let round = 0; round < 30; round++) {
      const closure = randomClosure(rand, 1 + Math.floor(rand() * 40));
      expect(popularityContest(closure.items)).toEqual(referenceContest(closure.items));
    }
  });

  it("stays exact past 2^53 (a ladder of 60 diamonds)", () => {
    const defs = [];
    for (let i = 0; i < 60; i++) {
      defs.push({ name: `top${i}`, refs: [`left${i}`, `right${i}`] });
      defs.push({ name: `left${i}`, refs: [`top${i + 1}`] });
      defs.push({ name: `right${i}`, refs: [`top${i + 1}`] });
    }
    defs.push({ name: "top60" });
    const items = closureOf(defs).items;
    const fast = popularityContest(items);
    const bottom = fast.get(storePath("top60"))!;
    expect(bottom > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(fast).toEqual(referenceContest(items));
  });

  it("refuses a reference cycle and a reference outside the closure", () => {
    const cyclic = closureOf([{ name: "a", refs: ["b"] }, { name: "b", refs: ["c"] }, { name: "c", refs: ["b"] }]).items;
    expect(() => popularityContest(cyclic)).toThrow(PlanError);
    expect(() => popularityContest(cyclic)).toThrow(/reference cycle.*-b -> .*-c -> .*-b/);
    const dangling = closureOf([{ name: "a" }]).items.map((it) => ({ ...it, references: [storePath("ghost")] }));
    expect(() => popularityContest(dangling)).toThrow(/refers to .*-ghost, which is not in the closure/);
  });
});

describe("popularity strategy (Nix buildLayeredImage split)", () => {
  const table: { max: number; layers: string[][] }[] = [
    { max: 2, layers: [["A", "B", "C", "D", "E", "F", "G"], ["<custom>"]] },
    { max: 4, layers: [["F"], ["E"], ["A", "B", "C", "D", "G"], ["<custom>"]] },
    { max: 8, layers: [["F"], ["E"], ["D"], ["C"], ["B"], ["G"], ["A"], ["<custom>"]] },
    { max: 100, layers: [["F"], ["E"], ["D"], ["C"], ["B"], ["G"], ["A"], ["<custom>"]] },
  ];
  for (const row of table) {
    it(`max ${row.max}`, () => {
      const plan = planLayers(specOf({ store: "/nix/store", layers: { max: row.max, strategy: "popularity" } }), docstringGraph);
      expect(layerNames(plan)).toEqual(row.layers);
      expect(plan.strategy).toBe("popularity");
    });
  }

  it("labels layers with their popularity", () => {
    const plan = planLayers(specOf({ store: "/nix/store", layers: { max: 4, strategy: "popularity" } }), docstringGraph);
    expect(plan.layers.slice(0, 3).map((l) => (l.kind === "store" ? l.reason : ""))).toEqual([
      "popularity rank 1: popularity 9",
      "popularity rank 2: popularity 5",
      "the 5 least popular items share this layer (max 4 layers)",
    ]);
  });
});
