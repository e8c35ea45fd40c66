/**
 * The hierarchy the `sharing` strategy cuts its layers from: items merged pairwise, bottom up, in rounds of
 * reciprocal nearest neighbours. In each round every group finds the group it is cheapest to share a layer with
 * (merge cost, sharing.ts); two groups that pick each other merge. Nothing else is compared.
 *
 * Why rounds of mutual choices and not one global cheapest-first order (the greedy this replaced): a global order
 * makes every merge depend on every earlier one, so when one package's update nudges its costs, the order of
 * unrelated merges shifts and a fresh plan regroups items the update never touched (the cascade issue 19 measured,
 * up to 25× the changed bytes). A mutual choice depends only on the two groups and their candidates, so a change
 * spreads only to groups that were, or become, the changed group's partners. The costs see sizes in coarse classes
 * (powers of 4, small items at one floor class), so most updates change no cost at all.
 *
 * Candidates: every other group while the closure is small; above ALL_PAIRS_LIMIT items, the groups holding an
 * item's references and referrers and the items of its size class that are near it in canonical order (a fixed
 * index distance, so that one item changing class does not shift the others' neighbours).
 */
import type { SharingGraph } from "./sharing-graph.ts";
import { wordWeight } from "./sharing-state.ts";

export interface Hierarchy {
  /** Per node: children (-1 for a leaf), the item of a leaf (-1 otherwise). Children come before parents. */
  left: number[];
  right: number[];
  item: number[];
  /** Per node: trigger set (union of its items' closures) and bytes in the cost's classes. */
  trig: Uint32Array[];
  classBytes: number[];
  top: number;
}

/** Canonical index distance within which items of one size class are candidates of each other. */
const NEAR_DISTANCE = 24;
/** Referrers of one item that are its candidates at most. */
const NEAR_REFERRERS = 32;

/** Merge cost of groups a and b: bytes(b)·W(T_a∖T_b) + bytes(a)·W(T_b∖T_a). Each difference is summed over the
 * words its own set uses, in word order: the same sums as over the union, as the other words add nothing. */
function mergeCost(h: Hierarchy, busy: Int32Array[], table: Float64Array, a: number, b: number): number {
  const ta = h.trig[a]!;
  const tb = h.trig[b]!;
  const ba = busy[a]!;
  const bb = busy[b]!;
  let onlyA = 0;
  for (let i = 0; i < ba.length; i++) {
    const k = ba[i]!;
    const d = ta[k]! & ~tb[k]!;
    if (d !== 0) onlyA += wordWeight(table, k, d);
  }
  let onlyB = 0;
  for (let i = 0; i < bb.length; i++) {
    const k = bb[i]!;
    const d = tb[k]! & ~ta[k]!;
    if (d !== 0) onlyB += wordWeight(table, k, d);
  }
  return h.classBytes[b]! * onlyA + h.classBytes[a]! * onlyB;
}

const busyWords = (t: Uint32Array): Int32Array => {
  const out: number[] = [];
  for (let k = 0; k < t.length; k++) if (t[k] !== 0) out.push(k);
  return Int32Array.from(out);
};

/** A min-heap of (cost, node), ordered by cost, then node. Sifts move a hole instead of swapping pairs. */
class CostHeap {
  private costs: number[] = [];
  private ids: number[] = [];
  get size(): number {
    return this.costs.length;
  }
  topId(): number {
    return this.ids[0]!;
  }
  push(cost: number, id: number): void {
    const { costs, ids } = this;
    let i = costs.length;
    costs.push(cost);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pc = costs[parent]!;
      if (!(cost < pc || (cost === pc && id < ids[parent]!))) break;
      costs[i] = pc;
      ids[i] = ids[parent]!;
      i = parent;
    }
    costs[i] = cost;
    ids[i] = id;
  }
  pop(): void {
    const { costs, ids } = this;
    const cost = costs.pop()!;
    const id = ids.pop()!;
    const n = costs.length;
    if (n === 0) return;
    // The last entry goes where the top was, sifted down.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && (costs[l + 1]! < costs[l]! || (costs[l + 1] === costs[l] && ids[l + 1]! < ids[l]!))) m = l + 1;
      const mc = costs[m]!;
      if (!(mc < cost || (mc === cost && ids[m]! < id))) break;
      costs[i] = mc;
      ids[i] = ids[m]!;
      i = m;
    }
    costs[i] = cost;
    ids[i] = id;
  }
}

/** Item-level candidates: references both ways and same-class items near in canonical order. */
function nearItems(g: SharingGraph, itemClass: Float64Array): number[][] {
  const n = g.items.length;
  const near = g.items.map(() => new Set<number>());
  // References, except a root's (a profile refers to every package) and past the first NEAR_REFERRERS referrers
  // of an item in canonical order (a libc has thousands): such candidates are never cheap, only slow to compare.
  const referrers = new Int32Array(n);
  g.children.forEach((cs, p) => {
    if (!g.referenced[p]) return;
    for (const c of cs) {
      if (referrers[c]!++ >= NEAR_REFERRERS) continue;
      near[p]!.add(c);
      near[c]!.add(p);
    }
  });
  const byClass = new Map<number, number[]>();
  for (let x = 0; x < n; x++) {
    const key = itemClass[x]! * 2 + g.referenced[x]!;
    let list = byClass.get(key);
    if (!list) byClass.set(key, (list = []));
    list.push(x);
  }
  for (const list of byClass.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length && list[j]! - list[i]! <= NEAR_DISTANCE; j++) {
        near[list[i]!]!.add(list[j]!);
        near[list[j]!]!.add(list[i]!);
      }
    }
  }
  return near.map((s) => [...s].sort((a, b) => a - b));
}

/**
 * Builds the hierarchy over all items of `g`. `itemClass` holds each item's bytes as the costs see them, `table`
 * the update weights (sharing-state.ts weightTable).
 */
export function buildHierarchy(g: SharingGraph, itemClass: Float64Array, table: Float64Array): Hierarchy {
  const n = g.items.length;
  const h: Hierarchy = { left: [], right: [], item: [], trig: [], classBytes: [], top: -1 };
  const busy: Int32Array[] = [];
  /** Per node: its lowest canonical item. */
  const first: number[] = [];
  for (let x = 0; x < n; x++) {
    h.left.push(-1);
    h.right.push(-1);
    h.item.push(x);
    h.trig.push(g.closure[x]!);
    h.classBytes.push(itemClass[x]!);
    busy.push(busyWords(g.closure[x]!));
    first.push(x);
  }
  const near = nearItems(g, itemClass);
  const alive = new Uint8Array(2 * n);
  alive.fill(1, 0, n);
  let aliveList = Array.from({ length: n }, (_, i) => i);
  // Candidate groups per group, kept as lists of node ids that may since have merged: `find` gives the group now.
  const up = new Int32Array(2 * n).fill(-1);
  const find = (x: number): number => {
    let r = x;
    while (up[r]! >= 0) r = up[r]!;
    while (up[x]! >= 0) {
      const next = up[x]!;
      up[x] = r;
      x = next;
    }
    return r;
  };
  const cand: (number[] | undefined)[] = near;
  // Deduplicates a candidate list: seen[r] === stamp when r is in the list being made (no Set per call).
  const seen = new Int32Array(2 * n);
  let stamp = 0;
  /** The groups a group may merge with (any order: ties are broken by node id where they are compared). */
  const candidates = (a: number): number[] => {
    const now: number[] = [];
    stamp++;
    for (const x of cand[a]!) {
      const r = find(x);
      if (r === a || seen[r] === stamp) continue;
      seen[r] = stamp;
      now.push(r);
    }
    cand[a] = now;
    return now;
  };
  // Per group, the costs of merging with each candidate, cheapest first (ties: lower node): a merge changes no
  // other pair's cost, so a group whose partner merged only drops the stale entries instead of comparing again.
  const heaps: (CostHeap | undefined)[] = [];
  const heapOf = (a: number): CostHeap => (heaps[a] ??= new CostHeap());
  const pairUp = (a: number, b: number): void => {
    const c = mergeCost(h, busy, table, a, b);
    heapOf(a).push(c, b);
    heapOf(b).push(c, a);
  };
  for (const a of aliveList) for (const b of candidates(a)) if (b > a) pairUp(a, b);
  const partner = (a: number): number => {
    const heap = heaps[a];
    if (!heap) return -1;
    while (heap.size > 0 && !alive[heap.topId()]) heap.pop();
    return heap.size > 0 ? heap.topId() : -1;
  };
  const nn = new Int32Array(2 * n); // each living group's cheapest partner this round
  const isNew = new Uint8Array(2 * n);
  while (aliveList.length > 1) {
    for (const a of aliveList) nn[a] = partner(a);
    const created: number[] = [];
    for (const a of aliveList) {
      const b = nn[a]!;
      if (b <= a || nn[b] !== a) continue; // not mutual, or merged when its partner came by
      const t = new Uint32Array(g.words);
      const ta = h.trig[a]!;
      const tb = h.trig[b]!;
      for (let k = 0; k < t.length; k++) t[k] = ta[k]! | tb[k]!;
      const v = h.left.length;
      h.left.push(a);
      h.right.push(b);
      h.item.push(-1);
      h.trig.push(t);
      h.classBytes.push(h.classBytes[a]! + h.classBytes[b]!);
      busy.push(busyWords(t));
      first.push(Math.min(first[a]!, first[b]!));
      up[a] = v;
      up[b] = v;
      cand[v] = cand[a]!.concat(cand[b]!); // deduplicated by candidates(v) below
      cand[a] = cand[b] = undefined;
      heaps[a] = heaps[b] = undefined;
      alive[a] = 0;
      alive[b] = 0;
      alive[v] = 1;
      created.push(v);
    }
    if (created.length === 0) break; // groups with no candidate left: joined below
    aliveList = aliveList.filter((x) => alive[x]).concat(created);
    for (const v of created) isNew[v] = 1;
    for (const v of created) for (const b of candidates(v)) if (!isNew[b] || b > v) pairUp(v, b);
    for (const v of created) isNew[v] = 0;
  }
  // Groups that found no partner (no candidate in common) are joined in canonical order of their first item.
  let level = aliveList.map((v) => ({ v, first: first[v]! })).sort((p, q) => p.first - q.first).map((x) => x.v);
  while (level.length > 1) {
    const up: number[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      const a = level[i]!;
      const b = level[i + 1]!;
      const t = new Uint32Array(g.words);
      for (let k = 0; k < t.length; k++) t[k] = h.trig[a]![k]! | h.trig[b]![k]!;
      h.left.push(a);
      h.right.push(b);
      h.item.push(-1);
      h.trig.push(t);
      h.classBytes.push(h.classBytes[a]! + h.classBytes[b]!);
      up.push(h.left.length - 1);
    }
    if (level.length % 2 === 1) up.push(level.at(-1)!);
    level = up;
  }
  h.top = level[0] ?? -1;
  return h;
}

/** The items under node v, in canonical order. */
export function itemsUnder(h: Hierarchy, v: number): number[] {
  const out: number[] = [];
  const stack = [v];
  while (stack.length > 0) {
    const u = stack.pop()!;
    if (h.left[u]! < 0) out.push(h.item[u]!);
    else stack.push(h.left[u]!, h.right[u]!);
  }
  return out.sort((a, b) => a - b);
}
