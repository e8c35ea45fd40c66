/**
 * The two sides a report compares, got the way `layerpack diff` gets them, so its numbers are diff's: a plan file
 * against the config's plan (diffPlans), or an image against the image the config builds (diffSides of imageSide).
 * A plan and an image are never compared with each other, as diff refuses to.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LayerpackError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import { listImage } from "../oci/list.ts";
import type { ImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { diffPlans, diffSides, imageSide, planSide, type DiffSide, type PlanDiff } from "../plan/diff.ts";
import { readPlanOrImage, type PlanOrImage } from "../plan/plan-or-image.ts";
import type { LayerPlan } from "../plan/types.ts";
import { formatReference, parseReference } from "../registry/reference.ts";

export type Previous = PlanOrImage;

/** Plan file or image, by diff's rules (plan/plan-or-image.ts). */
export const readPrevious = (text: string, cwd: string): Previous => readPlanOrImage(text, { cwd, what: `--previous ${text}` });

/** The image the config builds (its output), as an image name, and how to show it. */
export function outputImage(spec: Pick<ImageSpec, "output" | "tag" | "tags">, cwd: string): { name: ImageName; shown: string } {
  const out = spec.output;
  if (out.format === "registry") {
    // Without a tag in output.ref, the push sends the image's tags: read back the first.
    const reference = parseReference(out.ref!);
    if (reference.tag === undefined && reference.digest === undefined) reference.tag = spec.tag ?? spec.tags?.[0] ?? "latest";
    const shown = `docker://${formatReference(reference)}`;
    return { name: { transport: "registry", reference, text: shown }, shown };
  }
  if (out.path === undefined || out.path === "-") throw new LayerpackError("the config's output is standard output (-): give the built image with --image NAME");
  const rel = path.relative(cwd, out.path);
  const shown = rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : out.path;
  const transport = { "docker-archive": "docker-archive", "oci-archive": "oci-archive", "oci-layout": "oci" }[out.format] as "docker-archive" | "oci-archive" | "oci";
  return { name: { transport, path: out.path, text: shown }, shown };
}

export interface Sides {
  side: DiffSide;
  previous?: { side: DiffSide; diff: PlanDiff };
}

/** The config's plan, and with a previous plan file, the diff against it (exactly `diff OLD.plan NEW.plan`). */
export function planSides(plan: LayerPlan, label: string, previous?: Extract<Previous, { kind: "plan" }>): Sides {
  const side = planSide(plan, label);
  if (!previous) return { side };
  const diff = diffPlans(previous.plan, plan, { old: previous.shown, new: label });
  if (previous.plan.name !== plan.name) diff.notes.unshift(`these are plans of different images: ${previous.plan.name} and ${plan.name}`);
  return { side, previous: { side: planSide(previous.plan, previous.shown), diff } };
}

export interface ImageOptions {
  env: Record<string, string | undefined>;
  insecure?: boolean;
  /** Ends a registry's requests at once (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

async function readImage(name: ImageName, shown: string, o: ImageOptions): Promise<DiffSide> {
  return imageSide(await listImage(await openImage(name, { env: o.env, ...(o.insecure ? { insecure: true } : {}), signal: o.signal }), shown), shown);
}

/** A built image, and with a previous image, the diff against it (exactly `diff OLD NEW` of the two images). */
export async function imageSides(image: { name: ImageName; shown: string; given?: boolean }, previous: Extract<Previous, { kind: "image" }> | undefined, o: ImageOptions): Promise<Sides> {
  if (image.name.transport !== "registry" && !fs.existsSync(image.name.path)) {
    if (image.given) throw new LayerpackError(`--image ${image.shown}: ${image.name.path} does not exist`);
    const why = previous ? `--previous ${previous.shown} is an image, so the report compares it with the image this config builds` : "the report reads the image this config builds";
    throw new LayerpackError(`${why}, ${image.shown}, which does not exist: run layerpack build first, or name the built image with --image`);
  }
  const [side, old] = await Promise.all([readImage(image.name, image.shown, o), previous ? readImage(previous.name, previous.shown, o) : undefined]);
  if (!old) return { side };
  return { side, previous: { side: old, diff: diffSides(old, side) } };
}
