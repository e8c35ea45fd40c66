import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { LayerCache } from "../../src/cache/cache.ts";
import { planLayers } from "../../src/plan/index.ts";
import { memoPlan, planKey } from "../../src/plan/memo.ts";
import type { LayerPlan } from "../../src/plan/types.ts";
import { closureOf, specOf } from "./fixtures.ts";

const closure = closureOf(
  [
    { name: "profile", size: 10, refs: ["hello", "glibc"] },
    { name: "hello", size: 300, refs: ["glibc"] },
    { name: "glibc", size: 200 },
  ],
  { profile: "profile" },
);

describe("remembered plans", () => {
  const cache = new LayerCache(fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-memo-")));
  const spec = specOf({ name: "hello", layers: { max: 3 } });

  it("plans once for the same inputs and returns the same plan", () => {
    let planned = 0;
    const plan = () => (planned++, planLayers(spec, closure));
    const first = memoPlan(cache, () => planKey(spec, closure), plan);
    const again = memoPlan(cache, () => planKey(spec, closure), plan);
    expect(planned).toBe(1);
    expect(again).toEqual(first);
    expect(fs.readdirSync(path.join(cache.dir, "plans"))).toHaveLength(1);
  });

  it("keys every input that shapes the plan: name, layer options, closure, previous plan", () => {
    const base = planKey(spec, closure);
    expect(planKey(specOf({ name: "hello", layers: { max: 3 } }), structuredClone(closure))).toBe(base);
    expect(planKey(specOf({ name: "other", layers: { max: 3 } }), closure)).not.toBe(base);
    expect(planKey(specOf({ name: "hello", layers: { max: 4 } }), closure)).not.toBe(base);
    expect(planKey(specOf({ name: "hello", layers: { max: 3, strategy: "size" } }), closure)).not.toBe(base);
    const bigger = { ...closure, items: closure.items.map((it, i) => (i === 0 ? { ...it, narSize: it.narSize + 1 } : it)) };
    expect(planKey(spec, bigger)).not.toBe(base);
    expect(planKey(spec, closure, { previous: planLayers(spec, closure) })).not.toBe(base);
    // where the previous plan file lives is not an input; what it holds is
    expect(planKey(specOf({ name: "hello", layers: { max: 3, previous: "a.yaml" } }), closure)).toBe(base);
  });

  it("a damaged record is planned again and replaced", () => {
    const key = planKey(spec, closure);
    const file = path.join(cache.dir, "plans", `${key}.json`);
    fs.writeFileSync(file, JSON.stringify({ version: 1, layers: "not a list" }));
    let planned = 0;
    const plan = memoPlan(cache, () => key, () => (planned++, planLayers(spec, closure)));
    expect(planned).toBe(1);
    expect((JSON.parse(fs.readFileSync(file, "utf8")) as LayerPlan).layers).toEqual(plan.layers);
  });

  it("without a cache, it plans every time", () => {
    let planned = 0;
    memoPlan(undefined, () => "unused", () => (planned++, planLayers(spec, closure)));
    memoPlan(undefined, () => "unused", () => (planned++, planLayers(spec, closure)));
    expect(planned).toBe(2);
  });
});
