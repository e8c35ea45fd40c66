import * as path from "node:path";
import { planFingerprint } from "../plan/fingerprint.ts";
import { planFileText, writePlanFile } from "../plan/plan-file.ts";
import { planToJson, planToYaml } from "../plan/serialize.ts";
import { loadAndPlan, type Command } from "./context.ts";

export const planCommand: Command = {
  name: "plan",
  summary: "print the layer plan: every layer, its items and sizes",
  usage: `layerpack plan [config] [--json] [--write FILE] [--previous FILE]

  --json             print JSON instead of YAML
  --write FILE       write the plan file to commit (with the inputs' fingerprint), e.g. image.plan.yaml;
                     layerpack check compares the inputs against it
  --previous FILE    sticky plan: keep this plan file's grouping where still valid (overrides layers.previous)`,
  maxPositionals: 1,
  options: { json: { type: "boolean" }, write: { type: "string" }, previous: { type: "string" } },
  async run({ io, values, positionals }) {
    const { plan, spec, closure, previous } = await loadAndPlan(io, positionals[0], { previous: values.previous as string | undefined });
    if (previous.missing) io.err(`layerpack: note: layers.previous names ${previous.file}, which does not exist yet; planned without it\n`);
    if (typeof values.write !== "string") {
      io.out(values.json ? planToJson(plan) : planToYaml(plan));
      return 0;
    }
    const file = path.resolve(io.cwd, values.write);
    const fingerprint = planFingerprint(spec, closure);
    const text = file.endsWith(".json") || values.json ? planToJson({ ...plan, fingerprint }) : planFileText(plan, fingerprint);
    writePlanFile(file, text);
    const t = plan.totals;
    io.err(`wrote ${values.write}: ${t.layers} layers, ${t.items} store items, ${t.bytes} bytes\n`);
    return 0;
  },
};
