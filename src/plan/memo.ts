/**
 * Plans remembered by the layer cache: a plan is a pure function of the layer-shaping inputs (the fingerprint), the
 * image name, the layer options, a sticky previous plan, and the planner's own code; the same key gives the same
 * plan, so a no-op rebuild does not plan 800 items again (the sharing planner's 0.15 s was most of its time).
 * The planner's code is in the key (see planner()), so an edited or upgraded planner never reuses a plan it did
 * not make. A record that does not parse as a plan is a miss.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import { planFingerprint } from "./fingerprint.ts";
import { layerPlanSchema, type LayerPlan, type PlanBase } from "./types.ts";

const MEMO_SCHEME = 1;

/** Where plans are kept: the layer cache (src/cache/cache.ts), or anything with the same two methods. */
export interface PlanStore {
  getPlan(key: string): unknown;
  putPlan(key: string, plan: LayerPlan): void;
}

let plannerDigest: string | undefined;

/**
 * The planner's code, as the name, size and change time of every module in this directory (src/plan or
 * dist/plan): any edit, rebuild or upgrade changes it, and a stat is far cheaper than reading the code.
 */
function planner(): string {
  if (plannerDigest === undefined) {
    const dir = fileURLToPath(new URL(".", import.meta.url));
    const h = createHash("sha256");
    for (const name of fs.readdirSync(dir).filter((n) => /\.[jt]s$/.test(n)).sort()) {
      const st = fs.statSync(`${dir}${name}`, { bigint: true });
      h.update(`${name}\0${st.size}\0${st.ctimeNs}\0${st.mtimeNs}\0`);
    }
    plannerDigest = h.digest("hex");
  }
  return plannerDigest;
}

/** The plan inputs besides the spec and the closure. */
export interface PlanKeyInputs {
  /** The sticky previous plan the new one keeps the grouping of. */
  previous?: LayerPlan | undefined;
  /** The base image the plan is made on top of. */
  base?: PlanBase | undefined;
}

export function planKey(spec: ImageSpec, closure: Closure, { previous, base }: PlanKeyInputs = {}): string {
  const { previous: _file, ...layerOptions } = spec.layers;
  const data = [MEMO_SCHEME, planner(), spec.name, layerOptions, planFingerprint(spec, closure, base), previous ?? null];
  return createHash("sha256").update(JSON.stringify(data)).digest("hex");
}

/** The remembered plan for these inputs, else `plan()`'s, remembered. */
export function memoPlan(store: PlanStore | undefined, key: () => string, plan: () => LayerPlan): LayerPlan {
  if (!store) return plan();
  const k = key();
  const known = layerPlanSchema.safeParse(store.getPlan(k));
  if (known.success) return known.data;
  const fresh = plan();
  store.putPlan(k, fresh);
  return fresh;
}
