import { planToJson, planToYaml } from "../plan/serialize.ts";
import { loadAndPlan, type Command } from "./context.ts";

export const planCommand: Command = {
  name: "plan",
  summary: "print the layer plan: every layer, its items and sizes",
  usage: `layerpack plan [config] [--json]

  --json             print JSON instead of YAML`,
  maxPositionals: 1,
  options: { json: { type: "boolean" } },
  async run({ io, values, positionals }) {
    const { plan } = await loadAndPlan(io, positionals[0]);
    io.out(values.json ? planToJson(plan) : planToYaml(plan));
    return 0;
  },
};
