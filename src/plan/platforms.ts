/**
 * Plans for `platforms:`: one image per platform, planned together as a family (family.ts) so that the items the
 * platforms have in common (architecture-independent data, scripts) lie in layers that are the same blob in every
 * platform's image. The result is one plan whose `platforms` holds each platform's own plan, in config order.
 */
import type { ImageSpec } from "../config/schema.ts";
import { formatPlatform, specPlatform } from "../oci/platform.ts";
import type { Closure } from "../store/types.ts";
import { planFamily } from "./family.ts";
import { planLayers } from "./index.ts";
import type { LayerPlan } from "./types.ts";

export interface PlatformImage {
  spec: ImageSpec;
  closure: Closure;
}

export function planPlatforms(images: readonly PlatformImage[]): LayerPlan {
  // Family members need names of their own: the platform tells them apart in the family's layer reasons.
  const family = planFamily(images.map((im) => ({ spec: { ...im.spec, name: `${im.spec.name} (${formatPlatform(specPlatform(im.spec))})` }, closure: im.closure })));
  const plans = images.map((im) => planLayers(im.spec, im.closure, { previous: family }));
  const first = images[0]!;
  const union = new Map(images.flatMap((im) => im.closure.items.map((it) => [it.path, it.narSize] as const)));
  return {
    version: 1,
    name: first.spec.name,
    storeDir: first.closure.store.dir,
    strategy: first.spec.layers.strategy,
    max: first.spec.layers.max,
    layers: [],
    totals: { items: union.size, bytes: [...union.values()].reduce((a, b) => a + b, 0), layers: plans.reduce((n, p) => n + p.layers.length, 0) },
    platforms: plans,
  };
}
