/**
 * The sharing benchmark's accounting (issue 7), shared by bench/sharing.ts (the command) and bench/sharing-sweep.ts:
 *   re-pull = bytes of the new plan's store layers whose item set is not a layer of the old plan
 * (layers are reproducible: the same items make the same digest), against
 *   ideal   = bytes of the new closure's items that are not in the old one (the changed items).
 * Sibling sharing: two images from one store; of the bytes of the items both hold, the fraction lying in layers
 * identical in both.
 *
 * Strategies: layerpack's own (planned with the real planLayers) and `auto-layer`, nixpkgs' default
 * (bench/auto-layer.ts), which layerpack does not offer.
 */
import { planFamily } from "../src/plan/family.ts";
import { planLayers } from "../src/plan/index.ts";
import type { LayerPlan, StoreLayer } from "../src/plan/types.ts";
import { imageSpecSchema } from "../src/config/schema.ts";
import type { Closure } from "../src/store/types.ts";
import { planAutoLayer } from "./auto-layer.ts";

export const STRATEGIES = ["size", "popularity", "sharing", "auto-layer"] as const;
export type Strategy = (typeof STRATEGIES)[number];
/** The strategies planLayers knows (and `plan --family` can plan for). */
export type LayerpackStrategy = Exclude<Strategy, "auto-layer">;

export const isStrategy = (s: string): s is Strategy => (STRATEGIES as readonly string[]).includes(s);

const specFor = (strategy: LayerpackStrategy, closure: Closure, max: number, name: string) =>
  imageSpecSchema.parse({ name, roots: closure.roots, paths: [], layers: { max, strategy }, output: { path: "x.tar" } });

/** Plans `closure` with `strategy` and `max` layers, as `layerpack plan` would (no customisation entries). */
export function planWith(strategy: Strategy, closure: Closure, max: number, name = "bench"): LayerPlan {
  if (strategy === "auto-layer") return planAutoLayer(closure, max, { name });
  return planLayers(specFor(strategy, closure, max, name), closure);
}

/** A sticky plan: `previous` (the old image's plan) as layers.previous. */
export function planSticky(strategy: Strategy, closure: Closure, max: number, previous: LayerPlan, name = "bench"): LayerPlan {
  if (strategy === "auto-layer") return planAutoLayer(closure, max, { name, previous });
  return planLayers(specFor(strategy, closure, max, name), closure, { previous });
}

/** Two images planned as a family (`layerpack plan --family`), then each with the family plan as its previous plan. */
export function planSiblings(strategy: LayerpackStrategy, a: Closure, b: Closure, max: number): [LayerPlan, LayerPlan] {
  const images = [
    { spec: specFor(strategy, a, max, "a"), closure: a },
    { spec: specFor(strategy, b, max, "b"), closure: b },
  ];
  const family = planFamily(images);
  return [planLayers(images[0]!.spec, a, { previous: family }), planLayers(images[1]!.spec, b, { previous: family })];
}

export const storeLayers = (plan: LayerPlan): StoreLayer[] => plan.layers.filter((l): l is StoreLayer => l.kind === "store");

/** A layer's identity: its item paths (sorted in the plan). Same items, same tar, same digest. */
export const layerKey = (layer: StoreLayer): string => layer.items.map((it) => it.path).join("\n");

/** The old plan's layer identities, computed once when many new plans are compared with it. */
export const layerKeys = (plan: LayerPlan): Set<string> => new Set(storeLayers(plan).map(layerKey));

/** Bytes of the new plan's store layers that the old plan (or its layer keys) does not have. */
export function repullBytes(oldPlan: LayerPlan | ReadonlySet<string>, newPlan: LayerPlan): number {
  const have = oldPlan instanceof Set ? oldPlan : layerKeys(oldPlan as LayerPlan);
  return storeLayers(newPlan).reduce((sum, l) => (have.has(layerKey(l)) ? sum : sum + l.size), 0);
}

/** Bytes of the items of `next` that `prev` lacks: what an ideal layering re-pulls. */
export function idealBytes(prev: Closure | ReadonlySet<string>, next: Closure): number {
  const have = prev instanceof Set ? prev : new Set((prev as Closure).items.map((it) => it.path));
  return next.items.reduce((sum, it) => (have.has(it.path) ? sum : sum + it.narSize), 0);
}

/** Of the bytes of the items both plans hold, how many lie in store layers identical in both. */
export function siblingSharing(a: LayerPlan, b: LayerPlan): { commonBytes: number; sharedBytes: number; fraction: number } {
  const inB = new Set(storeLayers(b).flatMap((l) => l.items.map((it) => it.path)));
  const layersB = layerKeys(b);
  let commonBytes = 0;
  let sharedBytes = 0;
  for (const l of storeLayers(a)) {
    const same = layersB.has(layerKey(l));
    for (const it of l.items) {
      if (!inB.has(it.path)) continue;
      commonBytes += it.size;
      if (same) sharedBytes += it.size;
    }
  }
  return { commonBytes, sharedBytes, fraction: commonBytes === 0 ? 1 : sharedBytes / commonBytes };
}

export function geomean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}
