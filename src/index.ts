/** Public API: the four stages as functions over plain data, plus `defineConfig` for typed configs. */
// The declarations name Node's types (Buffer, streams): TypeScript 7 no longer loads @types/node unasked.
/// <reference types="node" preserve="true" />
import "./util/node-version.ts";
export { defineConfig } from "./config/define.ts";
export { loadSpec } from "./config/load.ts";
export { imageSpecSchema, type ImageSpec, type ImageSpecInput } from "./config/schema.ts";
export { resolveClosure } from "./store/closure.ts";
export type { Closure, StoreItem, StoreLocation } from "./store/types.ts";
export { planLayers, type PlanOptions } from "./plan/index.ts";
export { planToJson, planToYaml, parsePlan } from "./plan/serialize.ts";
export { diffPlans, diffSides, imageSide, planSide, type PlanDiff } from "./plan/diff.ts";
export { renderDiff } from "./plan/diff-format.ts";
export { STRATEGY_IMPLEMENTATIONS, type LayerStrategy, type StoreGroup } from "./plan/strategies.ts";
export { STRATEGIES, STRATEGY_NAMES, type StrategyName } from "./config/strategies.ts";
export type { LayerPlan, PlannedLayer, CustomEntry, PlanBase } from "./plan/types.ts";
export { buildImage, type BuildEvent, type BuildInput, type BuildResult } from "./image/build.ts";
export { resolveBase, type ResolvedBase } from "./image/base.ts";
export { writeImage, type WriteImageOptions, type WriteImageResult } from "./image/write.ts";
export { LayerCache, defaultCacheDir } from "./cache/cache.ts";
// Images from any source (docker archive, OCI layout or archive, registry), named as skopeo names them.
export type { Image, Layer } from "./oci/image.ts";
export { parseImageName, formatImageName, type ImageName } from "./oci/name.ts";
export { openImage } from "./oci/read.ts";
export { listImage } from "./oci/list.ts";
export { LayerpackError, SpecError, StoreError, PlanError, BuildError } from "./errors.ts";
