/** Public API: the four stages as functions over plain data, plus `defineConfig` for typed configs. */
export { defineConfig } from "./config/define.ts";
export { loadSpec } from "./config/load.ts";
export { imageSpecSchema, type ImageSpec, type ImageSpecInput } from "./config/schema.ts";
export { resolveClosure } from "./store/closure.ts";
export type { Closure, StoreItem, StoreLocation } from "./store/types.ts";
export { planLayers } from "./plan/index.ts";
export { planToJson, planToYaml } from "./plan/serialize.ts";
export type { LayerPlan, PlannedLayer, CustomEntry } from "./plan/types.ts";
export { buildImage, type BuildEvent, type BuildResult } from "./image/build.ts";
export { LayerpackError, SpecError, StoreError, PlanError, BuildError } from "./errors.ts";
