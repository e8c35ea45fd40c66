/**
 * nixpkgs' default layering since late 2024 ("auto-layer"), reimplemented for the sharing benchmark so the other
 * strategies can be measured against it on the same closures. Benchmark code only: not a layerpack strategy.
 *
 * Source checked (read, not copied): NixOS/nixpkgs pkgs/build-support/docker/auto-layer.py (stored versions at
 * commits 2ff66c69 and 7b8db30a, same algorithm), auto-layer.nix (how the layer budget is computed), and
 * default.nix's streamLayeredImage (how it is called: `dockerAutoLayer` is used whenever `layeringPipeline` is
 * null); introduced by nixpkgs PR #355189 ("dockerTools.streamLayeredImage: Improve layer sharing for large
 * images", merged 2024-11).
 *
 * Rules implemented:
 * 1. Candidates for "primary" are all items, largest own NAR size first (nixpkgs sorts by `narSize`, not by
 *    closure size). Equal sizes: nixpkgs sorts its graph stably by size and pops from the end; the graph comes in
 *    Nix's order (sorted by path), so of equal sizes the path that sorts last bytewise goes first. We do the same.
 *    An item that is already part of another primary's layer is still a candidate.
 * 2. An item's layer is identified by the set of primaries whose closure (themselves included) contains it; items
 *    with the same set share a layer, items no primary reaches form one more layer together. nixpkgs keeps, per
 *    item, only the lowest such primaries (none of them depends on another); the full set and that lowest set
 *    determine each other, so the two give the same layers. A primary thus does not get a layer alone: it shares
 *    one with the items only it reaches (and, if the closure is a chain, with more).
 * 3. Primaries are added one at a time. When adding the next one would make more layers than the limit, nixpkgs
 *    stops there (it does not try smaller candidates); the split before it is the result. Otherwise it goes on until
 *    every item has been a primary. A candidate that splits no layer (say a leaf that already had a layer alone, or
 *    a root whose closure is everything) is accepted at no cost.
 * 4. Limit: nixpkgs passes `maxLayers - 1` (one layer is the customisation layer; minus the base image's layers with
 *    `fromImage`, which layerpack has no equivalent of). `planAutoLayer(closure, max)` does the same: at most max-1
 *    store layers plus a customisation layer, like planLayers. nixpkgs requires maxLayers > 1; so do we.
 * 5. Layer order (bottom first): by the total size of the layer's closure (its items and everything they refer
 *    to), smallest first, as nixpkgs orders them; ties (nixpkgs leaves them to set iteration order) by the layer's
 *    first path, bytewise. Items in a layer are sorted by path (nixpkgs sorts by name, then hash; the plan format
 *    wants path order, and a layer's identity is its item set either way).
 * 6. Roots: nixpkgs' graph is the closure of its roots, the config JSON and the customisation layer (the image's
 *    top-level symlinks to the `contents`, so it refers to them as a profile does). The roots take part in the split
 *    (as nodes and as candidates) and are then dropped from the store layers (a layer left empty is dropped): the
 *    customisation layer is shipped on its own, rebuilt with every change. A layerpack closure's roots (the
 *    profile) play that part, so by default (`roots: "own-layer"`) planAutoLayer splits the closure with its roots
 *    excluded into at most max-2 layers and puts the roots in one store layer on top: the same budget as nixpkgs'
 *    with one layer fewer (layerpack's customisation layer is separate), and the profile's bytes are counted like
 *    every strategy's. `roots: "ordinary"` treats the profile as any item (as nixpkgs does with a profile passed
 *    in `contents`): a root's closure is everything, so as a primary it splits nothing, and it lands in the layer
 *    of the items no primary reaches, which then changes with every update. groupByAutoLayer itself excludes
 *    nothing unless told (`exclude`, nixpkgs' ignore list).
 * 7. References to paths outside the given items are ignored (sticky planning hands over the free items alone).
 *
 * Deterministic: items are indexed in path order first, so neither the input order nor Map iteration order matters;
 * the split is computed exactly (as a refinement of the partition, one primary at a time), not by hashing sets.
 */
import { stickyStoreLayers } from "../src/plan/index.ts";
import type { LayerPlan, StoreLayer } from "../src/plan/types.ts";
import type { Closure, StoreItem } from "../src/store/types.ts";
import { byBytes } from "../src/util/bytes.ts";
import { nameOf } from "./closures.ts";

export interface AutoLayerGroup {
  /** Sorted by path. */
  items: StoreItem[];
  /** The lowest primaries whose closure holds these items (nixpkgs' `usedBy`), by path; empty: no primary does. */
  primaries: string[];
}

/** The closure of `start` (itself included) as indexes; `stamp` marks visited nodes with `mark`. */
function closureOf(start: number, children: number[][], stamp: Int32Array, mark: number): number[] {
  const out = [start];
  stamp[start] = mark;
  for (let k = 0; k < out.length; k++) {
    for (const c of children[out[k]!]!) {
      if (stamp[c] !== mark) {
        stamp[c] = mark;
        out.push(c);
      }
    }
  }
  return out;
}

export interface SplitOptions {
  /** Items that take part in the split but are left out of the groups (nixpkgs' ignore list: its roots); a group
   * left empty is dropped. */
  exclude?: ReadonlySet<string>;
}

/** The auto-layer split of `items` into at most `layers` (>= 1) groups, in image order (bottom first). */
export function autoLayerGroups(items: readonly StoreItem[], layers: number, options: SplitOptions = {}): AutoLayerGroup[] {
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`auto-layer: ${layers} layers; need a whole number of at least 1`);
  const sorted = [...items].sort((a, b) => byBytes(a.path, b.path));
  const n = sorted.length;
  if (n === 0) return [];
  const index = new Map<string, number>();
  sorted.forEach((it, i) => {
    if (index.has(it.path)) throw new Error(`auto-layer: ${it.path} is listed twice`);
    index.set(it.path, i);
  });
  const children = sorted.map((it, i) => {
    const out = new Set<number>();
    for (const ref of it.references) {
      const j = index.get(ref);
      if (j !== undefined && j !== i) out.add(j);
    }
    return [...out].sort((a, b) => a - b);
  });
  // Rule 1: largest own size first; equal sizes, the later path first.
  const candidates = sorted.map((_, i) => i).sort((a, b) => sorted[b]!.narSize - sorted[a]!.narSize || b - a);

  // The partition: cls[i] is item i's class; owners[c] every primary whose closure holds class c (full set).
  const cls = new Int32Array(n);
  const classSize: number[] = [n];
  const owners: number[][] = [[]];
  const hits: number[] = [0];
  const stamp = new Int32Array(n).fill(-1);
  let count = 1;
  for (let round = 0; round < candidates.length; round++) {
    const p = candidates[round]!;
    const members = closureOf(p, children, stamp, round);
    const touched: number[] = [];
    for (const m of members) {
      const c = cls[m]!;
      if (hits[c] === 0) touched.push(c);
      hits[c]! += 1;
    }
    let splits = 0;
    for (const c of touched) if (hits[c]! < classSize[c]!) splits++;
    if (count + splits > layers) break; // rule 3: stop before exceeding the limit
    const moveTo = new Map<number, number>();
    for (const c of touched) {
      const h = hits[c]!;
      if (h < classSize[c]!) {
        // Split: the part inside p's closure becomes a new class owned by p too.
        moveTo.set(c, classSize.length);
        classSize.push(h);
        owners.push([...owners[c]!, p]);
        hits.push(0);
        classSize[c]! -= h;
      } else {
        owners[c]!.push(p);
      }
      hits[c] = 0;
    }
    for (const m of members) {
      const to = moveTo.get(cls[m]!);
      if (to !== undefined) cls[m] = to;
    }
    count += splits;
  }

  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = cls[i]!;
    const list = byClass.get(c);
    if (list) list.push(i);
    else byClass.set(c, [i]);
  }
  // Rule 5: order by closure size, then first path (indexes are path ranks, members ascending).
  const groups = [...byClass.entries()].map(([c, members]) => {
    const mark = n + c + 1;
    const reach = new Set<number>();
    let closureBytes = 0;
    for (const m of members) {
      if (reach.has(m)) continue;
      for (const r of closureOf(m, children, stamp, mark)) {
        if (!reach.has(r)) {
          reach.add(r);
          closureBytes += sorted[r]!.narSize;
        }
      }
    }
    // The lowest owners: Q is not lowest when another owner P lies in Q's closure, i.e. Q owns P's class.
    const own = owners[c]!;
    const lowest = own.filter((q) => !own.some((p) => p !== q && owners[cls[p]!]!.includes(q)));
    return { members, closureBytes, primaries: lowest.sort((a, b) => a - b).map((i) => sorted[i]!.path) };
  });
  groups.sort((a, b) => a.closureBytes - b.closureBytes || a.members[0]! - b.members[0]!);
  const exclude = options.exclude ?? new Set<string>();
  return groups
    .map((g) => ({ items: g.members.map((i) => sorted[i]!).filter((it) => !exclude.has(it.path)), primaries: g.primaries }))
    .filter((g) => g.items.length > 0);
}

/** The auto-layer split as plain item groups (bottom layer first), at most `layers` of them. */
export function groupByAutoLayer(items: readonly StoreItem[], layers: number, options: SplitOptions = {}): StoreItem[][] {
  return autoLayerGroups(items, layers, options).map((g) => g.items);
}

function storeLayer(g: AutoLayerGroup): StoreLayer {
  const names = g.primaries.map(nameOf);
  const reason =
    names.length === 0
      ? "auto-layer: reached from no primary"
      : `auto-layer: reached from ${names.length === 1 ? "primary" : `${names.length} primaries`} ${names.slice(0, 4).join(", ")}${names.length > 4 ? ", ..." : ""}`;
  return { kind: "store", size: g.items.reduce((s, it) => s + it.narSize, 0), reason, items: g.items.map((it) => ({ path: it.path, size: it.narSize })) };
}

export interface AutoLayerOptions {
  name?: string;
  /** Where the closure's roots (the profile) go; see rule 6. Default "own-layer". */
  roots?: "own-layer" | "ordinary";
  /** Sticky planning: keep this plan's still-valid layers and place the rest by auto-layer (src/plan/sticky.ts,
   * with the survivors of broken layers kept together, as planLayers does for every strategy but `sharing`). */
  previous?: LayerPlan;
}

/** A LayerPlan shaped like planLayers' output: at most max-1 auto-layer store layers, then an empty customisation layer. */
export function planAutoLayer(closure: Closure, max: number, options: AutoLayerOptions = {}): LayerPlan {
  if (!Number.isInteger(max) || max < 2) throw new Error(`auto-layer: max ${max}; nixpkgs needs at least 2 layers (one store layer and the customisation layer)`);
  const roots = new Set(options.roots === "ordinary" ? [] : closure.roots);
  const place = (items: readonly StoreItem[], budget: number): StoreLayer[] => {
    const own = items.filter((it) => roots.has(it.path));
    if (own.length === 0 || own.length === items.length || budget < 2) return autoLayerGroups(items, budget).map(storeLayer);
    // Rule 6: the roots take part in the split, as nixpkgs' roots do, and then sit in a layer of their own on top.
    const split = autoLayerGroups(items, budget - 1, { exclude: roots }).map(storeLayer);
    return [...split, { ...storeLayer({ items: [...own].sort((a, b) => byBytes(a.path, b.path)), primaries: [] }), reason: "auto-layer: the roots (profile), as nixpkgs' customisation layer" }];
  };
  const store = options.previous ? stickyStoreLayers(closure.items, options.previous, max - 1, place) : place(closure.items, max - 1);
  const layers = [...store, { kind: "customisation" as const, entries: [] }];
  return {
    version: 1,
    name: options.name ?? "bench",
    storeDir: closure.store.dir,
    strategy: "auto-layer",
    max,
    layers,
    totals: { items: closure.items.length, bytes: closure.items.reduce((s, it) => s + it.narSize, 0), layers: layers.length },
  };
}
