/**
 * What no grouping can beat (issue 19): lower bounds on the static ratios of every partition of a closure into
 * `max` layers, where an update of item y changes U(y) (y and everything depending on it, u_y bytes) and re-pulls
 * every layer holding an item of U(y). The annealer (bench/sharing-anneal.ts) says what some grouping reaches;
 * this says what none can, so together they bracket the best grouping.
 *
 * The argument. Let S be the bytes of y's layer. That layer is re-pulled, and so is all of U(y), so
 *   ratio(y) ≥ max(S, u_y) / u_y.
 * In each layer the items' shares s_y / S sum to 1, so over any partition into K layers Σ_y s_y / S_{layer(y)} ≤ K.
 * Both hold for every partition whatever the references are, so a relaxation that only keeps them bounds from below:
 *   - worst ratio ≤ t needs S ≤ t·u_y for every y, hence Σ_y s_y / (t·u_y) ≤ K: t ≥ Σ_y (s_y/u_y) / K;
 *   - at most v updates above t: the items left out may be the v largest terms s_y / (t·u_y), the rest must fit K;
 *   - the geometric mean: minimise Σ ln max(1, S_y/u_y) subject to Σ s_y/S_y ≤ K (each S_y chosen freely in
 *     [u_y, total]). The problem is convex in ln S_y; its Lagrangian optimum is S_y = clamp(λ·s_y, u_y, total),
 *     with λ found by bisection so that the budget is met.
 * Roots are never updated in the sweep, so they are left out (which only weakens the bound). The bounds are for the
 * static view (the plan kept, sizes as they are), which is also what a fresh plan that sees no hashes gives.
 */
import { dependentsOf } from "./closures.ts";
import type { Closure } from "../src/store/types.ts";

/** Per update: the updated item's bytes, the bytes the update changes, and its largest root's bytes. */
export interface UpdateShare {
  size: number;
  changed: number;
  root: number;
}

export function updateShares(closure: Closure): UpdateShare[] {
  const sizes = new Map(closure.items.map((it) => [it.path, it.narSize]));
  const roots = new Set(closure.roots);
  return closure.items
    .filter((it) => !roots.has(it.path))
    .map((it) => {
      let changed = 0;
      let root = 0;
      for (const p of dependentsOf(closure, it.path)) {
        changed += sizes.get(p)!;
        if (roots.has(p)) root = Math.max(root, sizes.get(p)!);
      }
      return { size: it.narSize, changed, root };
    });
}

export interface Bounds {
  updates: number;
  layers: number;
  /** No partition into `layers` layers has a smaller worst ratio. */
  worst: number;
  /** Nor fewer updates above 2×. */
  above2: number;
  /** Nor a smaller geometric mean. */
  geomean: number;
  /** Layers any partition needs for worst ≤ 2× (the target). */
  layersForWorst2: number;
  /** Layers the relaxation needs for a geometric mean ≤ 1.3× (the target). */
  layersForGeomean13: number;
}

/** Non-root bytes y's layer may hold for ratio(y) ≤ t. */
const capacity = (s: UpdateShare, t: number): number => t * s.changed - s.root;

/** Layers needed (the relaxation) for ratio ≤ t on every update but the `skip` largest terms. */
function density(shares: readonly UpdateShare[], t: number): number[] {
  return shares.map((s) => s.size / capacity(s, t)).sort((a, b) => b - a);
}

const sum = (xs: readonly number[], from = 0): number => xs.slice(from).reduce((a, b) => a + b, 0);

/** The smallest worst ratio of any partition into `layers` layers. */
export function worstBound(shares: readonly UpdateShare[], layers: number): number {
  if (sum(density(shares, 1)) <= layers) return 1;
  let lo = 1;
  let hi = 2;
  while (sum(density(shares, hi)) > layers) hi *= 2;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (sum(density(shares, mid)) > layers) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Fewest updates above `t`: the largest terms left out until the rest fits. */
export function fewestAbove(shares: readonly UpdateShare[], layers: number, t: number): number {
  const terms = density(shares, t);
  let rest = sum(terms);
  let out = 0;
  // A tolerance, so that a partition meeting the bound exactly is not counted as a violation by rounding.
  while (rest > layers * (1 + 1e-12) && out < terms.length) rest -= terms[out++]!;
  return out;
}

/** y's non-root layer bytes at multiplier μ: the stationary point of ln(S+r) + μ·s/S, clamped to [u−r, total]. */
function layerAt(s: UpdateShare, mu: number, total: number): number {
  const stationary = (mu * s.size + Math.sqrt(mu * mu * s.size * s.size + 4 * mu * s.size * s.root)) / 2;
  return Math.min(total, Math.max(s.changed - s.root, stationary));
}

function atMultiplier(shares: readonly UpdateShare[], mu: number, total: number): { logs: number; budget: number } {
  let logs = 0;
  let budget = 0;
  for (const s of shares) {
    const S = layerAt(s, mu, total);
    const r = (S + s.root) / s.changed;
    if (r > 1) logs += Math.log(r);
    budget += s.size / S;
  }
  return { logs, budget };
}

/** The smallest geometric mean of any partition into `layers` layers (the convex relaxation's optimum). */
export function geomeanBound(shares: readonly UpdateShare[], layers: number, total: number): number {
  if (shares.length === 0 || atMultiplier(shares, 0, total).budget <= layers) return 1;
  // The budget falls as μ grows; at μ = total / the smallest size every layer is the whole closure.
  let lo = 0;
  let hi = total / Math.min(...shares.map((s) => s.size).filter((b) => b > 0), total);
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (atMultiplier(shares, mid, total).budget > layers) lo = mid;
    else hi = mid;
  }
  return Math.exp(atMultiplier(shares, hi, total).logs / shares.length);
}

export function boundsFor(closure: Closure, layers: number): Bounds {
  const shares = updateShares(closure).filter((s) => s.size > 0);
  const roots = new Set(closure.roots);
  const total = closure.items.reduce((n, it) => n + (roots.has(it.path) ? 0 : it.narSize), 0);
  let need13 = 1;
  while (need13 < shares.length && geomeanBound(shares, need13, total) > 1.3) need13++;
  return {
    updates: shares.length,
    layers,
    worst: worstBound(shares, layers),
    above2: fewestAbove(shares, layers, 2),
    geomean: geomeanBound(shares, layers, total),
    layersForWorst2: Math.ceil(sum(density(shares, 2)) - 1e-9),
    layersForGeomean13: need13,
  };
}
