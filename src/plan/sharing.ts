/**
 * The `sharing` strategy: layers whose items change together, so that pulling the image after a package update
 * re-pulls little more than the bytes that really changed.
 *
 * Model (see sharing-graph.ts): an update of P changes P and everything depending on it. A layer is re-pulled when
 * one of its items changes, and then all of its bytes are. The relative cost of an update is
 *   ratio(P) = (bytes of the layers re-pulled) / (bytes changed)  >= 1.
 * We start with one layer per item (every ratio 1) and merge greedily, cheapest first, until the layers fit
 * `max`. Merging layers A and B (trigger sets T_A, T_B) adds, for every update P in T_A but not in T_B, all of B's
 * bytes to the re-pull (none of B changes), and symmetrically; so the merge raises the sum of ratios by
 *   |B| * Σ_{P ∈ T_A∖T_B} 1/changed(P)  +  |A| * Σ_{P ∈ T_B∖T_A} 1/changed(P).
 * This is exact for the objective "sum over every single-item update of its ratio", and it keeps by itself large
 * items alone (merging them is costly), lets an item join the items that depend on it when it is small compared
 * with what their updates change, and gathers the profile and other roots, which change on every update, with
 * nothing but each other.
 *
 * Order of work: the largest items get half of the layers, one each; the small items only one of them uses join
 * its layer (sharing-refine.ts: attachToLarge); the greedy merges the rest into the other half; single items then
 * move between those groups while that lowers the objective (refine). On the generated 800-item closures (eight
 * seeds) the two steps lower the mean update ratio from 1.58 to 1.47 and the named scenarios' from 1.26 to 1.22.
 *
 * Pure and deterministic: items are put in a canonical order (name, then hash) first, and every tie is broken by
 * that order, never by input order or Map iteration. A heap of candidate merges keeps the merging at O(n²) cost
 * evaluations (each a pass over two bitsets with per-byte weight tables). Above EXACT_LIMIT groups that is too
 * slow (3 s for 2000 items, 17 s for 4000), so a coarse pass first merges only nearby pairs (an item and what it
 * refers to, items of about the same size) down to EXACT_LIMIT groups: 0.56 s and 0.94 s, and on the generated
 * 2000-item closure no worse a plan.
 */
import type { StoreItem } from "../store/types.ts";
import { PairHeap } from "./sharing-heap.ts";
import { buildSharingGraph, countBits, intersect, sizeClass } from "./sharing-graph.ts";
import { attachToLarge, refine } from "./sharing-refine.ts";
import { weightTable, wordWeight, type State } from "./sharing-state.ts";

export interface SharingGroup {
  /** In canonical order (the planner sorts them by path). */
  items: StoreItem[];
  reason: string;
}

/** Increase of the summed update ratios when groups a and b share a layer. */
function mergeCost(s: State, a: number, b: number): number {
  const ta = s.trig[a]!;
  const tb = s.trig[b]!;
  let onlyA = 0;
  let onlyB = 0;
  for (let k = 0; k < ta.length; k++) {
    const x = ta[k]!;
    const y = tb[k]!;
    if (x === y) continue;
    onlyA += wordWeight(s.table, k, x & ~y);
    onlyB += wordWeight(s.table, k, y & ~x);
  }
  return s.bytes[b]! * onlyA + s.bytes[a]! * onlyB;
}

/**
 * Merges groups greedily, cheapest merge first (ties: lowest slots), until at most `goal` unfixed groups remain;
 * `fixed` slots (the largest items) never merge. With `near`, only groups that are near each other are candidates
 * (a merged group is near what either part was near): the coarse first pass for large closures.
 */
function mergeDown(s: State, goal: number, fixed: Uint8Array, near?: Set<number>[]): void {
  const n = s.alive.length;
  const free = (a: number): boolean => s.alive[a] === 1 && fixed[a] === 0;
  let count = 0;
  for (let a = 0; a < n; a++) if (free(a)) count++;
  if (count <= goal) return;
  const heap = new PairHeap();
  const push = (a: number, b: number): void => {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    heap.push(mergeCost(s, lo, hi), lo, hi, s.version[lo]!, s.version[hi]!);
  };
  for (let a = 0; a < n; a++) {
    if (!free(a)) continue;
    if (near) {
      for (const b of near[a]!) if (b > a && free(b)) push(a, b);
    } else {
      for (let b = a + 1; b < n; b++) if (free(b)) push(a, b);
    }
  }
  while (count > goal && heap.size > 0) {
    const [, lo, hi, vlo, vhi] = heap.pop()!;
    if (!s.alive[lo] || !s.alive[hi] || s.version[lo] !== vlo || s.version[hi] !== vhi) continue;
    const tl = s.trig[lo]!;
    const th = s.trig[hi]!;
    for (let k = 0; k < tl.length; k++) tl[k]! |= th[k]!;
    s.bytes[lo]! += s.bytes[hi]!;
    s.members[lo]!.push(...s.members[hi]!);
    s.alive[hi] = 0;
    s.version[lo]!++;
    count--;
    if (count <= goal) break;
    // Only pairs with the merged group changed cost; the old entries of lo and hi are now stale.
    if (near) {
      for (const b of near[hi]!) {
        near[lo]!.add(b);
        near[b]!.add(lo);
      }
      near[lo]!.delete(lo);
      near[lo]!.delete(hi);
      for (const b of near[lo]!) if (free(b)) push(b, lo);
    } else {
      for (let a = 0; a < n; a++) if (a !== lo && free(a)) push(a, lo);
    }
  }
}

/** Groups the exact greedy is run on at most: its cost grows with the cube of the count. */
const EXACT_LIMIT = 800;
/** How many neighbours in size order an item is near in the coarse pass. */
const SIZE_WINDOW = 6;

/**
 * What the coarse pass may merge: items and the items they refer to (they change together), and items of about
 * the same size with the same standing (both referred to, or both not), which is how leaf applications group.
 */
function nearSets(s: State, fixed: Uint8Array): Set<number>[] {
  const { g } = s;
  const n = g.items.length;
  const near = g.items.map(() => new Set<number>());
  for (let a = 0; a < n; a++) {
    for (const b of g.children[a]!) {
      near[a]!.add(b);
      near[b]!.add(a);
    }
  }
  const order = g.items.map((_, i) => i).filter((i) => !fixed[i]);
  order.sort((a, b) => g.referenced[a]! - g.referenced[b]! || s.bytes[a]! - s.bytes[b]! || a - b);
  for (let k = 0; k < order.length; k++) {
    for (let d = 1; d <= SIZE_WINDOW && k + d < order.length; d++) {
      near[order[k]!]!.add(order[k + d]!);
      near[order[k + d]!]!.add(order[k]!);
    }
  }
  return near;
}

const nameOf = (path: string): string => path.slice(path.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

function reasonFor(s: State, slot: number, large: number): string {
  const { g } = s;
  const members = s.members[slot]!;
  const n = g.items.length;
  const triggers = countBits(s.trig[slot]!);
  const size = formatBytes(members.reduce((sum, m) => sum + g.items[m]!.narSize, 0));
  const closureNote = `changes only when one of the ${triggers} items of its closure is updated`;
  if (members.length === 1) {
    const it = g.items[members[0]!]!;
    const why = large === 1 ? "the largest item, alone" : large > 1 ? `one of the ${large} largest items, alone` : "alone";
    return `${nameOf(it.path)} (${size}) ${why}: ${closureNote}`;
  }
  if (large > 0) {
    // A large item with the small items only it uses (attachToLarge): its slot is the large item itself.
    const name = nameOf(g.items[slot]!.path);
    const rank = large === 1 ? "the largest item" : `one of the ${large} largest items`;
    const own = formatBytes(g.items[slot]!.narSize);
    return `${name} (${own}), ${rank}, with ${members.length - 1} small items only it uses (${size} in all): updating one of them changes ${name} too, so the layer ${closureNote}`;
  }
  let common = g.closure[members[0]!]!;
  for (const m of members) common = intersect(common, g.closure[m]!);
  const always = countBits(common);
  if (always === n && members.some((m) => !g.referenced[m])) {
    return `${members.length} roots or items depending on the whole closure (${size}): every update changes them all, so they share a small layer of their own`;
  }
  if (always === 0) return `${members.length} items (${size}) put together to stay within max layers; no one update changes them all`;
  return `${members.length} items (${size}) that change together: ${always} of the ${triggers} updates that change one of them change all of them`;
}

/**
 * Groups `items` into at most `layers` store layers (layers >= 1), bottom of the image first: layers that fewer
 * updates touch (base libraries) below, the profile and roots on top. Throws PlanError on a reference to an item
 * outside the closure or a reference cycle.
 */
export function groupBySharing(items: readonly StoreItem[], layers: number, options: { refine?: boolean } = {}): SharingGroup[] {
  const g = buildSharingGraph(items);
  const n = g.items.length;
  if (n === 0) return [];
  const weight = new Float64Array(n);
  // +1: an update that changes only empty items still costs something to re-pull, and never divides by zero.
  for (let p = 0; p < n; p++) weight[p] = 1 / (sizeClass(g.changedBytes[p]!) + 1);
  const itemBytes = Float64Array.from(g.items, (it) => sizeClass(it.narSize));
  const s: State = {
    g,
    table: weightTable(weight, g.words),
    alive: new Uint8Array(n).fill(1),
    trig: g.closure.map((c) => c.slice()),
    bytes: itemBytes.slice(),
    members: g.items.map((_, i) => [i]),
    version: new Int32Array(n),
    itemBytes,
  };
  // The largest items get half of the layers, one each, before any merging: a large item is re-pulled only when it
  // changes (the small items that join it change it too), and sibling images holding it tend to share its layer.
  const target = Math.max(1, layers);
  const fixed = new Uint8Array(n);
  if (n > target) {
    const bySize = g.items.map((_, i) => i).sort((a, b) => g.items[b]!.narSize - g.items[a]!.narSize || a - b);
    for (const i of bySize.slice(0, Math.floor((target - 1) / 2))) fixed[i] = 1;
  }
  const fixedCount = fixed.reduce((sum, f) => sum + f, 0);
  const free = n - fixedCount - attachToLarge(s, fixed);
  // Large closures: a coarse pass over nearby pairs brings the groups down to what the exact pass handles quickly.
  if (free > EXACT_LIMIT) mergeDown(s, Math.max(EXACT_LIMIT, target - fixedCount), fixed, nearSets(s, fixed));
  mergeDown(s, target - fixedCount, fixed);
  if (options.refine !== false) refine(s, fixed);
  const slots: { slot: number; triggers: number }[] = [];
  for (let a = 0; a < n; a++) if (s.alive[a]) slots.push({ slot: a, triggers: countBits(s.trig[a]!) });
  slots.sort((x, y) => x.triggers - y.triggers || x.slot - y.slot);
  return slots.map(({ slot }) => ({
    items: [...s.members[slot]!].sort((x, y) => x - y).map((i) => g.items[i]!),
    reason: reasonFor(s, slot, fixed[slot] ? fixed.reduce((sum, f) => sum + f, 0) : 0),
  }));
}

