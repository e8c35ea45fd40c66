import { describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { planLayers } from "../../src/plan/index.ts";
import { layerPlanSchema, type LayerPlan } from "../../src/plan/types.ts";
import type { Closure } from "../../src/store/types.ts";
import { byBytes, closureOf, prng, randomClosure, shuffled, specOf, storePath } from "./fixtures.ts";

const strategies = ["size", "popularity"] as const;

/** The invariants every plan must keep, whatever the closure, max and strategy. */
function checkInvariants(plan: LayerPlan, closure: Closure, max: number): void {
  expect(layerPlanSchema.parse(plan)).toEqual(plan);
  expect(plan.layers.length).toBeLessThanOrEqual(max);
  expect(plan.totals.layers).toBe(plan.layers.length);
  const seen = plan.layers.flatMap((l) => (l.kind === "store" ? l.items.map((i) => i.path) : []));
  expect([...seen].sort(byBytes)).toEqual(closure.items.map((i) => i.path)); // each item exactly once
  expect(plan.totals.items).toBe(closure.items.length);
  expect(plan.totals.bytes).toBe(closure.items.reduce((s, i) => s + i.narSize, 0));
  plan.layers.forEach((l, i) => {
    if (l.kind !== "store") {
      expect(i).toBe(plan.layers.length - 1);
      return;
    }
    if (max > 1) expect(l.items.length).toBeGreaterThan(0); // no empty store layers
    expect(l.items.map((x) => x.path)).toEqual(l.items.map((x) => x.path).sort(byBytes));
    expect(l.size).toBe(l.items.reduce((s, x) => s + x.size, 0));
    expect(l.entries !== undefined).toBe(max === 1);
  });
  if (max > 1) {
    expect(plan.layers.at(-1)!.kind).toBe("customisation");
    // all layers allowed are used once there are enough items
    if (closure.items.length >= max - 1) expect(plan.layers.length).toBe(max);
    else expect(plan.layers.length).toBe(closure.items.length + 1);
  }
}

describe("planLayers properties over random closures", () => {
  for (const strategy of strategies) {
    it(`${strategy}: every item in exactly one layer, at most max layers, no empty layer`, () => {
      const rand = prng(strategy === "size" ? 1 : 2);
      for (let round = 0; round < 150; round++) {
        const closure = randomClosure(rand, Math.floor(rand() * 60));
        const max = 1 + Math.floor(rand() * (round % 3 === 0 ? 5 : 127));
        const plan = planLayers(specOf({ roots: ["/x"], layers: { max, strategy } }), closure);
        checkInvariants(plan, closure, max);
      }
    });
  }
});

describe("determinism", () => {
  for (const strategy of strategies) {
    it(`${strategy}: shuffled items and references give the same plan`, () => {
      const rand = prng(7);
      for (let round = 0; round < 20; round++) {
        const closure = randomClosure(rand, 30, { maxSize: 3 }); // small sizes: many ties
        const max = 2 + Math.floor(rand() * 30);
        const spec = specOf({ roots: ["/x"], layers: { max, strategy } });
        const expected = planLayers(spec, closure);
        const scrambled: Closure = {
          ...closure,
          items: shuffled(closure.items, rand).map((it) => ({ ...it, references: shuffled(it.references, rand) })),
        };
        expect(planLayers(spec, scrambled)).toEqual(expected);
      }
    });
  }

  it("never mutates its inputs", () => {
    const closure = randomClosure(prng(3), 25);
    const spec = specOf({ roots: ["/x"], symlinks: ["/bin=/gnu/store/x/bin"], layers: { max: 5, strategy: "popularity" } });
    const before = structuredClone({ closure, spec });
    const frozen = deepFreeze(structuredClone({ closure, spec }));
    planLayers(spec, closure);
    planLayers(frozen.spec, frozen.closure); // would throw on any write
    expect({ closure, spec }).toEqual(before);
  });
});

function deepFreeze<T>(x: T): T {
  if (x && typeof x === "object") {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

describe("plan header and errors", () => {
  it("carries name, store dir, strategy and max", () => {
    const closure = closureOf([{ name: "a" }], { dir: "/nix/store" });
    const plan = planLayers(specOf({ name: "team/app", roots: ["/x"], layers: { max: 9, strategy: "popularity" } }), closure);
    expect(plan).toMatchObject({ version: 1, name: "team/app", storeDir: "/nix/store", strategy: "popularity", max: 9 });
  });

  const good = closureOf([{ name: "a" }, { name: "b" }]);
  const cases: [string, Closure, RegExp][] = [
    ["an item outside the store dir", { ...good, items: [{ path: "/usr/lib/x", narSize: 1, references: [] }] }, /not a store item directly under the store directory \/gnu\/store/],
    ["an item below a store item", { ...good, items: [{ path: `${storePath("a")}/bin`, narSize: 1, references: [] }] }, /not a store item directly/],
    ["a fractional size", { ...good, items: [{ ...good.items[0]!, narSize: 1.5 }] }, /sizes must be non-negative integers/],
    ["a negative size", { ...good, items: [{ ...good.items[0]!, narSize: -1 }] }, /sizes must be non-negative integers/],
    ["a duplicate item", { ...good, items: [good.items[0]!, good.items[0]!] }, /lists .*-a twice/],
  ];
  for (const [name, closure, message] of cases) {
    it(`refuses ${name}`, () => {
      const run = () => planLayers(specOf({ roots: ["/x"] }), closure);
      expect(run).toThrow(PlanError);
      expect(run).toThrow(message);
    });
  }

  it("refuses max 0 when the schema was bypassed", () => {
    const spec = specOf({ roots: ["/x"] });
    expect(() => planLayers({ ...spec, layers: { max: 0, strategy: "size" } }, good)).toThrow(/layers.max: 0/);
  });

  it("marks a max too small for the image with the key layers.max (the pipeline gives its line:column)", () => {
    const rootSystem = { source: "./rootfs", dir: "/h", keepOwners: false, allowDevices: false, entries: [] };
    const spec = { ...specOf({ roots: ["/x"] }), rootSystem: "./rootfs", layers: { max: 2, strategy: "size" as const } };
    let err: unknown;
    try {
      planLayers(spec, { ...good, rootSystem });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanError);
    expect((err as PlanError).configKey).toEqual(["layers", "max"]);
    expect((err as PlanError).message).toMatch(/^layers\.max: 2 is too small with a rootSystem/);
  });
});
