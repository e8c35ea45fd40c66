/**
 * The layer plan: the reviewable artifact between the planner and the executor. Plain, serialisable data
 * (stable YAML/JSON); a zod schema so schemas/plan.schema.json can be generated from it and plan files read back.
 * Nothing machine-specific goes in here: store paths are logical, file sources stay as written in the spec.
 */
import { z } from "zod";

export const planItemSchema = z.strictObject({
  path: z.string(),
  /** NAR size in bytes. */
  size: z.number().int().nonnegative(),
});

export const customEntrySchema = z.discriminatedUnion("type", [
  z.strictObject({ path: z.string(), type: z.literal("directory"), mode: z.string() }),
  z.strictObject({
    path: z.string(),
    type: z.literal("file"),
    mode: z.string(),
    content: z.string().optional(),
    source: z.string().optional(),
  }),
  z.strictObject({ path: z.string(), type: z.literal("symlink"), target: z.string() }),
]);

export const storeLayerSchema = z.strictObject({
  kind: z.literal("store"),
  /** Sum of the items' sizes. */
  size: z.number().int().nonnegative(),
  /** Why these items share a layer (strategy-specific, for reviewers). */
  reason: z.string().optional(),
  /** Sorted by path. */
  items: z.array(planItemSchema),
  /** Only with `max: 1`: the customisation entries, merged into this single layer (then there is no
   * customisation layer). Same order and meaning as the customisation layer's `entries`. */
  entries: z.array(customEntrySchema).optional(),
});

export const customLayerSchema = z.strictObject({
  kind: z.literal("customisation"),
  /** Absolute image paths sorted bytewise component by component (tar --sort=name order, so parents come before
   * children); implicit parents included (mode 755). */
  entries: z.array(customEntrySchema),
});

export const layerPlanSchema = z.strictObject({
  version: z.literal(1),
  name: z.string(),
  storeDir: z.string(),
  strategy: z.string(),
  max: z.number().int(),
  /** Store layers in image order (bottom first), then the customisation layer last. */
  layers: z.array(z.discriminatedUnion("kind", [storeLayerSchema, customLayerSchema])),
  totals: z.strictObject({ items: z.number().int(), bytes: z.number().int(), layers: z.number().int() }),
});

export type PlanItem = z.infer<typeof planItemSchema>;
export type StoreLayer = z.infer<typeof storeLayerSchema>;
export type CustomEntry = z.infer<typeof customEntrySchema>;
export type CustomLayer = z.infer<typeof customLayerSchema>;
export type PlannedLayer = StoreLayer | CustomLayer;
export type LayerPlan = z.infer<typeof layerPlanSchema>;
