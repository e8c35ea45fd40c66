/**
 * How good can a grouping of one closure into `max` layers get at all? An estimate for issue 19: simulated
 * annealing over item -> layer assignments, minimising the static cost
 *   Σ over updates P of  ln(ratio(P)) + penalty · max(0, ln ratio(P) − ln 2),
 *   ratio(P) = bytes of the layers holding an item P changes / bytes P changes,
 * where an update of P changes P and everything depending on it (sizes as they are: the static view of a kept
 * plan). It only ever improves on its start (the `sharing` plan), so it says how far the planner is from what is
 * reachable; it is no planner itself (a different seed or one item more gives a different grouping, which is
 * exactly the instability issue 19 forbids). What it finds is reachable, so the best grouping is at least that
 * good; it proves nothing about how much better the best could be.
 */
import { dependentsOf, prng } from "./closures.ts";
import type { Closure } from "../src/store/types.ts";

export interface StaticStats {
  updates: number;
  geomean: number;
  worst: number;
  above2: number;
  layers: number;
}

export interface AnnealOptions {
  max: number;
  iterations: number;
  /** Weight of ln(ratio) above ln 2 (0: the geometric mean alone). */
  penalty: number;
  seed: number;
}

/** Items as indexes, the updates' changed sets, and who refers to what. */
interface Model {
  sizes: Float64Array;
  /** Per update: the items it changes. */
  changes: Int32Array[];
  changedBytes: Float64Array;
  /** Per item: the updates that change it. */
  changedBy: Int32Array[];
  /** Per item: its references and referrers (candidate layers for a move). */
  neighbours: Int32Array[];
}

function modelOf(closure: Closure): Model {
  const index = new Map(closure.items.map((it, i) => [it.path, i]));
  const roots = new Set(closure.roots);
  const sizes = Float64Array.from(closure.items, (it) => it.narSize);
  const updates = closure.items.filter((it) => !roots.has(it.path));
  const changes = updates.map((it) => Int32Array.from([...dependentsOf(closure, it.path)].map((p) => index.get(p)!)));
  const changedBytes = Float64Array.from(changes, (c) => c.reduce((sum, i) => sum + sizes[i]!, 0));
  const by: number[][] = closure.items.map(() => []);
  changes.forEach((c, u) => c.forEach((i) => by[i]!.push(u)));
  const near: Set<number>[] = closure.items.map(() => new Set());
  closure.items.forEach((it, i) => {
    for (const r of it.references) {
      const j = index.get(r);
      if (j === undefined || j === i) continue;
      near[i]!.add(j);
      near[j]!.add(i);
    }
  });
  return { sizes, changes, changedBytes, changedBy: by.map((b) => Int32Array.from(b)), neighbours: near.map((s) => Int32Array.from(s)) };
}

/** Static ratios of an assignment (item index -> layer), computed from scratch. */
export function staticStats(closure: Closure, layerOf: ArrayLike<number>): StaticStats {
  const m = modelOf(closure);
  return statsOf(m, layerOf);
}

function statsOf(m: Model, layerOf: ArrayLike<number>): StaticStats {
  const bytes = new Map<number, number>();
  for (let i = 0; i < m.sizes.length; i++) bytes.set(layerOf[i]!, (bytes.get(layerOf[i]!) ?? 0) + m.sizes[i]!);
  let logs = 0;
  let worst = 0;
  let above2 = 0;
  m.changes.forEach((items, u) => {
    const touched = new Set<number>();
    for (const i of items) touched.add(layerOf[i]!);
    let pull = 0;
    for (const l of touched) pull += bytes.get(l)!;
    const r = pull / m.changedBytes[u]!;
    logs += Math.log(r);
    worst = Math.max(worst, r);
    if (r > 2) above2++;
  });
  const updates = m.changes.length;
  return { updates, geomean: updates === 0 ? 1 : Math.exp(logs / updates), worst, above2, layers: [...bytes.values()].filter((b) => b > 0).length };
}

/**
 * Anneals from `start` (item index -> layer, layers numbered below `max`); returns the best assignment seen (by
 * the penalised cost) and its statistics. Deterministic for a seed.
 */
export function anneal(closure: Closure, start: ArrayLike<number>, o: AnnealOptions): { layerOf: Int32Array; start: StaticStats; end: StaticStats; cost: number } {
  const m = modelOf(closure);
  const n = m.sizes.length;
  const L = o.max;
  const U = m.changes.length;
  const layerOf = Int32Array.from(start);
  if (layerOf.some((l) => l < 0 || l >= L)) throw new Error(`anneal: a start layer is outside 0..${L - 1}`);
  const bytes = new Float64Array(L);
  for (let i = 0; i < n; i++) bytes[layerOf[i]!] = bytes[layerOf[i]!]! + m.sizes[i]!;
  // count[u·L + l]: items of layer l that update u changes; touching[l]: the updates with count > 0.
  const count = new Int32Array(U * L);
  m.changes.forEach((items, u) => items.forEach((i) => count[u * L + layerOf[i]!]!++));
  const touching: Set<number>[] = Array.from({ length: L }, () => new Set());
  const pull = new Float64Array(U);
  for (let u = 0; u < U; u++) {
    for (let l = 0; l < L; l++) {
      if (count[u * L + l]! === 0) continue;
      pull[u] = pull[u]! + bytes[l]!;
      touching[l]!.add(u);
    }
  }
  const cost = (u: number, p: number): number => {
    const r = Math.log(p / m.changedBytes[u]!);
    return r + (r > Math.LN2 ? o.penalty * (r - Math.LN2) : 0);
  };
  let total = 0;
  for (let u = 0; u < U; u++) total += cost(u, pull[u]!);
  let best = total;
  const bestLayerOf = Int32Array.from(layerOf);
  const startStats = statsOf(m, layerOf);
  const random = prng(o.seed);
  const moved = new Map<number, number>();
  let temperature = 0.05;
  // Thirty coolings by 0.7 whatever the number of steps: late moves are then taken only when they help.
  const cool = Math.max(1, Math.floor(o.iterations / 30));
  for (let step = 1; step <= o.iterations; step++) {
    if (step % cool === 0) temperature *= 0.7;
    const i = Math.floor(random() * n);
    const from = layerOf[i]!;
    const near = m.neighbours[i]!;
    // Mostly towards a neighbour's layer (where a good move usually is), sometimes anywhere (an empty layer too).
    const to = near.length > 0 && random() < 0.7 ? layerOf[near[Math.floor(random() * near.length)]!]! : Math.floor(random() * L);
    if (to === from) continue;
    const s = m.sizes[i]!;
    moved.clear();
    const get = (u: number) => moved.get(u) ?? pull[u]!;
    for (const u of touching[from]!) moved.set(u, get(u) - s);
    for (const u of touching[to]!) moved.set(u, get(u) + s);
    for (const u of m.changedBy[i]!) {
      if (count[u * L + from] === 1) moved.set(u, get(u) - (bytes[from]! - s));
      if (count[u * L + to] === 0) moved.set(u, get(u) + bytes[to]! + s);
    }
    let delta = 0;
    for (const [u, p] of moved) delta += cost(u, p) - cost(u, pull[u]!);
    if (delta > 0 && random() >= Math.exp(-delta / temperature)) continue;
    for (const [u, p] of moved) pull[u] = p;
    for (const u of m.changedBy[i]!) {
      if (--count[u * L + from]! === 0) touching[from]!.delete(u);
      if (count[u * L + to]!++ === 0) touching[to]!.add(u);
    }
    bytes[from] = bytes[from]! - s;
    bytes[to] = bytes[to]! + s;
    layerOf[i] = to;
    total += delta;
    if (total < best - 1e-9) {
      best = total;
      bestLayerOf.set(layerOf);
    }
  }
  // cost: the best penalised cost as the moves tracked it (a test recomputes it from the assignment).
  return { layerOf: bestLayerOf, start: startStats, end: statsOf(m, bestLayerOf), cost: best };
}
