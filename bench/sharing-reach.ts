/**
 * What grouping quality is reachable at all (issue 19)? For each closure: the `sharing` plan's static quality (the
 * plan kept, every single-package update), then that plan improved by simulated annealing (bench/sharing-anneal.ts)
 * for the geometric mean alone and with a penalty on ratios above 2×. A fresh plan's sweep cannot beat the static
 * figures of the plan it follows (after an update the unchanged items of every touched layer are re-pulled too),
 * so no planner beats the best static grouping; the annealed figures estimate that best from above (what some
 * grouping into `max` layers reaches, found by search, not proven optimal). The lower bounds of bench/sharing-bound.ts
 * say what no grouping reaches; the best lies between the two.
 *
 * Run: `node bench/sharing-reach.ts [--closures half,gen300,gen800] [--max 100] [--iterations 3000000]
 *        [--penalty 5] [--seed 5] [--json out.json] [--bounds-only]`  (gen4000 takes minutes per million iterations)
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { anneal, type StaticStats } from "./sharing-anneal.ts";
import { boundsFor, type Bounds } from "./sharing-bound.ts";
import { planWith, storeLayers } from "./sharing-accounting.ts";
import { assertAvailable, CLOSURE_NAMES, loadClosure, nameList, wholeNumber } from "./sharing-sweep.ts";

function main(): void {
  const { values } = parseArgs({
    options: {
      closures: { type: "string", default: "w2,half,gen300,gen800" },
      max: { type: "string", default: "100" },
      iterations: { type: "string", default: "3000000" },
      penalty: { type: "string", default: "5" },
      seed: { type: "string", default: "5" },
      json: { type: "string" },
      "bounds-only": { type: "boolean", default: false },
    },
  });
  const max = wholeNumber("max", values.max, 1);
  const iterations = wholeNumber("iterations", values.iterations, 1);
  const penalty = Number(values.penalty);
  if (!(penalty >= 0)) throw new Error(`--penalty: ${values.penalty} is not a number >= 0`);
  const seed = wholeNumber("seed", values.seed, 0);
  const names = nameList("closures", values.closures, CLOSURE_NAMES);
  names.forEach(assertAvailable);

  const fmt = (s: StaticStats | Bounds): string => `${s.geomean.toFixed(3)}× / ${s.worst.toFixed(2)}× (${s.above2} > 2×)`;
  const rows: Record<string, unknown> = {};
  if (values["bounds-only"]) {
    console.log(`Lower bounds for any grouping into ${max} layers (every single-package update, sizes as they are)\n`);
    console.log("| closure | items | no grouping beats | layers needed for worst ≤ 2× | for geometric mean ≤ 1.3× |");
    console.log("|---|---|---|---|---|");
    for (const name of names) {
      const { closure } = loadClosure(name);
      const b = boundsFor(closure, max);
      console.log(`| ${name} | ${closure.items.length} | ${fmt(b)} | ≥ ${b.layersForWorst2} | ≥ ${b.layersForGeomean13} |`);
      rows[name] = { items: closure.items.length, bounds: b };
    }
    if (values.json) fs.writeFileSync(values.json, JSON.stringify({ max, closures: rows }, null, 2) + "\n");
    return;
  }
  console.log(`Static quality (plan kept, every single-package update), max ${max}, ${iterations} annealing steps from the sharing plan\n`);
  console.log("| closure | items | no grouping beats | sharing plan | annealed, geometric mean | annealed, penalty " + penalty + " on > 2× |");
  console.log("|---|---|---|---|---|---|");
  for (const name of names) {
    const { closure } = loadClosure(name);
    const started = performance.now();
    const plan = planWith("sharing", closure, max);
    const index = new Map(closure.items.map((it, i) => [it.path, i]));
    const start = new Int32Array(closure.items.length);
    storeLayers(plan).forEach((l, k) => l.items.forEach((it) => (start[index.get(it.path)!] = k)));
    const plain = anneal(closure, start, { max, iterations, penalty: 0, seed });
    const penalised = anneal(closure, start, { max, iterations, penalty, seed });
    const seconds = (performance.now() - started) / 1000;
    console.error(`${name}: ${seconds.toFixed(0)} s`);
    const bounds = boundsFor(closure, max);
    console.log(`| ${name} | ${closure.items.length} | ${fmt(bounds)} | ${fmt(plain.start)} | ${fmt(plain.end)} | ${fmt(penalised.end)} |`);
    rows[name] = { items: closure.items.length, bounds, sharing: plain.start, annealed: plain.end, penalised: penalised.end, seconds };
  }
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ max, iterations, penalty, seed, closures: rows }, null, 2) + "\n");
}

try {
  main();
} catch (err) {
  console.error(`bench/sharing-reach.ts: ${(err as Error).message}`);
  process.exitCode = 2;
}
