/**
 * The layering strategies a config may name, with the description the schema shows. The implementations live in
 * src/plan/strategies.ts, typed `Record<StrategyName, LayerStrategy>`, so a name without an implementation (or an
 * implementation without a name) does not compile. Names live here because the schema (config/) must not import
 * the planner (plan/ depends on config/, never the other way).
 */
export const STRATEGIES = {
  sharing: "items that change together share a layer, so an update re-pulls little more than what changed (default)",
  size: "Guix's: the largest items alone, the rest in one layer",
  popularity: "Nix's buildLayeredImage: the most referenced items alone, the rest in one layer",
} as const;

export type StrategyName = keyof typeof STRATEGIES;

export const STRATEGY_NAMES = Object.keys(STRATEGIES) as [StrategyName, ...StrategyName[]];
