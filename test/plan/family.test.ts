import { describe, expect, it } from "vitest";
import { planFamily, type FamilyImage } from "../../src/plan/family.ts";
import { planLayers } from "../../src/plan/index.ts";
import { parsePlanFile } from "../../src/plan/plan-file.ts";
import { planToYaml } from "../../src/plan/serialize.ts";
import type { LayerPlan, StoreLayer } from "../../src/plan/types.ts";
import type { Closure } from "../../src/store/types.ts";
import { byBytes, closureOf, layerNames, prng, specOf, type ItemDef } from "./fixtures.ts";

type Strategy = "size" | "popularity" | "sharing";

/** One store; each image is the closure of some applications under its own profile. */
const store: ItemDef[] = [
  { name: "glibc", size: 1000 },
  { name: "openssl", size: 300, refs: ["glibc"] },
  { name: "zlib", size: 20, refs: ["glibc"] },
  { name: "python", size: 800, refs: ["openssl", "zlib", "glibc"] },
  { name: "web", size: 50, refs: ["python", "openssl"] },
  { name: "worker", size: 40, refs: ["python", "zlib"] },
  { name: "cli", size: 30, refs: ["glibc"] },
  { name: "tzdata", size: 60 },
];

function imageOf(name: string, apps: string[], max: number, strategy: Strategy = "sharing", defs = store): FamilyImage {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const keep = new Set<string>();
  const visit = (n: string): void => {
    if (keep.has(n)) return;
    keep.add(n);
    for (const r of byName.get(n)!.refs ?? []) visit(r);
  };
  apps.forEach(visit);
  const items = [...keep].map((n) => byName.get(n)!);
  const closure = closureOf([...items, { name: `profile-${name}`, size: 5, refs: apps }], { profile: `profile-${name}` });
  return { spec: specOf({ name, layers: { max, strategy } }), closure };
}

const storeLayers = (p: LayerPlan): StoreLayer[] => p.layers.filter((l): l is StoreLayer => l.kind === "store");
const key = (l: StoreLayer): string => l.items.map((it) => it.path).join("\n");

/** Each image planned with the family plan as its previous plan. */
const membersOf = (images: FamilyImage[], family: LayerPlan): LayerPlan[] => images.map((im) => planLayers(im.spec, im.closure, { previous: family }));

function expectValid(p: LayerPlan, c: Closure, max: number): void {
  expect(p.layers.length).toBeLessThanOrEqual(max);
  const placed = storeLayers(p).flatMap((l) => l.items.map((it) => it.path));
  expect(placed.sort(byBytes)).toEqual(c.items.map((it) => it.path));
}

describe("family plans", () => {
  it("puts items in layers by which images hold them, and each image keeps all of its layers", () => {
    const images = [imageOf("web", ["web", "tzdata"], 5), imageOf("worker", ["worker", "cli"], 5)];
    const family = planFamily(images);
    expect(family.family).toEqual(["web", "worker"]);
    expect(family.totals.items).toBe(10);
    for (const l of storeLayers(family)) {
      const holders = images.filter((im) => im.closure.items.some((it) => it.path === l.items[0]!.path)).map((im) => im.spec.name);
      for (const it of l.items) expect(images.filter((im) => im.closure.items.some((x) => x.path === it.path)).map((im) => im.spec.name)).toEqual(holders);
    }
    // The shared classes lie lowest; reasons say whose items they are.
    expect(layerNames(family)[0]!.every((n) => ["glibc", "openssl", "python", "zlib"].includes(n))).toBe(true);
    expect(storeLayers(family)[0]!.reason).toMatch(/^items of every image of the family; /);
    const [web, worker] = membersOf(images, family);
    expectValid(web!, images[0]!.closure, 5);
    expectValid(worker!, images[1]!.closure, 5);
    const inFamily = new Set(storeLayers(family).map(key));
    for (const p of [web!, worker!]) for (const l of storeLayers(p)) expect(inFamily.has(key(l))).toBe(true);
    // Every byte the two have in common is in a layer both have.
    const workerLayers = new Set(storeLayers(worker!).map(key));
    const shared = storeLayers(web!).filter((l) => workerLayers.has(key(l))).flatMap((l) => l.items.map((it) => it.path));
    expect(shared.sort(byBytes)).toEqual(images[0]!.closure.items.filter((it) => images[1]!.closure.items.some((x) => x.path === it.path)).map((it) => it.path));
  });

  it("stays within every image's budget, folding image combinations when there are too many", () => {
    const rand = prng(11);
    const libs: ItemDef[] = Array.from({ length: 30 }, (_, i) => ({ name: `lib${i}`, size: 1 + Math.floor(rand() * 500), refs: i > 0 && rand() < 0.7 ? [`lib${Math.floor(rand() * i)}`] : [] }));
    const apps: ItemDef[] = Array.from({ length: 12 }, (_, i) => ({ name: `app${i}`, size: 1 + Math.floor(rand() * 900), refs: [`lib${Math.floor(rand() * 30)}`, `lib${Math.floor(rand() * 30)}`] }));
    const defs = [...libs, ...apps];
    for (const max of [2, 3, 4, 8]) {
      for (const strategy of ["size", "popularity", "sharing"] as const) {
        const images = Array.from({ length: 5 }, (_, i) => imageOf(`img${i}`, apps.filter(() => rand() < 0.4).map((a) => a.name).concat(`app${i}`), max, strategy, defs));
        const family = planFamily(images);
        expect(planFamily(images)).toEqual(family);
        const placed = storeLayers(family).flatMap((l) => l.items.map((it) => it.path));
        expect(new Set(placed).size).toBe(placed.length);
        expect(placed.length).toBe(family.totals.items);
        membersOf(images, family).forEach((p, i) => expectValid(p, images[i]!.closure, max));
      }
    }
  });

  it("is a plan file the family's images accept as layers.previous, and no other image", () => {
    const images = [imageOf("web", ["web"], 4), imageOf("worker", ["worker"], 4)];
    const text = planToYaml(planFamily(images));
    expect(text).toMatch(/^family:\n {2}- web\n {2}- worker$/m);
    expect(parsePlanFile(text, { expectName: "worker" }).family).toEqual(["web", "worker"]);
    expect(() => parsePlanFile(text, { file: "f.yaml", expectName: "other" })).toThrow('f.yaml is the plan of image "family of web, worker", not of "other"');
  });

  it("refuses what cannot be one family", () => {
    const web = imageOf("web", ["web"], 4);
    expect(() => planFamily([web])).toThrow("a family plan needs at least two images");
    expect(() => planFamily([web, imageOf("web", ["cli"], 4)])).toThrow('name: two images of the family are named "web"');
    expect(() => planFamily([web, imageOf("cli", ["cli"], 4, "size")])).toThrow('layers.strategy: image "cli" uses size and "web" uses sharing');
    const resized = store.map((d) => (d.name === "glibc" ? { ...d, size: 999 } : d));
    expect(() => planFamily([web, imageOf("cli", ["cli"], 4, "sharing", resized)])).toThrow(/glibc is 1000 bytes in image "web" but 999 in "cli": the images read different stores/);
    const other = { ...imageOf("cli", ["cli"], 4), closure: closureOf([{ name: "x" }], { dir: "/nix/store" }) };
    expect(() => planFamily([web, other])).toThrow('image "cli" uses store /nix/store and "web" uses /gnu/store');
    expect(() => planFamily([web, imageOf("cli", ["cli"], 1)])).toThrow('layers.max: 1 (image "cli") leaves no store layer for a family plan');
  });
});
