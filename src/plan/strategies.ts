/**
 * Layering strategies behind one interface: each groups store items into at most `budget` store layers, with a
 * reason per layer for reviewers. The planner (index.ts), sticky plans and families call them only through here.
 */
import type { StrategyName } from "../config/strategies.ts";
import type { StoreItem } from "../store/types.ts";
import { orderByPopularity } from "./popularity.ts";
import { groupBySharing } from "./sharing.ts";
import { orderBySize, ownLayerCount } from "./size.ts";

export interface StoreGroup {
  items: StoreItem[];
  reason: string;
}

export interface LayerStrategy {
  /** At most `budget` (>= 1) groups, none empty, every item in exactly one. */
  group(items: readonly StoreItem[], budget: number): StoreGroup[];
  /** Sticky plans: whether the unchanged items of broken layers are regrouped by the strategy (sticky.ts). */
  regroupSurvivors: boolean;
  /** Sticky plans take the fresh layers when they re-pull at most this many times what the sticky ones do. */
  realign: number;
}

/**
 * A rank strategy (Guix's and Nix's classic): items in the strategy's order, the first ones alone, the rest
 * sharing the last layer. `note` says why an item ranks where it does; `restWord` what the shared layer holds.
 */
function ranked(name: string, order: (items: readonly StoreItem[]) => { ordered: StoreItem[]; note: (it: StoreItem) => string }, restWord: string): LayerStrategy {
  return {
    regroupSurvivors: false,
    realign: 1,
    group(items, budget) {
      if (items.length === 0) return [];
      const { ordered, note } = order(items);
      // ownLayerCount counts the customisation layer in its max: budget store layers are max budget + 1.
      const own = ownLayerCount(ordered.length, budget + 1);
      const groups = ordered.slice(0, own).map((it, i) => ({ items: [it], reason: `${name} rank ${i + 1}: ${note(it)}` }));
      const rest = ordered.slice(own);
      const reason = rest.length === 1 ? `${name} rank ${own + 1}: ${note(rest[0]!)}` : `the ${rest.length} ${restWord} items share this layer (max ${budget + 1} layers)`;
      groups.push({ items: rest, reason });
      return groups;
    },
  };
}

export const STRATEGY_IMPLEMENTATIONS: Record<StrategyName, LayerStrategy> = {
  // Fresh `sharing` plans move little, so sticky plans follow them unless they re-pull over twice as much.
  sharing: { regroupSurvivors: true, realign: 2, group: (items, budget) => (items.length === 0 ? [] : groupBySharing(items, budget)) },
  size: ranked("size", (items) => ({ ordered: orderBySize(items), note: (it) => `${it.narSize} bytes` }), "smallest"),
  popularity: ranked(
    "popularity",
    (items) => {
      const { ordered, popularity } = orderByPopularity(items);
      return { ordered, note: (it) => `popularity ${popularity.get(it.path)}` };
    },
    "least popular",
  ),
};
