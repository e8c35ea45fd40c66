/**
 * The `size` strategy, Guix's (guix/docker.scm, `--max-layers`, bug#62153): store items sorted by size, largest
 * first; the largest ones get a layer each and the rest share one layer; the customisation layer comes last.
 *
 * Image order, as Guix writes it: the single-item layers from largest to smallest (the largest at the bottom),
 * then the shared layer of the smallest items, then the customisation layer.
 */
import type { StoreItem } from "../store/types.ts";
import { byBytes } from "../util/bytes.ts";


/** Items largest first; equal sizes by path, bytewise, so the order never depends on the input order. */
export function orderBySize(items: readonly StoreItem[]): StoreItem[] {
  return [...items].sort((a, b) => b.narSize - a.narSize || byBytes(a.path, b.path));
}

/**
 * How many of `count` ordered items get a layer of their own when the image may have `max` layers in all
 * (max >= 2; the caller handles max 1). The rest (at least one item when count >= 1) share one more layer, and
 * the customisation layer is the last.
 *
 * Guix: with count >= max, the first max-2 items get their own layers, else count-1 do. Nix's
 * buildLayeredImage makes the same split: of max-1 layers left beside the customisation layer, the first
 * max-2 most popular items get one each and the rest share the last one. Both equal min(count, max-1) - 1:
 * at most max-2 own + 1 shared + 1 customisation = max layers, and never an empty store layer.
 */
export function ownLayerCount(count: number, max: number): number {
  return Math.max(0, Math.min(count, max - 1) - 1);
}
