/**
 * The `sharing` strategy: layers whose items change together, so that pulling the image after a package update
 * re-pulls little more than the bytes that really changed — with fresh plans, not only with sticky ones.
 *
 * Model (see sharing-graph.ts): an update of P changes P and everything depending on it. A layer is re-pulled when
 * one of its items changes, and then all of its bytes are. The relative cost of an update is
 *   ratio(P) = (bytes of the layers re-pulled) / (bytes changed)  >= 1,
 * and a layer L costs bytes(L) · W(T_L) of their sum, W(T) = Σ_{P ∈ T} 1/changed(P), T_L the updates that change
 * an item of L (sharing-state.ts).
 *
 * Two steps (issue 19), each chosen so that an update moves no layer boundary away from the items it changes:
 * 1. A hierarchy (sharing-tree.ts): items merged bottom up in rounds where groups that are each other's cheapest
 *    partner merge. It sees sizes in coarse classes, so most updates leave it exactly as it was, and a mutual
 *    choice depends on the two groups only, so the rest spread no further than the changed item's partners.
 * 2. The cut: from the top, the node whose split lowers the cost most (or leads to such a split below it) is split,
 *    until the layers are used up. Splits are nested, so a changed cost moves at most the changed item's ancestors
 *    and the one split at the margin, never a boundary elsewhere.
 * Large items end up alone and the small items only they use with them, because that is what the costs say, not
 * by rank: a rank (the 49 largest items) moves whenever one item's size passes another's.
 *
 * Pure and deterministic: items are put in a canonical order (dependents, name, hash) first and every tie is
 * broken by that order, never by input order or Map iteration.
 */
import type { StoreItem } from "../store/types.ts";
import { formatBytes } from "../util/format.ts";
import { buildSharingGraph, countBits, intersect, sizeClass } from "./sharing-graph.ts";
import { buildHierarchy, itemsUnder, type Hierarchy } from "./sharing-tree.ts";
import { weightOf, weightTable } from "./sharing-state.ts";

export interface SharingGroup {
  /** In canonical order (the planner sorts them by path). */
  items: StoreItem[];
  reason: string;
}

/**
 * Item bytes as the hierarchy's costs see them are their size classes (powers of 4, sharing-graph.ts), and nothing
 * below FLOOR_SHARE of the roots' bytes (the profile, which every update changes): below that, an item's exact size
 * changes no ratio by much, and an update that moves a small item across a class boundary would otherwise change
 * costs. Powers of 16 (before) were coarser than the costs can bear: they saw a 233 KB application and a 25 KB data
 * package as one size and paired them, so either's update re-pulled the other; with 4 the sweeps are better on the
 * real closures and on the generated ones up to 800 items, a little worse at 4000 (bench/README.md).
 */
export const FLOOR_SHARE = 1 / 32;

/**
 * Splits the hierarchy top-down into `target` nodes: always the node with the highest potential (the largest cost
 * reduction of a split in its subtree), ties to the lowest node. Returns the nodes of the cut.
 */
function cutHierarchy(h: Hierarchy, cost: Float64Array, target: number): number[] {
  const nodes = h.left.length;
  const potential = new Float64Array(nodes);
  for (let v = 0; v < nodes; v++) {
    const a = h.left[v]!;
    if (a < 0) continue;
    const b = h.right[v]!;
    potential[v] = Math.max(cost[v]! - cost[a]! - cost[b]!, potential[a]!, potential[b]!);
  }
  const cut = [h.top];
  while (cut.length < target) {
    let best = -1;
    for (let i = 0; i < cut.length; i++) {
      const v = cut[i]!;
      if (h.left[v]! < 0) continue;
      const b = best < 0 ? -1 : cut[best]!;
      if (best < 0 || potential[v]! > potential[b]! || (potential[v] === potential[b] && v < b)) best = i;
    }
    if (best < 0) break; // every node of the cut is a single item
    const v = cut[best]!;
    cut.splice(best, 1, h.left[v]!, h.right[v]!);
  }
  return cut;
}

const has = (bits: Uint32Array, i: number): boolean => (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
const nameOf = (path: string): string => path.slice(path.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");

function reasonFor(g: ReturnType<typeof buildSharingGraph>, members: number[], triggerSet: Uint32Array): string {
  const n = g.items.length;
  const triggers = countBits(triggerSet);
  const size = formatBytes(members.reduce((sum, m) => sum + g.items[m]!.narSize, 0));
  if (members.length === 1) {
    const it = g.items[members[0]!]!;
    return `${nameOf(it.path)} (${size}) alone: changes only when ${triggers === 1 ? "it is" : `one of the ${triggers} items of its closure is`} updated`;
  }
  let common = g.closure[members[0]!]!;
  for (const m of members) common = intersect(common, g.closure[m]!);
  const always = countBits(common);
  // Every member depends on every item outside the layer: what the roots (the profile) and their wrappers are.
  const inLayer = new Set(members);
  const wholeClosure = members.every((m) => countBits(g.closure[m]!) - members.filter((o) => has(g.closure[m]!, o)).length === n - inLayer.size);
  // (Not when nothing is outside the layer: planning new items apart, for a sticky plan, sees only them.)
  if (wholeClosure && n > inLayer.size && members.some((m) => !g.referenced[m])) {
    return `${members.length} roots or items depending on the whole closure (${size}): every update changes them all, so they share a small layer of their own`;
  }
  // One member depends on all the others: it is what they are in the layer for.
  const head = members.find((m) => members.every((o) => o === m || has(g.closure[m]!, o)));
  if (head !== undefined) {
    const name = nameOf(g.items[head]!.path);
    const others = members.length - 1;
    return `${name} with ${others} ${others === 1 ? "item" : "items"} it uses (${size}): updating one of them changes ${name} too, so the layer changes only when one of the ${triggers} items of ${name}'s closure is updated`;
  }
  if (always === 0) return `${members.length} items (${size}) put together to stay within max layers; no one update changes them all`;
  return `${members.length} items (${size}) that change together: ${always} of the ${triggers} updates that change one of them change all of them`;
}

/**
 * Groups `items` into at most `layers` store layers (layers >= 1; all of them when there are enough items), bottom
 * of the image first: layers that fewer updates touch (base libraries) below, the profile and roots on top. Throws
 * PlanError on a reference to an item outside the closure or a reference cycle.
 */
export function groupBySharing(items: readonly StoreItem[], layers: number): SharingGroup[] {
  const g = buildSharingGraph(items);
  const n = g.items.length;
  if (n === 0) return [];
  const weight = new Float64Array(n);
  // +1: an update that changes only empty items still costs something to re-pull, and never divides by zero.
  for (let p = 0; p < n; p++) weight[p] = 1 / (sizeClass(g.changedBytes[p]!) + 1);
  const table = weightTable(weight, g.words);
  let rootBytes = 0;
  for (let x = 0; x < n; x++) if (!g.referenced[x]) rootBytes += g.items[x]!.narSize;
  const floor = FLOOR_SHARE * rootBytes;
  const itemClass = Float64Array.from(g.items, (it) => sizeClass(Math.max(floor, it.narSize)));
  const h = buildHierarchy(g, itemClass, table);
  // The cut weighs exact bytes: they move only with the items under a node, so only the changed item's ancestors.
  const nodes = h.left.length;
  const bytes = new Float64Array(nodes);
  const cost = new Float64Array(nodes);
  for (let v = 0; v < nodes; v++) {
    bytes[v] = h.left[v]! < 0 ? g.items[h.item[v]!]!.narSize : bytes[h.left[v]!]! + bytes[h.right[v]!]!;
    cost[v] = bytes[v]! * weightOf(table, h.trig[v]!);
  }
  const cut = cutHierarchy(h, cost, Math.max(1, layers));
  const groups = cut.map((v) => ({ members: itemsUnder(h, v), trig: h.trig[v]! }));
  groups.sort((x, y) => countBits(x.trig) - countBits(y.trig) || x.members[0]! - y.members[0]!);
  return groups.map(({ members, trig }) => ({ items: members.map((i) => g.items[i]!), reason: reasonFor(g, members, trig) }));
}
