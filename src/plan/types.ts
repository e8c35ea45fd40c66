/**
 * The layer plan: the reviewable artifact between the planner and the executor. Plain, serialisable data
 * (stable YAML/JSON); a zod schema so schemas/plan.schema.json can be generated from it and plan files read back.
 * Nothing machine-specific goes in here: store paths are logical, file sources stay as written in the spec.
 */
import { z } from "zod";
import { SHA256_DIGEST } from "../util/digest.ts";

/** The plan file format version this layerpack writes and reads (plan files carry it as `version`). */
export const PLAN_VERSION = 1;

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
    /** Made at build time, e.g. the store database (its bytes depend on NAR hashes computed while the store
     * layers are written): neither content nor source. */
    generated: z.enum(["guix-database", "nix-database"]).optional(),
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

/** A provisioned root file system (`rootSystem`), between the store layers and the customisation layer. Its
 * files are listed by the resolve stage; the plan names the directory as written in the spec. */
export const rootSystemLayerSchema = z.strictObject({
  kind: z.literal("root-system"),
  source: z.string(),
  /** How many entries (files, directories, links...) it holds, and the bytes of its regular files. */
  files: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
});

export const customLayerSchema = z.strictObject({
  kind: z.literal("customisation"),
  /** Absolute image paths sorted bytewise component by component (tar --sort=name order, so parents come before
   * children); implicit parents included (mode 755). */
  entries: z.array(customEntrySchema),
});

const digestSchema = z.string().regex(SHA256_DIGEST, "must be sha256: and 64 hex digits");

/** The base image the plan builds on (`base:` in the config): its layers come first, reused byte for byte. */
export const planBaseSchema = z.strictObject({
  /** The name as the config gives it (src/oci/name.ts). */
  image: z.string(),
  /** `sha256:` of its config, the image ID: `check` fails when the base moves. */
  id: digestSchema,
  layers: z.array(z.strictObject({ digest: digestSchema, diffId: digestSchema, size: z.number().int().nonnegative(), mediaType: z.string() })),
  /** Store items of the closure the base already holds at the same path: not packed again. */
  items: z.array(z.string()),
});

const onePlatformPlanSchema = z.strictObject({
  version: z.literal(1),
  name: z.string(),
  storeDir: z.string(),
  strategy: z.string(),
  max: z.number().int(),
  /** Only in a family plan (src/plan/family.ts): the images it was planned for. Each of them may use it as its
   * previous plan; every store layer holds items that the same set of these images contain. */
  family: z.array(z.string()).optional(),
  /** Digest of the inputs that shape the layers (src/plan/fingerprint.ts); written by `plan --write`, so `check`
   * can tell "inputs changed" from "plan edited". Optional: plans printed without it are still version 1. */
  fingerprint: digestSchema.optional(),
  base: planBaseSchema.optional(),
  /** The platform the image is for (the config's, else the planning host's): two hosts of one platform agree. */
  platform: z.strictObject({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
  /** Store layers in image order (bottom first), then the root-system layer if any, the customisation layer last. */
  // As images (oci/read.ts): far above layers.max; a plan of 10 000 layers made diff pair them all.
  layers: z.array(z.discriminatedUnion("kind", [storeLayerSchema, rootSystemLayerSchema, customLayerSchema])).max(1000),
  totals: z.strictObject({ items: z.number().int(), bytes: z.number().int(), layers: z.number().int() }),
});

/** A plan, or with `platforms:` in the config, the plans of every platform in `platforms` (the outer plan's own
 * layers are then empty and its totals are those of the union of the closures). */
export const layerPlanSchema = onePlatformPlanSchema.extend({
  platforms: z.array(onePlatformPlanSchema).min(2).optional(),
});

export type PlanItem = z.infer<typeof planItemSchema>;
export type StoreLayer = z.infer<typeof storeLayerSchema>;
export type CustomEntry = z.infer<typeof customEntrySchema>;
export type CustomLayer = z.infer<typeof customLayerSchema>;
export type RootSystemLayer = z.infer<typeof rootSystemLayerSchema>;
export type PlannedLayer = StoreLayer | RootSystemLayer | CustomLayer;
export type LayerPlan = z.infer<typeof layerPlanSchema>;
export type PlanBase = z.infer<typeof planBaseSchema>;
