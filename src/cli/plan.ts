import { FamilyKeyError, planFamily } from "../plan/family.ts";
import { writePlanFile } from "../plan/plan-file.ts";
import { planToJson, planToYaml } from "../plan/serialize.ts";
import type { LayerPlan } from "../plan/types.ts";
import { loadResolve } from "../pipeline.ts";
import { loadAndPlan, outputFileArg, UsageError, type Command, type Io } from "./context.ts";
import { count } from "../util/format.ts";
import { locateConfigError } from "../config/format.ts";
import { builtImageGuard, checkOutputPath, protectedPaths, type OutputGuard } from "../image/output-guard.ts";

export const planCommand: Command = {
  name: "plan",
  usage: `layerpack plan [config] [--json] [--write FILE] [--previous FILE]
       layerpack plan --family CONFIG CONFIG... [--json] [--write FILE]

  --json             print JSON instead of YAML
  --write FILE       write the plan file to commit (with the inputs' fingerprint), e.g. image.plan.yaml;
                     layerpack check compares the inputs against it
  --previous FILE    sticky plan: keep this plan file's grouping where still valid (overrides layers.previous)
  --family           plan several images from one store together, so that every layer holds items that the
                     same images contain and the bytes they have in common are the same layers in all of them;
                     each config then names the written plan in layers.previous`,
  maxPositionals: 64,
  options: { json: { type: "boolean" }, write: { type: "string" }, previous: { type: "string" }, family: { type: "boolean" } },
  async run({ io, values, positionals, signal }) {
    if (values.family) return runFamily(io, positionals, { values, signal });
    if (positionals.length > 1) throw new UsageError(`too many arguments: ${positionals.slice(1).join(" ")} (give several configs with --family)`);
    const loaded = await loadAndPlan(io, positionals[0], { previous: values.previous as string | undefined, signal });
    const { plan, previous, fingerprint } = loaded;
    if (previous.missing) io.err(`layerpack: note: layers.previous names ${previous.file}, which does not exist yet; planned without it\n`);
    // The plan files are what --write may replace: that is how a sticky plan is kept up to date.
    const keep = [...protectedPaths({ ...loaded, inputs: loaded.inputs.filter((f) => f !== previous.file) }, { planFiles: false }), ...builtImageGuard(loaded.spec)];
    return emit(io, values, { plan, fingerprint, keep });
  },
};

/** What `emit` prints or writes. */
interface Emitted {
  plan: LayerPlan;
  /** The inputs' fingerprint, stamped into a written plan file; none for a family plan. */
  fingerprint?: () => string;
  /** What --write must not replace (output-guard.ts). */
  keep: OutputGuard["protected"];
}

/** Prints the plan, or with --write writes it (with the inputs' fingerprint when there is one) and says so. */
function emit(io: Io, values: Record<string, unknown>, { plan, fingerprint, keep }: Emitted): number {
  if (typeof values.write !== "string") {
    io.out(values.json ? planToJson(plan) : planToYaml(plan));
    return 0;
  }
  if (values.write === "") throw new UsageError("--write needs a file name, e.g. image.plan.yaml");
  const file = outputFileArg("--write", values.write, io.cwd);
  checkOutputPath({ output: file, directory: false, protected: keep, label: `--write ${values.write}`, what: "the plan file" });
  const stamped = fingerprint ? { ...plan, fingerprint: fingerprint() } : plan;
  writePlanFile(file, file.endsWith(".json") || values.json ? planToJson(stamped) : planToYaml(stamped));
  const t = plan.totals;
  io.err(`wrote ${values.write}: ${count(t.layers, "layer")}, ${count(t.items, "store item")}, ${count(t.bytes, "byte")}\n`);
  return 0;
}

/** `plan --family`: one plan for several configs (no fingerprint: `check` compares each image with its own plan). */
async function runFamily(io: Io, configs: string[], { values, signal }: { values: Record<string, unknown>; signal: AbortSignal | undefined }): Promise<number> {
  if (configs.length < 2) throw new UsageError("--family needs at least two configs, e.g. layerpack plan --family web/image.config.ts worker/image.config.ts");
  if (values.previous !== undefined) throw new UsageError("--previous cannot be used with --family: a family plan is made afresh from its images");
  const images = [];
  // One at a time: each resolve may read a whole store.
  for (const config of configs) images.push(await loadResolve({ cwd: io.cwd, configPath: config, env: io.env, signal }));
  const keep = images.flatMap((im) => [...protectedPaths({ ...im, inputs: [im.path, ...im.dependencies] }, { planFiles: false }), ...builtImageGuard(im.spec)]);
  let plan;
  try {
    plan = planFamily(images);
  } catch (e) {
    // At the key in the config of the image it is about: `web/image.config.yaml:4:8: layers.strategy: ...`.
    throw e instanceof FamilyKeyError ? locateConfigError(images[e.image]!, e) : e;
  }
  return emit(io, values, { plan, keep });
}
