/**
 * Sticky planning: keep the previous plan's grouping wherever it is still valid, so that updating one package
 * changes only the layers it must (every changed layer is a blob every host pulls again).
 *
 * A previous store layer is kept, as it was and where it was, when every item in it is still in the closure with
 * the same size and no earlier kept layer claimed one of them. A layer that lost or changed an item is a new blob
 * whatever we do, but its unchanged items ("survivors") stay together, apart from the new items: a volatile item
 * (a profile that changes with every update) then ends up in a small layer of its own over a few updates, instead
 * of dragging a large shared layer along every time. A strategy that groups by what changes together (`sharing`)
 * asks for the survivors to be placed again with the new items instead (`regroupSurvivors`): it separates the
 * volatile items itself, and kept-together survivors drift from its grouping. Whichever of the sticky and the
 * fresh layers re-pulls less wins (stickyOrFresh). New items are placed by the configured strategy into the
 * layer budget that is left. New layers go above the kept ones (a new layer lower down would not change any blob,
 * but would change every chain ID above it, so runtimes would unpack those layers again). The plan never exceeds
 * max: when there is no room, fresh layers are merged first, then the smallest kept layers are given up.
 * Pure: the previous plan comes in as data.
 */
import type { StoreItem } from "../store/types.ts";
import type { LayerPlan, StoreLayer } from "./types.ts";
import { byBytes } from "../util/bytes.ts";

/** Places `free` items (never empty) in at most `budget` (>= 1) store layers, by the configured strategy. */
export type PlaceFree = (free: StoreItem[], budget: number) => StoreLayer[];

interface Kept {
  /** Index of the layer in the previous plan: kept layers keep their order. */
  index: number;
  layer: StoreLayer;
}


/** The previous store layers that are still valid for `items`, in their previous order. */
export function validPreviousLayers(items: readonly StoreItem[], previous: LayerPlan): Kept[] {
  const current = new Map(items.map((it) => [it.path, it]));
  const claimed = new Set<string>();
  const kept: Kept[] = [];
  previous.layers.forEach((layer, index) => {
    if (layer.kind !== "store" || layer.items.length === 0) return;
    const valid = layer.items.every((pi) => current.get(pi.path)?.narSize === pi.size && !claimed.has(pi.path));
    // A layer that lists one path twice is not a layer the planner would make: give it up.
    if (!valid || new Set(layer.items.map((pi) => pi.path)).size !== layer.items.length) return;
    for (const pi of layer.items) claimed.add(pi.path);
    const sorted = [...layer.items].sort((a, b) => byBytes(a.path, b.path)).map((pi) => ({ path: pi.path, size: pi.size }));
    kept.push({
      index,
      layer: {
        kind: "store",
        size: sorted.reduce((n, pi) => n + pi.size, 0),
        ...(layer.reason !== undefined ? { reason: layer.reason } : {}),
        items: sorted,
      },
    });
  });
  return kept;
}

/** Items of previous layers that broke, kept together: a new blob either way, but stable items stay apart from new ones. */
interface Survivors {
  index: number;
  items: StoreItem[];
  size: number;
  /** How many previous layers they come from (merging adds up). */
  from: number;
}

function survivorLayer(g: Survivors): StoreLayer {
  const items = [...g.items].sort((a, b) => byBytes(a.path, b.path)).map((it) => ({ path: it.path, size: it.narSize }));
  const where = g.from === 1 ? "a previous layer" : `${g.from} previous layers`;
  return { kind: "store", size: g.size, reason: `the ${items.length} unchanged items of ${where} whose other items changed`, items };
}

function rootsLayer(roots: StoreItem[]): StoreLayer {
  const items = [...roots].sort((a, b) => byBytes(a.path, b.path)).map((it) => ({ path: it.path, size: it.narSize }));
  const what = items.length === 1 ? "the new root item (nothing refers to it" : `the ${items.length} new root items (nothing refers to them`;
  return { kind: "store", size: items.reduce((n, it) => n + it.size, 0), reason: `${what}; it changes with every update)`, items };
}

/**
 * The store layers for `items` given the previous plan, in at most `budget` store layers (budget >= 1).
 * `place` is the strategy's own planner for the new items.
 *
 * Order of preference when layers must be merged to fit: first the layers that are new blobs anyway (survivors
 * of broken layers, then survivors with the new items), and only then kept layers, smallest first.
 */
export function stickyStoreLayers(items: readonly StoreItem[], previous: LayerPlan, budget: number, place: PlaceFree, options: { regroupSurvivors?: boolean } = {}): StoreLayer[] {
  if (items.length === 0) return [];
  const byPath = new Map(items.map((it) => [it.path, it]));
  const kept = validPreviousLayers(items, previous);
  const keptPaths = new Set(kept.flatMap((k) => k.layer.items.map((pi) => pi.path)));
  // Survivors: per broken previous store layer, its items that are still in the closure unchanged and not kept.
  const placed = new Set(keptPaths);
  let survivors: Survivors[] = [];
  previous.layers.forEach((layer, index) => {
    if (layer.kind !== "store" || kept.some((k) => k.index === index)) return;
    const still = layer.items.filter((pi) => byPath.get(pi.path)?.narSize === pi.size && !placed.has(pi.path)).map((pi) => byPath.get(pi.path)!);
    const unique = still.filter((it, i) => still.findIndex((o) => o.path === it.path) === i);
    for (const it of unique) placed.add(it.path);
    if (unique.length > 0) survivors.push({ index, items: unique, size: unique.reduce((n, it) => n + it.narSize, 0), from: 1 });
  });
  let fresh = items.filter((it) => !placed.has(it.path));
  // New roots (items nothing refers to: a profile, which changes with every update) get a layer of their own when
  // there is room, so the next update does not drag the other new items along.
  const referenced = new Set(items.flatMap((it) => it.references.filter((r) => r !== it.path)));
  let roots = fresh.filter((it) => !referenced.has(it.path));
  if (roots.length === fresh.length) roots = [];
  fresh = fresh.filter((it) => !roots.includes(it));
  if (options.regroupSurvivors) {
    // After the roots are set apart: an unchanged item nothing refers to is not volatile like a new profile.
    fresh = [...fresh, ...survivors.flatMap((g) => g.items)];
    survivors = [];
  }
  const room = () => budget - kept.length;
  const need = () => survivors.length + (fresh.length > 0 ? 1 : 0) + (roots.length > 0 ? 1 : 0);
  while (need() > room()) {
    if (survivors.length >= 2) {
      // Merge the two smallest survivor groups.
      const [a, b] = [...survivors].sort((x, y) => x.size - y.size || x.index - y.index);
      const merged = { index: Math.min(a!.index, b!.index), items: [...a!.items, ...b!.items], size: a!.size + b!.size, from: a!.from + b!.from };
      survivors = [...survivors.filter((g) => g !== a && g !== b), merged].sort((x, y) => x.index - y.index);
    } else if (survivors.length === 1 && (fresh.length > 0 || room() < 1)) {
      fresh = [...fresh, ...survivors[0]!.items];
      survivors = [];
    } else if (roots.length > 0) {
      fresh = [...fresh, ...roots];
      roots = [];
    } else {
      // Only kept layers left to give up: the smallest (ties: the higher one) joins the new items.
      const drop = [...kept].sort((a, b) => a.layer.size - b.layer.size || b.index - a.index)[0]!;
      kept.splice(kept.indexOf(drop), 1);
      fresh = [...fresh, ...drop.layer.items.map((pi) => byPath.get(pi.path)!)];
    }
  }
  const layers = [...kept.map((k) => k.layer), ...survivors.map(survivorLayer)];
  if (fresh.length > 0) {
    // The strategy sees the new items as a closure of their own: references to placed items are dropped, since
    // those items are placed already (and a strategy may refuse references outside the items it is given).
    const freePaths = new Set(fresh.map((it) => it.path));
    const own = fresh.map((it) => ({ ...it, references: it.references.filter((r) => freePaths.has(r)) }));
    layers.push(...place(own, room() - survivors.length - (roots.length > 0 ? 1 : 0)));
  }
  if (roots.length > 0) layers.push(rootsLayer(roots));
  return layers;
}

/** Bytes of `layers` that a host holding `previous` pulls: the layers whose exact item set it lacks. */
export function repullAgainst(previous: LayerPlan, layers: readonly StoreLayer[]): number {
  const key = (items: readonly { path: string }[]) => items.map((i) => i.path).sort(byBytes).join("\n");
  const had = new Set(previous.layers.flatMap((l) => (l.kind === "store" ? [key(l.items)] : [])));
  return layers.reduce((n, l) => n + (had.has(key(l.items)) ? 0 : l.size), 0);
}

/**
 * The sticky layers, unless the fresh ones re-pull less against `previous`, so a sticky plan is never worse than a
 * fresh one for the update at hand (ties keep the sticky layers: measured over updates in a row, ties given to
 * fresh plans cost `size` 17 % more). `realign` > 1 also takes the fresh layers when they re-pull at most that many
 * times the sticky ones' bytes: for `sharing`, whose fresh plans move little, kept layers otherwise drift from
 * what changes together (bench/sticky.ts, 30 updates in a row: 1914 MiB re-pulled sticky, 1701 MiB fresh, 1718 MiB
 * with realign 2), while a fresh plan that cascades (over 2×) is still refused.
 */
export function stickyOrFresh(previous: LayerPlan, sticky: StoreLayer[], fresh: () => StoreLayer[], realign = 1): StoreLayer[] {
  const other = fresh();
  const s = repullAgainst(previous, sticky);
  const f = repullAgainst(previous, other);
  return f < s || (realign > 1 && f <= realign * s) ? other : sticky;
}
