/**
 * The reference graph as the `sharing` strategy sees it: items in a canonical order, each item's dependency
 * closure as a bitset, and the bytes an update of each item changes.
 *
 * An update of item P gives new store paths to P and to everything that depends on it, directly or not. So item X
 * changes exactly when P is in X's closure (X itself included), and a layer is re-pulled when P is in the union of
 * its items' closures: that union is the layer's "trigger set".
 */
import { indexGraph, postOrder } from "./graph.ts";
import type { StoreItem } from "../store/types.ts";
import { packageNameKey } from "./popularity.ts";
import { byBytes } from "../util/bytes.ts";


export interface SharingGraph {
  /** Items in canonical order: most dependents first, then by package name, then hash. An update changes hashes
   * but not names or the graph, so this order (and every tie-break made with it) survives updates, which keeps
   * unchanged layers unchanged. */
  items: StoreItem[];
  /** Direct references by index, self references dropped, sorted. */
  children: number[][];
  /** Whether anything in the closure refers to the item. */
  referenced: Uint8Array;
  /** Words per bitset. */
  words: number;
  /** closure[i]: the items i depends on, itself included (bit j set when j is in the closure). */
  closure: Uint32Array[];
  /** changedBytes[p]: bytes (in size classes) of the items an update of p changes (p and everything depending on it). */
  changedBytes: Float64Array;
}

/**
 * Sizes as the strategy sees them: rounded to powers of 4. An update moves the package's own size a little; with
 * exact sizes that nudges every merge cost near it and the greedy merging can cascade into a different grouping
 * of unrelated items. Classes keep most updates from changing any cost at all.
 */
export function sizeClass(bytes: number): number {
  return bytes <= 0 ? 0 : Math.pow(4, Math.round(Math.log2(bytes) / 2));
}

export function canonicalOrder(items: readonly StoreItem[]): StoreItem[] {
  const keyed = items.map((item) => ({ item, key: packageNameKey(item.path) }));
  keyed.sort((a, b) => byBytes(a.key, b.key) || byBytes(a.item.path, b.item.path));
  return keyed.map((k) => k.item);
}

export function buildSharingGraph(input: readonly StoreItem[]): SharingGraph {
  const byName = canonicalOrder(input);
  const first = closuresOf(byName);
  // Most depended-on first (then by name): closures then share their dense low words, so the bitset differences
  // the merging computes are short. Dependents counts are structural, so updates keep this order too.
  const count = new Int32Array(byName.length);
  for (const c of first.closure) forEachBit(c, (p) => count[p]!++);
  const perm = byName.map((_, i) => i).sort((a, b) => count[b]! - count[a]! || a - b);
  return closuresOf(perm.map((i) => byName[i]!));
}

/** The graph of `items`, in the order given. */
function closuresOf(items: StoreItem[]): SharingGraph {
  const n = items.length;
  const { children, referenced } = indexGraph(items);
  const words = Math.max(1, Math.ceil(n / 32));
  const closure = items.map(() => new Uint32Array(words));
  for (const i of postOrder(items, children)) {
    const c = closure[i]!;
    c[i >>> 5]! |= 1 << (i & 31);
    for (const k of children[i]!) {
      const ck = closure[k]!;
      for (let w = 0; w < words; w++) c[w]! |= ck[w]!;
    }
  }
  const changedBytes = new Float64Array(n);
  for (let x = 0; x < n; x++) {
    const size = sizeClass(items[x]!.narSize);
    forEachBit(closure[x]!, (p) => {
      changedBytes[p]! += size;
    });
  }
  return { items, children, referenced, words, closure, changedBytes };
}

export function forEachBit(bits: Uint32Array, f: (i: number) => void): void {
  for (let w = 0; w < bits.length; w++) {
    let x = bits[w]!;
    while (x !== 0) {
      const low = x & -x;
      f((w << 5) + 31 - Math.clz32(low));
      x ^= low;
    }
  }
}

export function countBits(bits: Uint32Array): number {
  let n = 0;
  forEachBit(bits, () => n++);
  return n;
}

export function intersect(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length);
  for (let w = 0; w < a.length; w++) out[w] = a[w]! & b[w]!;
  return out;
}
