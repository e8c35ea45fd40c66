import { LayerpackError } from "../errors.ts";
import { withPushHost } from "../registry/auth.ts";
import { listImage } from "../oci/list.ts";
import { openImage } from "../oci/read.ts";
import { diffPlans, diffSides, imageSide, type PlanDiff } from "../plan/diff.ts";
import { DIFF_FORMATS, renderDiff, type DiffFormat } from "../plan/diff-format.ts";
import { readPlanOrImage, type PlanOrImage } from "../plan/plan-or-image.ts";
import { UsageError, type Command } from "./context.ts";
import type { LayerPlan } from "../plan/types.ts";
import { formatPlatform } from "../oci/platform.ts";
import { jsonText } from "../util/format.ts";

/**
 * Plans with `platforms:`: a host pulls only its own platform's image, so each platform's plan is compared with
 * the same platform's in the other file (a plan without platforms counts as its own platform's).
 */
function renderPlatformDiffs(old: LayerPlan, neu: LayerPlan, o: { old: string; new: string; format: DiffFormat }): string {
  const each = (p: LayerPlan) => p.platforms ?? [p];
  const name = (p: LayerPlan) => (p.platform ? formatPlatform(p.platform) : "(no platform)");
  const olds = new Map(each(old).map((p) => [name(p), p]));
  const empty = (p: LayerPlan): LayerPlan => ({ ...p, layers: [], totals: { items: 0, bytes: 0, layers: 0 } });
  const diffs = each(neu).map((p) => {
    const before = olds.get(name(p));
    const d = diffPlans(before ?? empty(p), p, { old: `${o.old} (${name(p)})`, new: `${o.new} (${name(p)})` });
    if (!before) d.notes.unshift(`${name(p)} is a new platform`);
    return { platform: name(p), diff: d };
  });
  const gone = [...olds.keys()].filter((k) => !diffs.some((d) => d.platform === k));
  if (o.format === "json") return `${jsonText({ platforms: diffs, removedPlatforms: gone }, 2)}\n`;
  const head = (t: string) => (o.format === "markdown" ? `### ${t}\n\n` : `== ${t} ==\n`);
  return diffs.map((d) => head(d.platform) + renderDiff(d.diff, o.format)).join("\n") + gone.map((g) => `${g}: no longer built\n`).join("");
}

export const diffCommand: Command = {
  name: "diff",
  usage: `layerpack diff OLD NEW [--format text|markdown|json] [--insecure]

  OLD, NEW           plan files (layerpack plan --write), or images: docker-archive:PATH, oci:DIR[:REF],
                     oci-archive:PATH[:REF], docker://HOST/NAME[:TAG|@DIGEST], or a plain path or reference
                     (a plain file is an image when it is a tar, else a plan). Layers are compared by diff_id, so
                     the same layer compressed elsewhere counts as shared.
  --format FORMAT    text (default), markdown (to paste into a pull request) or json
  --insecure         plain HTTP to registries (loopback registries use it without this)`,
  maxPositionals: 2,
  readsConfig: false,
  options: { format: { type: "string", short: "f" }, insecure: { type: "boolean" } },
  async run({ io, values, positionals, signal }) {
    const format = (values.format ?? "text") as DiffFormat;
    if (!DIFF_FORMATS.includes(format)) throw new UsageError(`--format ${String(format)}: use ${DIFF_FORMATS.join(", ")}`);
    if (positionals.length !== 2) {
      io.err(`layerpack diff: give two files, OLD and NEW\n\nUsage: ${diffCommand.usage}\n`);
      return 2;
    }
    const [oldFile, newFile] = positionals as [string, string];
    const o = readPlanOrImage(oldFile, { cwd: io.cwd });
    const n = readPlanOrImage(newFile, { cwd: io.cwd });
    let diff: PlanDiff;
    if (o.kind === "plan" && n.kind === "plan" && (o.plan.platforms || n.plan.platforms)) {
      io.out(renderPlatformDiffs(o.plan, n.plan, { old: oldFile, new: newFile, format }));
      return 0;
    }
    if (o.kind === "plan" && n.kind === "plan") {
      diff = diffPlans(o.plan, n.plan, { old: oldFile, new: newFile });
      if (o.plan.name !== n.plan.name) diff.notes.unshift(`these are plans of different images: ${o.plan.name} and ${n.plan.name}`);
    } else if (o.kind === "image" && n.kind === "image") {
      // LAYERPACK_REGISTRY_USER/PASSWORD go to a registry only when it is the only one the images come from (auth.ts).
      const registries = new Set([o.name, n.name].flatMap((x) => (x.transport === "registry" ? [x.reference.registry] : [])));
      const env = registries.size === 1 ? withPushHost(io.env, [...registries][0]) : io.env;
      const read = async (x: typeof o) => listImage(await openImage(x.name, { env, ...(values.insecure ? { insecure: true } : {}), signal }), x.shown);
      const [oi, ni] = await Promise.all([read(o), read(n)]);
      diff = diffSides(imageSide(oi, oldFile), imageSide(ni, newFile));
    } else {
      const what = (x: PlanOrImage) => (x.kind === "plan" ? "a plan file" : "an image");
      throw new LayerpackError(`${oldFile} is ${what(o)} and ${newFile} is ${what(n)}: diff compares two plan files or two images`);
    }
    io.out(renderDiff(diff, format));
    return 0;
  },
};
