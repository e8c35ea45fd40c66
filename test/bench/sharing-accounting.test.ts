import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dependentsOf, distroClosure, readPathInfo, storePath, updateClosure } from "../../bench/closures.ts";
import { geomean, idealBytes, layerKey, planWith, repullBytes, siblingSharing } from "../../bench/sharing.ts";
import type { LayerPlan, StoreLayer } from "../../src/plan/types.ts";
import type { Closure } from "../../src/store/types.ts";

const p = (name: string): string => storePath(name);

/** A plan from layers of [name, size] pairs (only what the accounting reads). */
function planOf(layers: [string, number][][]): LayerPlan {
  const store: StoreLayer[] = layers.map((items) => ({
    kind: "store",
    size: items.reduce((s, [, n]) => s + n, 0),
    items: items.map(([name, size]) => ({ path: p(name), size })).sort((a, b) => (a.path < b.path ? -1 : 1)),
  }));
  return { version: 1, name: "t", storeDir: "/gnu/store", strategy: "size", max: 100, layers: [...store, { kind: "customisation", entries: [] }], totals: { items: 0, bytes: 0, layers: store.length + 1 } };
}

describe("sharing benchmark accounting, by hand", () => {
  // Old image: {a 100, b 10} {c 1000} {d 5}; the update gives b a new path (b2, 12 bytes).
  const oldPlan = planOf([[["a", 100], ["b", 10]], [["c", 1000]], [["d", 5]]]);
  const newPlan = planOf([[["a", 100], ["b2", 12]], [["c", 1000]], [["d", 5]]]);

  it("re-pull: only new layers whose item set the old image lacks", () => {
    expect(repullBytes(oldPlan, newPlan)).toBe(112);
    expect(repullBytes(oldPlan, oldPlan)).toBe(0);
    // The same items split differently are new layers, even though no item changed.
    expect(repullBytes(oldPlan, planOf([[["a", 100]], [["b", 10], ["c", 1000]], [["d", 5]]]))).toBe(1110);
  });

  it("ideal: bytes of the items the old closure lacks", () => {
    const item = (name: string, size: number) => ({ path: p(name), narSize: size, references: [] });
    const prev: Closure = { store: { dir: "/gnu/store", root: "/" }, roots: [], items: [item("a", 100), item("b", 10), item("c", 1000)] };
    const next: Closure = { ...prev, items: [item("a", 100), item("b2", 12), item("c", 1000)] };
    expect(idealBytes(prev, next)).toBe(12);
    expect(repullBytes(oldPlan, newPlan) / idealBytes(prev, next)).toBeCloseTo(112 / 12);
  });

  it("sibling sharing: common bytes in identical layers over common bytes", () => {
    const a = planOf([[["x", 10], ["y", 20]], [["z", 30]], [["onlyA", 99]]]);
    const b = planOf([[["x", 10], ["y", 20]], [["z", 30], ["onlyB", 1]]]);
    expect(siblingSharing(a, b)).toEqual({ commonBytes: 60, sharedBytes: 30, fraction: 0.5 });
    expect(siblingSharing(a, a).fraction).toBe(1);
  });

  it("layer identity is the item set; geometric mean", () => {
    expect(layerKey(newPlan.layers[1] as StoreLayer)).toBe(p("c"));
    expect(geomean([1, 4])).toBeCloseTo(2);
    expect(geomean([2, 2, 2])).toBeCloseTo(2);
  });
});

describe("benchmark closures", () => {
  const d = distroClosure({ items: 120, totalBytes: 1e8, seed: 1 });

  it("an update renames exactly the package and its dependents, and keeps the graph", () => {
    const target = d.closure.items.find((it) => d.kind.get(it.path) === "lib")!.path;
    const changed = dependentsOf(d.closure, target);
    const next = updateClosure(d.closure, target, 9);
    const have = new Set(d.closure.items.map((it) => it.path));
    expect(next.items.filter((it) => !have.has(it.path))).toHaveLength(changed.size);
    expect(next.items.length).toBe(d.closure.items.length);
    expect(next.items.reduce((s, it) => s + it.references.length, 0)).toBe(d.closure.items.reduce((s, it) => s + it.references.length, 0));
    expect(changed.has(d.closure.profile!)).toBe(true);
  });

  it("plans with the real planner at the given max", () => {
    for (const s of ["size", "popularity", "sharing"] as const) expect(planWith(s, d.closure, 20).layers).toHaveLength(20);
  });
});

describe("readPathInfo", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-pathinfo-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app";
  const b = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib";

  it("reads the array form and the object form keyed by path (references as paths or base names)", () => {
    const arr = path.join(dir, "array.json");
    fs.writeFileSync(arr, JSON.stringify([{ path: a, narSize: 10, references: [b, a] }, { path: b, narSize: 5, references: [] }]));
    const obj = path.join(dir, "object.json");
    fs.writeFileSync(obj, JSON.stringify({ [b]: { narSize: 5, references: [] }, [a]: { narSize: 10, references: [path.basename(b), path.basename(a)] } }));
    for (const file of [arr, obj]) {
      const c = readPathInfo(file);
      expect(c.store.dir).toBe("/nix/store");
      expect(c.roots).toEqual([a]);
      expect(c.items).toEqual([
        { path: a, narSize: 10, references: [a, b] },
        { path: b, narSize: 5, references: [] },
      ]);
    }
  });

  it("refuses something that is not path-info output", () => {
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, "42");
    expect(() => readPathInfo(bad)).toThrow(/nix path-info --json -r/);
  });
});
