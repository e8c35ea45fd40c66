/**
 * Sticky plans: bytes a host re-pulls after updating one package (and, as a real update does, every item that
 * depends on it), with and without the previous plan, per strategy. Plain generated closures (bench/closures.ts:
 * a distribution-shaped DAG, heavy-tailed sizes); no store on disk is needed, since layer identity for plans is
 * the exact item set (builds are reproducible).
 *
 * Two measures:
 * - one update: each named scenario (leaf application ... libc-like core library), from the same starting plan;
 * - drift: a sequence of random updates, each planned from the previous result (sticky) or from scratch, summed.
 *
 * Run: `npx node bench/sticky.ts [--items 400] [--total-mb 1024] [--max 100] [--steps 30] [--seed 1]`
 */
import { parseArgs } from "node:util";
import { planLayers } from "../src/plan/index.ts";
import { diffPlans } from "../src/plan/diff.ts";
import type { LayerPlan } from "../src/plan/types.ts";
import { imageSpecSchema, type ImageSpec } from "../src/config/schema.ts";
import type { Closure } from "../src/store/types.ts";
import { distroClosure, namedScenarios, nameOf, prng, updateClosure } from "./closures.ts";

const MB = 1024 * 1024;

function specFor(strategy: string, max: number): ImageSpec | undefined {
  const parsed = imageSpecSchema.safeParse({ name: "bench", roots: ["/gnu/store/x"], layers: { max, strategy }, output: { path: "x.tar" } });
  return parsed.success ? parsed.data : undefined;
}

const mb = (n: number): string => (n / MB).toFixed(1);

interface Row {
  label: string;
  changed: number;
  fresh: Record<string, number>;
  sticky: Record<string, number>;
}

function repull(old: LayerPlan, neu: LayerPlan): { pull: number; changed: number } {
  const d = diffPlans(old, neu);
  return { pull: d.pull.bytes, changed: d.changed.bytes };
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { items: { type: "string", default: "400" }, "total-mb": { type: "string", default: "1024" }, max: { type: "string", default: "100" }, steps: { type: "string", default: "30" }, seed: { type: "string", default: "1" } },
  });
  const items = Number(values.items);
  const max = Number(values.max);
  const seed = Number(values.seed);
  const distro = distroClosure({ items, totalBytes: Number(values["total-mb"]) * MB, seed });
  const strategies = ["size", "popularity", "sharing"].filter((s) => specFor(s, max) !== undefined);
  const specs = new Map(strategies.map((s) => [s, specFor(s, max)!]));
  const base = new Map(strategies.map((s) => [s, planLayers(specs.get(s)!, distro.closure)]));

  const rows: Row[] = [];
  namedScenarios(distro).forEach((sc, k) => {
    const updated = updateClosure(distro.closure, sc.path, 1000 + k);
    const row: Row = { label: `${sc.label}: ${nameOf(sc.path)}`, changed: 0, fresh: {}, sticky: {} };
    for (const s of strategies) {
      const p0 = base.get(s)!;
      const fresh = repull(p0, planLayers(specs.get(s)!, updated));
      const sticky = repull(p0, planLayers(specs.get(s)!, updated, { previous: p0 }));
      row.changed = fresh.changed;
      row.fresh[s] = fresh.pull;
      row.sticky[s] = sticky.pull;
    }
    rows.push(row);
  });

  // Drift: a sequence of random single-package updates.
  const steps = Number(values.steps);
  const r = prng(seed + 7);
  const drift = new Map(strategies.map((s) => [s, { fresh: 0, sticky: 0 }]));
  let changedTotal = 0;
  let closure: Closure = distro.closure;
  const current = new Map(strategies.map((s) => [s, { fresh: base.get(s)!, sticky: base.get(s)! }]));
  for (let step = 0; step < steps; step++) {
    const target = closure.items[Math.floor(r() * closure.items.length)]!.path;
    closure = updateClosure(closure, target, 5000 + step);
    for (const s of strategies) {
      const c = current.get(s)!;
      const fresh = planLayers(specs.get(s)!, closure);
      const sticky = planLayers(specs.get(s)!, closure, { previous: c.sticky });
      const f = repull(c.fresh, fresh);
      const st = repull(c.sticky, sticky);
      if (s === strategies[0]) changedTotal += f.changed;
      drift.get(s)!.fresh += f.pull;
      drift.get(s)!.sticky += st.pull;
      current.set(s, { fresh, sticky });
    }
  }

  const total = distro.closure.items.reduce((n, it) => n + it.narSize, 0);
  console.log(`# Sticky plans: MiB re-pulled after one update (${items} items, ${mb(total)} MiB, max ${max} layers, seed ${seed})\n`);
  const head = strategies.flatMap((s) => [`${s}`, `${s} sticky`]);
  console.log(`| update | changed | ${head.join(" | ")} |`);
  console.log(`|---|---:|${head.map(() => "---:").join("|")}|`);
  for (const row of rows) {
    console.log(`| ${row.label} | ${mb(row.changed)} | ${strategies.flatMap((s) => [mb(row.fresh[s]!), mb(row.sticky[s]!)]).join(" | ")} |`);
  }
  console.log(`\n${steps} random updates in a row (each planned from the previous plan, or from scratch), MiB re-pulled in all:\n`);
  console.log(`| changed | ${head.join(" | ")} |`);
  console.log(`|---:|${head.map(() => "---:").join("|")}|`);
  console.log(`| ${mb(changedTotal)} | ${strategies.flatMap((s) => [mb(drift.get(s)!.fresh), mb(drift.get(s)!.sticky)]).join(" | ")} |`);
}

if (import.meta.main) main(process.argv.slice(2));
