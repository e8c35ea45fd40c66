/**
 * The sharing benchmark (issue 7): how many bytes a host that has an image re-pulls for the next one.
 *
 * For each strategy, plans (with the real planLayers) the closure before and after an update and counts
 *   re-pull = bytes of the new plan's store layers whose item set is not a layer of the old plan
 * (layers are reproducible: the same items make the same digest), against
 *   ideal   = bytes of the new closure's items that are not in the old one (the changed items).
 * Per scenario the ratio re-pull / ideal; per strategy their geometric mean and worst. Sibling sharing: two images
 * from one store; of the bytes of the items both hold, the fraction lying in layers identical in both.
 *
 * Run: `npm run bench:sharing -- [--max 100] [--sweep 120] [--seed 7] [--json out.json]` (the seed of the 800-item closure)
 *      `npm run bench:sharing -- --paths-old old.json --paths-new new.json`   (`nix path-info --json -r` outputs)
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { planFamily } from "../src/plan/family.ts";
import { planLayers } from "../src/plan/index.ts";
import type { LayerPlan, StoreLayer } from "../src/plan/types.ts";
import { imageSpecSchema } from "../src/spec/schema.ts";
import type { Closure } from "../src/store/types.ts";
import { distroClosure, nameOf, namedScenarios, readPathInfo, siblingImages, updateClosure, type Distro } from "./closures.ts";

export const STRATEGIES = ["size", "popularity", "sharing"] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Plans `closure` with `strategy` and `max` layers, as `layerpack plan` would (no customisation entries). */
export function planWith(strategy: Strategy, closure: Closure, max: number, name = "bench"): LayerPlan {
  return planLayers(specFor(strategy, closure, max, name), closure);
}

const specFor = (strategy: Strategy, closure: Closure, max: number, name: string) =>
  imageSpecSchema.parse({ name, roots: closure.roots, paths: [], layers: { max, strategy }, output: { path: "x.tar" } });

/** Two images planned as a family (`layerpack plan --family`), then each with the family plan as its previous plan. */
export function planSiblings(strategy: Strategy, a: Closure, b: Closure, max: number): [LayerPlan, LayerPlan] {
  const images = [
    { spec: specFor(strategy, a, max, "a"), closure: a },
    { spec: specFor(strategy, b, max, "b"), closure: b },
  ];
  const family = planFamily(images);
  return [planLayers(images[0]!.spec, a, { previous: family }), planLayers(images[1]!.spec, b, { previous: family })];
}

const storeLayers = (plan: LayerPlan): StoreLayer[] => plan.layers.filter((l): l is StoreLayer => l.kind === "store");

/** A layer's identity: its item paths (sorted in the plan). Same items, same tar, same digest. */
export const layerKey = (layer: StoreLayer): string => layer.items.map((it) => it.path).join("\n");

/** Bytes of the new plan's store layers that the old plan does not have. */
export function repullBytes(oldPlan: LayerPlan, newPlan: LayerPlan): number {
  const have = new Set(storeLayers(oldPlan).map(layerKey));
  return storeLayers(newPlan).reduce((sum, l) => (have.has(layerKey(l)) ? sum : sum + l.size), 0);
}

/** Bytes of the items of `next` that `prev` lacks: what an ideal layering re-pulls. */
export function idealBytes(prev: Closure, next: Closure): number {
  const have = new Set(prev.items.map((it) => it.path));
  return next.items.reduce((sum, it) => (have.has(it.path) ? sum : sum + it.narSize), 0);
}

/** Of the bytes of the items both plans hold, how many lie in store layers identical in both. */
export function siblingSharing(a: LayerPlan, b: LayerPlan): { commonBytes: number; sharedBytes: number; fraction: number } {
  const inB = new Set(storeLayers(b).flatMap((l) => l.items.map((it) => it.path)));
  const layersB = new Set(storeLayers(b).map(layerKey));
  let commonBytes = 0;
  let sharedBytes = 0;
  for (const l of storeLayers(a)) {
    const same = layersB.has(layerKey(l));
    for (const it of l.items) {
      if (!inB.has(it.path)) continue;
      commonBytes += it.size;
      if (same) sharedBytes += it.size;
    }
  }
  return { commonBytes, sharedBytes, fraction: commonBytes === 0 ? 1 : sharedBytes / commonBytes };
}

export function geomean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

export interface UpdateResult {
  label: string;
  ideal: number;
  /** Re-pull with a fresh plan of the new closure. */
  repull: Record<Strategy, number>;
  /** Re-pull with a sticky plan (the old plan as layers.previous). */
  sticky: Record<Strategy, number>;
}

/** Re-pull of every strategy for one update, old plans given (they are reused across scenarios). */
export function measureUpdate(label: string, prev: Closure, next: Closure, oldPlans: Record<Strategy, LayerPlan>, max: number): UpdateResult {
  const repull = {} as Record<Strategy, number>;
  const sticky = {} as Record<Strategy, number>;
  for (const s of STRATEGIES) {
    repull[s] = repullBytes(oldPlans[s], planWith(s, next, max));
    sticky[s] = repullBytes(oldPlans[s], planLayers(specFor(s, next, max, "bench"), next, { previous: oldPlans[s] }));
  }
  return { label, ideal: idealBytes(prev, next), repull, sticky };
}

const ratio = (r: UpdateResult, s: Strategy, kind: "repull" | "sticky" = "repull"): number => (r.ideal === 0 ? 1 : r[kind][s] / r.ideal);
const MB = (n: number): string => (n / 1e6).toFixed(n < 1e7 ? 2 : 0);
const x = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(0)}×`;
/** Summary rows: three decimals below 10×, so a goal such as 1.2× is not met by rounding. */
const x3 = (v: number): string => (v < 10 ? `${v.toFixed(3)}×` : x(v));

function summary(results: UpdateResult[], kind: "repull" | "sticky" = "repull"): Record<Strategy, { geomean: number; worst: number }> {
  const out = {} as Record<Strategy, { geomean: number; worst: number }>;
  for (const s of STRATEGIES) {
    const rs = results.map((r) => ratio(r, s, kind));
    out[s] = { geomean: geomean(rs), worst: Math.max(...rs) };
  }
  return out;
}

function table(results: UpdateResult[]): string[] {
  const lines = [`| update | changed MB (ideal) | ${STRATEGIES.join(" | ")} |`, `|---|---|${STRATEGIES.map(() => "---").join("|")}|`];
  for (const r of results) lines.push(`| ${r.label} | ${MB(r.ideal)} | ${STRATEGIES.map((s) => x(ratio(r, s))).join(" | ")} |`);
  const sum = summary(results);
  lines.push(`| **geometric mean** | | ${STRATEGIES.map((s) => x3(sum[s].geomean)).join(" | ")} |`);
  lines.push(`| **worst** | | ${STRATEGIES.map((s) => x3(sum[s].worst)).join(" | ")} |`);
  return lines;
}

function oldPlansOf(closure: Closure, max: number): { plans: Record<Strategy, LayerPlan>; ms: Record<Strategy, number> } {
  const plans = {} as Record<Strategy, LayerPlan>;
  const ms = {} as Record<Strategy, number>;
  for (const s of STRATEGIES) {
    const t = performance.now();
    plans[s] = planWith(s, closure, max);
    ms[s] = performance.now() - t;
  }
  return { plans, ms };
}

function benchDistro(title: string, d: Distro, max: number, sweep: number, out: string[], json: Record<string, unknown>): void {
  const { closure } = d;
  const total = closure.items.reduce((s, it) => s + it.narSize, 0);
  const { plans, ms } = oldPlansOf(closure, max);
  out.push(`### ${title}: ${closure.items.length} items, ${(total / 1e9).toFixed(2)} GB, max ${max}`, "");
  out.push(`Plan time (ms): ${STRATEGIES.map((s) => `${s} ${ms[s].toFixed(0)}`).join(", ")}`, "");
  const named = namedScenarios(d).map((sc, i) => measureUpdate(`${sc.label}: ${nameOf(sc.path)}`, closure, updateClosure(closure, sc.path, 100 + i), plans, max));
  out.push(...table(named), "");
  // Sweep: every k-th non-root item by name, so the sample does not depend on hashes.
  const candidates = closure.items.filter((it) => !closure.roots.includes(it.path)).sort((a, b) => (nameOf(a.path) < nameOf(b.path) ? -1 : 1));
  const step = Math.max(1, Math.floor(candidates.length / Math.max(1, sweep)));
  const swept = candidates.filter((_, i) => i % step === 0).slice(0, sweep).map((it, i) => measureUpdate(nameOf(it.path), closure, updateClosure(closure, it.path, 1000 + i), plans, max));
  const sw = summary(swept);
  const st = summary(swept, "sticky");
  out.push(`Sweep over ${swept.length} single-package updates (every ${step}th item by name), fresh plans and sticky plans:`, "");
  out.push(`| strategy | geometric mean | worst | worst update | sticky: geometric mean | worst |`, `|---|---|---|---|---|---|`);
  for (const s of STRATEGIES) {
    const worst = swept.reduce((a, b) => (ratio(b, s) > ratio(a, s) ? b : a));
    out.push(`| ${s} | ${x3(sw[s].geomean)} | ${x3(sw[s].worst)} | ${worst.label} (${MB(worst.ideal)} MB changed) | ${x3(st[s].geomean)} | ${x3(st[s].worst)} |`);
  }
  out.push("");
  const sib = siblingImages(d).flatMap((pair) => {
    const alone: Record<string, number> = {};
    const family: Record<string, number> = {};
    for (const s of STRATEGIES) {
      alone[s] = siblingSharing(planWith(s, pair.a, max), planWith(s, pair.b, max)).fraction;
      family[s] = siblingSharing(...planSiblings(s, pair.a, pair.b, max)).fraction;
    }
    const label = `${pair.label} (${pair.a.items.length} + ${pair.b.items.length} items)`;
    return [
      { label: `${label}, planned alone`, row: alone },
      { label: `${label}, planned as a family`, row: family },
    ];
  });
  out.push(`| sibling images: bytes in common that sit in identical layers | ${STRATEGIES.join(" | ")} |`, `|---|${STRATEGIES.map(() => "---").join("|")}|`);
  for (const r of sib) out.push(`| ${r.label} | ${STRATEGIES.map((s) => `${(r.row[s]! * 100).toFixed(1)}%`).join(" | ")} |`);
  out.push("");
  json[title] = { items: closure.items.length, bytes: total, planMs: ms, named, namedSummary: summary(named), sweep: swept, sweepSummary: sw, stickySweepSummary: st, siblings: sib };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      max: { type: "string", default: "100" },
      sweep: { type: "string", default: "120" },
      seed: { type: "string", default: "7" },
      json: { type: "string" },
      "paths-old": { type: "string" },
      "paths-new": { type: "string" },
    },
  });
  const whole = (name: "max" | "sweep" | "seed", min: number): number => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: ${values[name]} is not a whole number of at least ${min}`);
    return v;
  };
  const max = whole("max", 1);
  const out: string[] = [];
  const json: Record<string, unknown> = {};
  if (values["paths-old"] !== undefined || values["paths-new"] !== undefined) {
    if (values["paths-old"] === undefined || values["paths-new"] === undefined) throw new Error("give both --paths-old and --paths-new");
    const prev = readPathInfo(values["paths-old"]);
    const next = readPathInfo(values["paths-new"]);
    const { plans } = oldPlansOf(prev, max);
    const r = measureUpdate(`${values["paths-old"]} -> ${values["paths-new"]}`, prev, next, plans, max);
    out.push(`${prev.items.length} -> ${next.items.length} items, max ${max}`, "", ...table([r]));
    json.update = r;
  } else {
    const sweep = whole("sweep", 0);
    benchDistro("system-profile-like closure", distroClosure({ items: 800, totalBytes: 3.0e9, seed: whole("seed", 0) }), max, sweep, out, json);
    benchDistro("application-sized closure", distroClosure({ items: 300, totalBytes: 1.2e9, seed: 3 }), max, sweep, out, json);
  }
  console.log(out.join("\n"));
  if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(json, null, 2) + "\n");
}

if (import.meta.main) {
  try {
    main();
  } catch (err) {
    console.error(`bench/sharing.ts: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}
