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
 * Pure and deterministic: items are put in a canonical order (name, then hash) first, and every tie is broken by
 * that order, never by input order or Map iteration. A heap of candidate merges keeps the merging at O(n²) cost
 * evaluations (each a pass over two bitsets with per-byte weight tables).
 */
import type { StoreItem } from "../store/types.ts";
import { PairHeap } from "./sharing-heap.ts";
import { buildSharingGraph, countBits, intersect, sizeClass, type SharingGraph } from "./sharing-graph.ts";

export interface SharingGroup {
  /** In canonical order (the planner sorts them by path). */
  items: StoreItem[];
  reason: string;
}

interface State {
  g: SharingGraph;
  /** table[c * 256 + v]: summed weight 1/changed(P) of the updates P in byte c of a bitset when it holds v. */
  table: Float64Array;
  alive: Uint8Array;
  version: Int32Array;
  /** Per group slot (the lowest canonical index of its items): trigger set, bytes, members. */
  trig: Uint32Array[];
  bytes: Float64Array;
  members: number[][];
}

/** Per-byte sums of the update weights, so a weighted set difference costs four lookups per 32 items. */
function weightTable(weight: Float64Array, words: number): Float64Array {
  const table = new Float64Array(words * 4 * 256);
  for (let c = 0; c < words * 4; c++) {
    for (let v = 1; v < 256; v++) {
      const low = 31 - Math.clz32(v & -v);
      table[c * 256 + v] = table[c * 256 + (v & (v - 1))]! + (weight[c * 8 + low] ?? 0);
    }
  }
  return table;
}

/** Increase of the summed update ratios when groups a and b share a layer. */
function mergeCost(s: State, a: number, b: number): number {
  const ta = s.trig[a]!;
  const tb = s.trig[b]!;
  const t = s.table;
  let onlyA = 0;
  let onlyB = 0;
  for (let k = 0; k < ta.length; k++) {
    const x = ta[k]!;
    const y = tb[k]!;
    if (x === y) continue;
    const base = k << 10;
    const d = x & ~y;
    if (d !== 0) onlyA += t[base + (d & 255)]! + t[base + 256 + ((d >>> 8) & 255)]! + t[base + 512 + ((d >>> 16) & 255)]! + t[base + 768 + (d >>> 24)]!;
    const e = y & ~x;
    if (e !== 0) onlyB += t[base + (e & 255)]! + t[base + 256 + ((e >>> 8) & 255)]! + t[base + 512 + ((e >>> 16) & 255)]! + t[base + 768 + (e >>> 24)]!;
  }
  return s.bytes[b]! * onlyA + s.bytes[a]! * onlyB;
}

/**
 * Merges groups greedily, cheapest merge first (ties: lowest slots), until at most `target` remain; `fixed` slots
 * (the largest items) never merge and count towards the target.
 */
function mergeDown(s: State, target: number, fixed: Uint8Array): void {
  const n = s.alive.length;
  const fixedCount = fixed.reduce((sum, f) => sum + f, 0);
  let count = n - fixedCount;
  const goal = target - fixedCount;
  if (count <= goal) return;
  const heap = new PairHeap();
  for (let a = 0; a < n; a++) {
    if (fixed[a]) continue;
    for (let b = a + 1; b < n; b++) if (!fixed[b]) heap.push(mergeCost(s, a, b), a, b, 0, 0);
  }
  while (count > goal) {
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
    for (let a = 0; a < n; a++) {
      if (a === lo || !s.alive[a] || fixed[a]) continue;
      const c = mergeCost(s, a, lo);
      if (a < lo) heap.push(c, a, lo, s.version[a]!, s.version[lo]!);
      else heap.push(c, lo, a, s.version[lo]!, s.version[a]!);
    }
  }
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
  if (members.length === 1) {
    const it = g.items[members[0]!]!;
    const why = large === 1 ? "the largest item, alone" : large > 1 ? `one of the ${large} largest items, alone` : "alone";
    return `${nameOf(it.path)} (${size}) ${why}: changes only when one of the ${triggers} items of its closure is updated`;
  }
  let common = g.closure[members[0]!]!;
  for (const m of members) common = intersect(common, g.closure[m]!);
  const always = countBits(common);
  if (always === n && members.some((m) => !g.referenced[m])) {
    return `${members.length} roots or items depending on the whole closure (${size}): every update changes them all, so they share a small layer of their own`;
  }
  return `${members.length} items (${size}) that change together: ${always} of the ${triggers} updates that change one of them change all of them`;
}

/**
 * Groups `items` into at most `layers` store layers (layers >= 1), bottom of the image first: layers that fewer
 * updates touch (base libraries) below, the profile and roots on top. Throws PlanError on a reference to an item
 * outside the closure or a reference cycle.
 */
export function groupBySharing(items: readonly StoreItem[], layers: number): SharingGroup[] {
  const g = buildSharingGraph(items);
  const n = g.items.length;
  if (n === 0) return [];
  const weight = new Float64Array(n);
  // +1: an update that changes only empty items still costs something to re-pull, and never divides by zero.
  for (let p = 0; p < n; p++) weight[p] = 1 / (sizeClass(g.changedBytes[p]!) + 1);
  const s: State = {
    g,
    table: weightTable(weight, g.words),
    alive: new Uint8Array(n).fill(1),
    trig: g.closure.map((c) => c.slice()),
    bytes: Float64Array.from(g.items, (it) => sizeClass(it.narSize)),
    members: g.items.map((_, i) => [i]),
    version: new Int32Array(n),
  };
  // The largest items get half of the layers, one each, before any merging: a large item alone is re-pulled only
  // when it changes, and it is alone in every image that holds it, so sibling images share it.
  const target = Math.max(1, layers);
  const fixed = new Uint8Array(n);
  if (n > target) {
    const bySize = g.items.map((_, i) => i).sort((a, b) => g.items[b]!.narSize - g.items[a]!.narSize || a - b);
    for (const i of bySize.slice(0, Math.floor((target - 1) / 2))) fixed[i] = 1;
  }
  mergeDown(s, target, fixed);
  const slots: { slot: number; triggers: number }[] = [];
  for (let a = 0; a < n; a++) if (s.alive[a]) slots.push({ slot: a, triggers: countBits(s.trig[a]!) });
  slots.sort((x, y) => x.triggers - y.triggers || x.slot - y.slot);
  return slots.map(({ slot }) => ({
    items: [...s.members[slot]!].sort((x, y) => x - y).map((i) => g.items[i]!),
    reason: reasonFor(s, slot, fixed[slot] ? fixed.reduce((sum, f) => sum + f, 0) : 0),
  }));
}

