/**
 * The `popularity` strategy: Nix's classic "popularity contest" (nixpkgs
 * pkgs/build-support/references-by-popularity/closure-graph.py, used by dockerTools.buildLayeredImage).
 *
 * The script unrolls the reference graph into a tree from the roots (items nobody else refers to; self
 * references ignored), then folds it bottom up: a node's tally maps each strict descendant to a count, built from
 * its children c as  tally[c] += 1  and, for every d in c's own tally,  tally[d] += tally_c[d] + 1. The
 * roots are folded the same way under a virtual top node, and that top tally is the popularity. Items are then
 * ordered by popularity, highest first, equal popularity by the "package name" key (the name after the hash,
 * then the hash part), ascending.
 *
 * We compute the same numbers without building a tree or a map per node: for each item d, one pass over the
 * items in reverse topological order computes every node's tally for d (O(items × references) time, O(items)
 * memory). Counts grow with the number of paths through the graph, so they are exact doubles up to 2^53 and
 * recomputed with BigInt for the rare item above that.
 */
import { indexGraph, postOrder } from "./graph.ts";
import type { StoreItem } from "../store/types.ts";
import { byBytes } from "../util/bytes.ts";


/** closure-graph.py's sort key: the hash part moved after the name, so equally popular items sort by name. */
export function packageNameKey(path: string): string {
  const parts = path.split("-");
  const first = parts.shift()!;
  return [...parts, first].join("-");
}

interface Graph {
  paths: string[];
  /** Deduplicated references by index, self references dropped. */
  children: number[][];
  /** Indexes, children before parents. */
  postOrder: number[];
  roots: number[];
}

function buildGraph(items: readonly StoreItem[]): Graph {
  const { children, referenced } = indexGraph(items);
  const roots = items.map((_, i) => i).filter((i) => !referenced[i]);
  return { paths: items.map((it) => it.path), children, postOrder: postOrder(items, children), roots };
}

/** One popularity pass: the item it counts for, and the buffers every pass reuses. */
interface Pass {
  /** The item's index. */
  d: number;
  /** Its position in g.postOrder. */
  pos: number;
  /** Per node: its tally for d. */
  tally: Float64Array;
  /** Per node: whether it reaches d. */
  reaches: Uint8Array;
}

/** Popularity of item `d` in doubles: only nodes after d in post-order can reach it. */
function popularityOf(g: Graph, { d, pos, tally, reaches }: Pass): number {
  tally.fill(0);
  reaches.fill(0);
  for (let k = pos + 1; k < g.postOrder.length; k++) {
    const n = g.postOrder[k]!;
    let t = 0;
    let r = 0;
    for (const c of g.children[n]!) {
      if (c === d) {
        t += 1;
        r = 1;
      } else if (reaches[c]) {
        t += tally[c]! + 1;
        r = 1;
      }
    }
    tally[n] = t;
    reaches[n] = r;
  }
  let total = 0;
  for (const root of g.roots) total += root === d ? 1 : reaches[root] ? tally[root]! + 1 : 0;
  return total;
}

/** The same computation in BigInt, for counts past 2^53. */
function popularityOfExact(g: Graph, d: number, pos: number): bigint {
  const tally = new Array<bigint>(g.paths.length).fill(0n);
  const reaches = new Uint8Array(g.paths.length);
  for (let k = pos + 1; k < g.postOrder.length; k++) {
    const n = g.postOrder[k]!;
    let t = 0n;
    for (const c of g.children[n]!) {
      if (c === d) {
        t += 1n;
        reaches[n] = 1;
      } else if (reaches[c]) {
        t += tally[c]! + 1n;
        reaches[n] = 1;
      }
    }
    tally[n] = t;
  }
  let total = 0n;
  for (const root of g.roots) total += root === d ? 1n : reaches[root] ? tally[root]! + 1n : 0n;
  return total;
}

/** Each item's popularity, as closure-graph.py's contest computes it. */
export function popularityContest(items: readonly StoreItem[]): Map<string, bigint> {
  const g = buildGraph(items);
  const tally = new Float64Array(items.length);
  const reaches = new Uint8Array(items.length);
  const result = new Map<string, bigint>();
  g.postOrder.forEach((d, pos) => {
    const approx = popularityOf(g, { d, pos, tally, reaches });
    // Every intermediate count is at most the final one, so a safe final count means an exact computation.
    const exact = approx <= Number.MAX_SAFE_INTEGER ? BigInt(approx) : popularityOfExact(g, d, pos);
    result.set(g.paths[d]!, exact);
  });
  return result;
}

/** Items most popular first; equal popularity by packageNameKey, bytewise (as the script does). */
export function orderByPopularity(items: readonly StoreItem[]): { ordered: StoreItem[]; popularity: Map<string, bigint> } {
  const popularity = popularityContest(items);
  const keyed = items.map((item) => ({ item, pop: popularity.get(item.path)!, key: packageNameKey(item.path) }));
  keyed.sort((a, b) => (a.pop === b.pop ? byBytes(a.key, b.key) : a.pop > b.pop ? -1 : 1));
  return { ordered: keyed.map((k) => k.item), popularity };
}
