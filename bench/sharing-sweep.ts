/**
 * The sharing benchmark's sweep (bench/sharing.ts runs it): per closure and strategy, the re-pull of every
 * single-package update (or an even sample by name), with fresh plans and with sticky plans (the old plan as
 * layers.previous), the named scenarios, plan times and, for generated closures, sibling sharing.
 *
 * Closures: the real ones in ../shared/closures (`nix path-info --json -r` of Debian 12 packages as Nix store items;
 * no kinds, so their named scenarios are packages picked by name) and generated ones (bench/closures.ts).
 * Old plans are computed once per closure; each update plans only the new closure.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { LayerPlan } from "../src/plan/types.ts";
import type { Closure } from "../src/store/types.ts";
import { byBytes } from "../src/util/bytes.ts";
import { distroClosure, nameOf, namedScenarios, readPathInfo, siblingImages, updateClosure, type Distro } from "./closures.ts";
import { geomean, idealBytes, layerKeys, planSiblings, planSticky, planWith, repullBytes, siblingSharing, storeLayers, type Strategy } from "./sharing-accounting.ts";

/** How a strategy plans a closure, fresh or with the old plan as its previous plan. */
export interface Planner {
  name: string;
  plan(closure: Closure): LayerPlan;
  sticky(closure: Closure, previous: LayerPlan): LayerPlan;
}

export const plannerFor = (strategy: Strategy, max: number): Planner => ({
  name: strategy,
  plan: (c) => planWith(strategy, c, max),
  sticky: (c, previous) => planSticky(strategy, c, max, previous),
});

// ---- closures -------------------------------------------------------------------------------------------------

// ---- command-line values shared by the sharing benchmarks -----------------------------------------------------

/** A comma-separated `--flag` list of known names (each once); anything else is an error naming the choices. */
export function nameList<T extends string>(flag: string, value: string, known: readonly T[]): T[] {
  const names = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.filter((s) => !(known as readonly string[]).includes(s));
  if (bad.length > 0 || names.length === 0) throw new Error(`--${flag}: ${bad.length ? `unknown ${bad.join(", ")}` : "empty"}; choose from ${known.join(", ")}`);
  return [...new Set(names)] as T[];
}

/** A `--flag` value that must be a whole number of at least `min`. */
export function wholeNumber(flag: string, value: string | undefined, min: number): number {
  const v = Number(value);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: ${value} is not a whole number of at least ${min}`);
  return v;
}

export const CLOSURE_NAMES = ["w1", "w2", "half", "gen300", "gen800", "gen4000"] as const;
export type ClosureName = (typeof CLOSURE_NAMES)[number];

const REAL: Record<string, { file: string; about: string }> = {
  w1: { file: "debian-w1.pathinfo.json", about: "Debian 12: git, python3.11, perl" },
  w2: { file: "debian-w2.pathinfo.json", about: "Debian 12: w1 + postgresql-15, openjdk-17-jre-headless, nodejs, vim, podman, gcc-12, valgrind" },
  half: { file: "debian-half.pathinfo.json", about: "Debian 12: every second package of an installed system" },
};

/** The real closures live next to the repository: <repo>/../shared/closures. */
export const realClosureFile = (name: string): string => path.resolve(import.meta.dirname, "..", "..", "shared", "closures", REAL[name]!.file);

export interface BenchClosure {
  name: string;
  about: string;
  closure: Closure;
  /** Generated closures only: what the generator knows (kinds), for the named scenarios and siblings. */
  distro?: Distro;
}

/** Throws with a clear message when a real closure's file is missing (checked before a long run starts). */
export function assertAvailable(name: string): void {
  if (!(name in REAL)) return;
  const file = realClosureFile(name);
  if (!fs.existsSync(file)) throw new Error(`closure ${name}: ${file} is missing (the real closures are ../shared/closures/*.pathinfo.json next to the repository; see their README)`);
}

export function loadClosure(name: string, options: { seed?: number } = {}): BenchClosure {
  if (name in REAL) {
    assertAvailable(name);
    return { name, about: REAL[name]!.about, closure: readPathInfo(realClosureFile(name)) };
  }
  const gen: Record<string, () => Distro> = {
    gen300: () => distroClosure({ items: 300, totalBytes: 1.2e9, seed: 3 }),
    gen800: () => distroClosure({ items: 800, totalBytes: 3.0e9, seed: options.seed ?? 7 }),
    gen4000: () => distroClosure({ items: 4000, totalBytes: 15e9, seed: 11 }),
  };
  const make = gen[name];
  if (!make) throw new Error(`unknown closure "${name}"; use ${CLOSURE_NAMES.join(", ")}`);
  const distro = make();
  const seed = name === "gen800" ? (options.seed ?? 7) : name === "gen300" ? 3 : 11;
  return { name, about: `generated, seed ${seed}`, closure: distro.closure, distro };
}

// ---- update targets ---------------------------------------------------------------------------------------------

export interface Target {
  label: string;
  /** The item updated (it and its dependents get new paths). */
  path: string;
  seed: number;
}

export const PACKAGES = ["less", "tzdata", "nodejs", "libssl3", "git", "zlib1g"] as const;

/** Whether a store name (after the hash) is package `pkg`: equal, or `pkg-` and a digit (git-1_2.39, not git-man-…). */
export function matchesPackage(storeName: string, pkg: string): boolean {
  return storeName === pkg || (storeName.startsWith(`${pkg}-`) && /[0-9]/.test(storeName.charAt(pkg.length + 1)));
}

/** One scenario per package present (the first matching item by name, then path); absent packages are skipped. */
export function packageScenarios(closure: Closure, packages: readonly string[] = PACKAGES): Target[] {
  const byName = [...closure.items].sort((a, b) => byBytes(nameOf(a.path), nameOf(b.path)) || byBytes(a.path, b.path));
  const out: Target[] = [];
  packages.forEach((pkg, i) => {
    const it = byName.find((x) => !closure.roots.includes(x.path) && matchesPackage(nameOf(x.path), pkg));
    if (it) out.push({ label: nameOf(it.path), path: it.path, seed: 100 + i });
  });
  return out;
}

/** Named scenarios: by rule (kinds) for generated closures, by package name for real ones. */
export function namedTargets(bc: BenchClosure): Target[] {
  if (!bc.distro) return packageScenarios(bc.closure);
  return namedScenarios(bc.distro).map((sc, i) => ({ label: `${sc.label}: ${nameOf(sc.path)}`, path: sc.path, seed: 100 + i }));
}

/**
 * The sweep: every non-root item (`"all"`) or `n` of them evenly spaced by name. An item's seed comes from its
 * index in name order, so a sample updates its items exactly as the full sweep does.
 */
export function sweepTargets(closure: Closure, sweep: "all" | number): Target[] {
  const roots = new Set(closure.roots);
  const byName = closure.items.filter((it) => !roots.has(it.path)).sort((a, b) => byBytes(nameOf(a.path), nameOf(b.path)) || byBytes(a.path, b.path));
  const all = byName.map((it, i) => ({ label: nameOf(it.path), path: it.path, seed: 1000 + i }));
  if (sweep === "all" || sweep >= all.length) return all;
  return Array.from({ length: sweep }, (_, k) => all[Math.floor((k * all.length) / sweep)]!);
}

// ---- measuring ----------------------------------------------------------------------------------------------------

export interface UpdateResult {
  label: string;
  ideal: number;
  /** Re-pull per strategy with a fresh plan of the new closure. */
  repull: Record<string, number>;
  /** Re-pull per strategy with a sticky plan (the old plan as layers.previous); absent with --no-sticky. */
  sticky?: Record<string, number>;
}

export interface OldPlans {
  plans: Record<string, LayerPlan>;
  keys: Record<string, Set<string>>;
}

export const oldPlansFrom = (plans: Record<string, LayerPlan>): OldPlans => ({
  plans,
  keys: Object.fromEntries(Object.entries(plans).map(([k, p]) => [k, layerKeys(p)])),
});

/** Re-pull of every planner for one update; `prevPaths` are the old closure's paths. */
export function measureUpdate(label: string, prevPaths: ReadonlySet<string>, next: Closure, planners: readonly Planner[], old: OldPlans, sticky: boolean): UpdateResult {
  const repull: Record<string, number> = {};
  const st: Record<string, number> = {};
  for (const p of planners) {
    repull[p.name] = repullBytes(old.keys[p.name]!, p.plan(next));
    if (sticky) st[p.name] = repullBytes(old.keys[p.name]!, p.sticky(next, old.plans[p.name]!));
  }
  return { label, ideal: idealBytes(prevPaths, next), repull, ...(sticky ? { sticky: st } : {}) };
}

export interface MeasureOptions {
  sticky: boolean;
  /** Called after each update with (done, total). */
  progress?: (done: number, total: number) => void;
}

export function measureTargets(closure: Closure, targets: readonly Target[], planners: readonly Planner[], old: OldPlans, options: MeasureOptions): UpdateResult[] {
  const prevPaths = new Set(closure.items.map((it) => it.path));
  return targets.map((t, i) => {
    const r = measureUpdate(t.label, prevPaths, updateClosure(closure, t.path, t.seed), planners, old, options.sticky);
    options.progress?.(i + 1, targets.length);
    return r;
  });
}

export const ratio = (r: UpdateResult, s: string, kind: "repull" | "sticky" = "repull"): number => (r.ideal === 0 ? 1 : r[kind]![s]! / r.ideal);

export interface Summary {
  updates: number;
  geomean: number;
  worst: number;
  worstLabel: string;
  worstIdeal: number;
  /** Updates re-pulling more than twice the ideal. */
  above2: number;
}

export function summarize(results: readonly UpdateResult[], s: string, kind: "repull" | "sticky" = "repull"): Summary {
  const rs = results.map((r) => ratio(r, s, kind));
  let w = 0;
  rs.forEach((v, i) => {
    if (v > rs[w]!) w = i;
  });
  return { updates: rs.length, geomean: geomean(rs), worst: rs.length ? rs[w]! : NaN, worstLabel: results[w]?.label ?? "", worstIdeal: results[w]?.ideal ?? 0, above2: rs.filter((v) => v > 2).length };
}

/** Reports progress to stderr at most every `everyMs`. */
export function progressReporter(what: string, everyMs = 10_000): (done: number, total: number) => void {
  const start = performance.now();
  let last = start;
  return (done, total) => {
    const now = performance.now();
    if (now - last < everyMs || done === total) return;
    last = now;
    const s = (now - start) / 1000;
    console.error(`${what}: ${done}/${total} updates, ${s.toFixed(0)} s, about ${((s / done) * (total - done)).toFixed(0)} s left`);
  };
}

// ---- one closure ----------------------------------------------------------------------------------------------------

export interface SweepOptions {
  strategies: readonly Strategy[];
  max: number;
  sweep: "all" | number;
  sticky: boolean;
}

export interface ClosureReport {
  name: string;
  about: string;
  items: number;
  bytes: number;
  storeLayers: Record<string, number>;
  planMs: Record<string, number>;
  named: UpdateResult[];
  namedSummary: Record<string, Summary>;
  sweep: UpdateResult[];
  sweepSummary: Record<string, Summary>;
  stickySummary?: Record<string, Summary>;
  siblings?: { label: string; alone: Record<string, number>; family: Record<string, number | null> }[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function benchClosure(bc: BenchClosure, options: SweepOptions): ClosureReport {
  const { closure } = bc;
  const planners = options.strategies.map((s) => plannerFor(s, options.max));
  const plans: Record<string, LayerPlan> = {};
  const planMs: Record<string, number> = {};
  for (const p of planners) {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const plan = p.plan(closure);
      times.push(performance.now() - t);
      if (i === 0) plans[p.name] = plan;
    }
    planMs[p.name] = median(times);
  }
  const old = oldPlansFrom(plans);
  const named = measureTargets(closure, namedTargets(bc), planners, old, { sticky: options.sticky });
  const targets = sweepTargets(closure, options.sweep);
  const sweep = measureTargets(closure, targets, planners, old, { sticky: options.sticky, progress: progressReporter(`${bc.name} sweep`) });
  const per = (f: (s: string) => Summary): Record<string, Summary> => Object.fromEntries(options.strategies.map((s) => [s, f(s)]));
  const report: ClosureReport = {
    name: bc.name,
    about: bc.about,
    items: closure.items.length,
    bytes: closure.items.reduce((s, it) => s + it.narSize, 0),
    storeLayers: Object.fromEntries(Object.entries(plans).map(([k, p]) => [k, storeLayers(p).length])),
    planMs,
    named,
    namedSummary: per((s) => summarize(named, s)),
    sweep,
    sweepSummary: per((s) => summarize(sweep, s)),
  };
  if (options.sticky) report.stickySummary = per((s) => summarize(sweep, s, "sticky"));
  if (bc.distro) {
    report.siblings = siblingImages(bc.distro).map((pair) => {
      const alone: Record<string, number> = {};
      const family: Record<string, number | null> = {};
      for (const s of options.strategies) {
        alone[s] = siblingSharing(planWith(s, pair.a, options.max), planWith(s, pair.b, options.max)).fraction;
        family[s] = s === "auto-layer" ? null : siblingSharing(...planSiblings(s, pair.a, pair.b, options.max)).fraction;
      }
      return { label: `${pair.label} (${pair.a.items.length} + ${pair.b.items.length} items)`, alone, family };
    });
  }
  return report;
}

// ---- markdown -------------------------------------------------------------------------------------------------------

export const MB = (n: number): string => (n / 1e6).toFixed(n < 1e7 ? 2 : 0);
export const x = (v: number): string => (Number.isNaN(v) ? "–" : `${v < 10 ? v.toFixed(2) : v.toFixed(0)}×`);
/** Summary figures: three decimals below 10×, so a goal such as 1.2× is not met by rounding. */
export const x3 = (v: number): string => (!Number.isNaN(v) && v < 10 ? `${v.toFixed(3)}×` : x(v));
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
/** No worst update to name when there are none or every one re-pulls exactly the ideal. */
const worstCell = (s: Summary): string => (s.updates === 0 || s.worst <= 1 ? "–" : `${s.worstLabel} (${MB(s.worstIdeal)})`);

/** Rows of a table of updates (rows) by strategy (columns), with geometric mean and worst. */
export function updatesTable(results: readonly UpdateResult[], strategies: readonly string[], kind: "repull" | "sticky" = "repull"): string[] {
  const lines = [`| update | changed MB (ideal) | ${strategies.join(" | ")} |`, `|---|---|${strategies.map(() => "---").join("|")}|`];
  for (const r of results) lines.push(`| ${r.label} | ${MB(r.ideal)} | ${strategies.map((s) => x(ratio(r, s, kind))).join(" | ")} |`);
  const sum = Object.fromEntries(strategies.map((s) => [s, summarize(results, s, kind)]));
  lines.push(`| **geometric mean** | | ${strategies.map((s) => x3(sum[s]!.geomean)).join(" | ")} |`);
  lines.push(`| **worst** | | ${strategies.map((s) => x3(sum[s]!.worst)).join(" | ")} |`);
  return lines;
}

export function closureMarkdown(r: ClosureReport, options: SweepOptions): string[] {
  const out = [`### ${r.name}: ${r.items} items, ${(r.bytes / 1e9).toFixed(2)} GB, max ${options.max} (${r.about})`, ""];
  const n = r.sweep.length;
  out.push(`Sweep over ${n} single-package updates${options.sweep === "all" ? " (every item but the profile)" : ", evenly spaced by name"}; ratio re-pull / ideal; worst update with its changed MB; plan time median of 3.`, "");
  const sticky = r.stickySummary !== undefined;
  const head = ["strategy", "plan ms", "store layers", "fresh: geometric mean", "worst", "worst update", "> 2×"];
  if (sticky) head.push("sticky: geometric mean", "worst", "worst update", "> 2×");
  head.push("named: geometric mean / worst");
  out.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`);
  for (const s of options.strategies) {
    const f = r.sweepSummary[s]!;
    const row = [s, r.planMs[s]!.toFixed(0), String(r.storeLayers[s]), x3(f.geomean), x3(f.worst), worstCell(f), String(f.above2)];
    if (sticky) {
      const t = r.stickySummary![s]!;
      row.push(x3(t.geomean), x3(t.worst), worstCell(t), String(t.above2));
    }
    const nm = r.namedSummary[s]!;
    row.push(r.named.length === 0 ? "–" : `${x3(nm.geomean)} / ${x3(nm.worst)}`);
    out.push(`| ${row.join(" | ")} |`);
  }
  out.push("");
  if (r.named.length > 0) {
    out.push(`Named updates, fresh plans:`, "", ...updatesTable(r.named, options.strategies), "");
  }
  if (r.siblings) {
    out.push(`| sibling images: bytes in common that sit in identical layers | ${options.strategies.join(" | ")} |`, `|---|${options.strategies.map(() => "---").join("|")}|`);
    for (const sib of r.siblings) {
      out.push(`| ${sib.label}, planned alone | ${options.strategies.map((s) => pct(sib.alone[s])).join(" | ")} |`);
      out.push(`| ${sib.label}, planned as a family | ${options.strategies.map((s) => pct(sib.family[s])).join(" | ")} |`);
    }
    out.push("");
  }
  return out;
}

/** One row per closure, one column per strategy: sweep geometric mean / worst (fresh, or sticky). */
export function summaryMarkdown(reports: readonly ClosureReport[], options: SweepOptions, kind: "repull" | "sticky" = "repull"): string[] {
  const pick = (r: ClosureReport) => (kind === "repull" ? r.sweepSummary : r.stickySummary!);
  const out = [`| closure | items | GB | updates | ${options.strategies.map((s) => `${s}: geometric mean / worst`).join(" | ")} |`];
  out.push(`|---|---|---|---|${options.strategies.map(() => "---").join("|")}|`);
  for (const r of reports) {
    const sum = pick(r);
    out.push(`| ${r.name} | ${r.items} | ${(r.bytes / 1e9).toFixed(2)} | ${r.sweep.length} | ${options.strategies.map((s) => `${x3(sum[s]!.geomean)} / ${x3(sum[s]!.worst)}`).join(" | ")} |`);
  }
  return out;
}
