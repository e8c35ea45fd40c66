import * as fs from "node:fs";
import * as path from "node:path";
import { PlanError } from "../errors.ts";
import { diffPlans } from "../plan/diff.ts";
import { renderDiff } from "../plan/diff-format.ts";
import { formatPlatform } from "../oci/platform.ts";
import { defaultPlanPath, readPlanFile } from "../plan/plan-file.ts";
import { planToYaml } from "../plan/serialize.ts";
import type { LayerPlan } from "../plan/types.ts";
import { loadAndPlan, type Command } from "./context.ts";
import { count } from "../util/format.ts";

/** A path as the user would type it from `cwd`. */
function shown(cwd: string, file: string): string {
  const rel = path.relative(cwd, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/** What differs besides the layers' contents, which the layer diff does not show. */
function otherChanges(committed: LayerPlan, current: LayerPlan): string[] {
  const out: string[] = [];
  if (committed.fingerprint !== current.fingerprint) {
    out.push(
      committed.fingerprint === undefined
        ? "the committed plan has no fingerprint (it was not written by layerpack plan --write)"
        : `the inputs' fingerprint changed: ${committed.fingerprint.slice(0, 19)}... -> ${current.fingerprint!.slice(0, 19)}...`,
    );
  }
  if (committed.storeDir !== current.storeDir) out.push(`storeDir changed: ${committed.storeDir} -> ${current.storeDir}`);
  committed.layers.forEach((l, i) => {
    const c = current.layers[i];
    if (l.kind === "store" && c?.kind === "store" && l.reason !== c.reason && JSON.stringify(l.items) === JSON.stringify(c.items)) {
      out.push(`layer ${i + 1}'s reason changed: "${l.reason ?? ""}" -> "${c.reason ?? ""}"`);
    }
  });
  return out;
}

export const checkCommand: Command = {
  name: "check",
  usage: `layerpack check [config] [--plan FILE] [--previous FILE]

  --plan FILE        the committed plan file (default: image.plan.yaml beside the config)
  --previous FILE    sticky plan: as for layerpack plan (default: layers.previous)

Exit status 0 when the inputs produce exactly the committed plan; 1 with the differences and the command that
updates the plan otherwise.`,
  maxPositionals: 1,
  options: { plan: { type: "string" }, previous: { type: "string" } },
  async run({ io, values, positionals, signal }) {
    const previousArg = values.previous as string | undefined;
    const { plan, spec, configDir, path: configPath, fingerprint } = await loadAndPlan(io, positionals[0], { previous: previousArg, signal });
    const file = typeof values.plan === "string" ? path.resolve(io.cwd, values.plan) : defaultPlanPath(configDir);
    const planShown = shown(io.cwd, file);
    const update = [
      "layerpack plan",
      shown(io.cwd, configPath),
      ...(previousArg !== undefined ? ["--previous", previousArg] : []),
      "--write",
      planShown,
    ].join(" ");
    if (!fs.existsSync(file)) throw new PlanError(`no plan file ${planShown}; write it with: ${update}`);
    const committed = readPlanFile(file, { shown: planShown, expectName: spec.name, configLabel: shown(io.cwd, configPath) });
    const current: LayerPlan = { ...plan, fingerprint: fingerprint() };
    if (planToYaml(committed) === planToYaml(current)) {
      io.out(`${planShown} is up to date (${count(current.totals.layers, "layer")}, ${count(current.totals.items, "store item")})\n`);
      return 0;
    }
    // With platforms, each platform's plan against its committed one.
    const pairs = current.platforms ? current.platforms.map((p, i) => [committed.platforms?.[i] ?? { ...p, layers: [] }, p, ` (${formatPlatform(p.platform!)})`] as const) : [[committed, current, ""] as const];
    for (const [old, neu, which] of pairs) {
      const diff = diffPlans(old, neu, { old: `${planShown}${which}`, new: `the current inputs${which}` });
      diff.notes.push(...otherChanges(old, neu));
      io.out(renderDiff(diff, "text"));
    }
    io.err(`layerpack: ${planShown} is out of date; update it with:\n  ${update}\n`);
    return 1;
  },
};
