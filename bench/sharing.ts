/**
 * The sharing benchmark (issue 7): how many bytes a host that has an image re-pulls for the next one.
 *
 * For each strategy (layerpack's size, popularity and sharing through the real planLayers, and nixpkgs'
 * auto-layer from bench/auto-layer.ts), plans the closure before and after an update and counts
 *   re-pull = bytes of the new plan's store layers whose item set is not a layer of the old plan
 * (layers are reproducible: the same items make the same digest), against
 *   ideal   = bytes of the new closure's items that are not in the old one (the changed items).
 * The accounting is in bench/sharing-accounting.ts (re-exported here), the sweep over closures and updates in
 * bench/sharing-sweep.ts.
 *
 * Run: `npm run bench:sharing -- [--closures w1,w2,half,gen300,gen800,gen4000] [--strategies size,popularity,sharing,auto-layer]
 *        [--sweep all|N] [--no-sticky] [--max 100] [--seed 7] [--json out.json]`
 *      (--seed: the gen800 closure's; --sweep N: N updates evenly spaced by name, all: every item but the roots)
 *      `npm run bench:sharing -- --paths-old old.json --paths-new new.json`   (`nix path-info --json -r` outputs)
 * Markdown goes to stdout (one section per closure as it finishes, then the summary), progress to stderr.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { readPathInfo } from "./closures.ts";
import { isStrategy, STRATEGIES, type Strategy } from "./sharing-accounting.ts";
import {
  assertAvailable,
  benchClosure,
  CLOSURE_NAMES,
  closureMarkdown,
  loadClosure,
  measureUpdate,
  nameList,
  oldPlansFrom,
  plannerFor,
  summaryMarkdown,
  updatesTable,
  wholeNumber,
  type ClosureReport,
  type SweepOptions,
} from "./sharing-sweep.ts";

export * from "./sharing-accounting.ts";

function main(): void {
  const { values } = parseArgs({
    options: {
      max: { type: "string", default: "100" },
      sweep: { type: "string", default: "all" },
      seed: { type: "string", default: "7" },
      strategies: { type: "string", default: STRATEGIES.join(",") },
      closures: { type: "string", default: CLOSURE_NAMES.join(",") },
      "no-sticky": { type: "boolean", default: false },
      json: { type: "string" },
      "paths-old": { type: "string" },
      "paths-new": { type: "string" },
    },
  });
  const whole = (name: "max" | "sweep" | "seed", min: number): number => wholeNumber(name, values[name], min);
  const strategies = nameList<Strategy>("strategies", values.strategies, STRATEGIES).filter(isStrategy);
  const max = whole("max", strategies.includes("auto-layer") ? 2 : 1); // nixpkgs' auto-layer needs 2
  const sticky = !values["no-sticky"];
  const json: Record<string, unknown> = { max, strategies, sticky };
  if (values["paths-old"] !== undefined || values["paths-new"] !== undefined) {
    if (values["paths-old"] === undefined || values["paths-new"] === undefined) throw new Error("give both --paths-old and --paths-new");
    const prev = readPathInfo(values["paths-old"]);
    const next = readPathInfo(values["paths-new"]);
    const planners = strategies.map((s) => plannerFor(s, max));
    const old = oldPlansFrom(Object.fromEntries(planners.map((p) => [p.name, p.plan(prev)])));
    const r = measureUpdate(`${values["paths-old"]} -> ${values["paths-new"]}`, new Set(prev.items.map((it) => it.path)), next, planners, old, sticky);
    const out = [`${prev.items.length} -> ${next.items.length} items, max ${max}, fresh plans:`, "", ...updatesTable([r], strategies)];
    if (sticky) out.push("", "Sticky plans (the old plan as layers.previous):", "", ...updatesTable([r], strategies, "sticky"));
    console.log(out.join("\n"));
    json.update = r;
  } else {
    const options: SweepOptions = { strategies, max, sweep: values.sweep === "all" ? "all" : whole("sweep", 0), sticky };
    const seed = whole("seed", 0);
    const reports: ClosureReport[] = [];
    const names = nameList("closures", values.closures, CLOSURE_NAMES);
    names.forEach(assertAvailable);
    for (const name of names) {
      const t = performance.now();
      const report = benchClosure(loadClosure(name, { seed }), options);
      console.error(`${name}: done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      reports.push(report);
      console.log(closureMarkdown(report, options).join("\n"));
    }
    const out = ["### Summary: sweep with fresh plans, ratio re-pull / ideal (geometric mean / worst)", "", ...summaryMarkdown(reports, options)];
    if (sticky) out.push("", "### Summary: sweep with sticky plans (`layers.previous`)", "", ...summaryMarkdown(reports, options, "sticky"));
    console.log(out.join("\n"));
    json.options = options;
    json.closures = Object.fromEntries(reports.map((r) => [r.name, r]));
  }
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
