/**
 * Plan files: the committed, reviewable `image.plan.yaml` beside a config. Written by `layerpack plan --write`,
 * read by `check`, `diff` and sticky planning. Reading checks, in this order: YAML syntax (file:line:column), the
 * format version (a newer one is named, not reported as a schema error), the schema (with line:column of the bad
 * key), and when asked, that the plan belongs to the config at hand.
 */
import * as fs from "node:fs";
import { readUserFile } from "../util/read-file.ts";
import * as path from "node:path";
import YAML, { LineCounter, isNode, type Document } from "yaml";
import { yamlNodeBound } from "../util/yaml-size.ts";
import { PlanError } from "../errors.ts";
import { describeIssues, formatIssue, formatKeyPath } from "../config/format.ts";
import { planToYaml } from "./serialize.ts";
import { PLAN_VERSION, layerPlanSchema, type LayerPlan } from "./types.ts";

export const DEFAULT_PLAN_FILE = "image.plan.yaml";

/** The plan file `check` reads when none is given: image.plan.yaml in the config's directory. */
export function defaultPlanPath(configDir: string): string {
  return path.join(configDir, DEFAULT_PLAN_FILE);
}

/** The bytes `plan --write` writes: the stable YAML form with the inputs' fingerprint. */
export function planFileText(plan: LayerPlan, fingerprint: string): string {
  return planToYaml({ ...plan, fingerprint });
}

/** Problems shown of a plan file that fails the schema (as many as the config loader shows). */
const MAX_SHOWN = 20;

export interface ParsePlanOptions {
  /** The file name messages show. */
  file?: string;
  /** When given, a plan for another image name is refused. */
  expectName?: string;
  /** Shown in the "another config" message, e.g. the config's file name. */
  configLabel?: string;
}

/** Parses and validates a plan file's text. Throws PlanError naming the file and, where it can, line:column. */
/**
 * The most lines and flow separators a plan file may have (yamlNodeBound): about 4 per store item in the YAML plans
 * layerpack writes and 7 in its JSON ones, so 125 000 or 70 000 items, and what the YAML parser holds in ~0.8 GB.
 */
const MAX_PLAN_NODES = 500_000;

export function parsePlanFile(text: string, options: ParsePlanOptions = {}): LayerPlan {
  const file = options.file ?? "plan";
  if (yamlNodeBound(text) > MAX_PLAN_NODES) {
    throw new PlanError(`${file}: not a layer plan: it has more than ${MAX_PLAN_NODES.toLocaleString("en-US")} lines and list items, more than any plan of a real closure (about 4 per store item in YAML, 7 in JSON)`);
  }
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const pos = lines.linePos(offset);
    return `${file}:${pos.line}:${pos.col}`;
  };
  const syntax = doc.errors[0];
  if (syntax) throw new PlanError(`${at(syntax.pos[0])}: not valid YAML or JSON: ${syntax.message.split("\n")[0]}`);
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (cause) {
    // yaml's own guard against alias bombs ("Excessive alias count ...").
    throw new PlanError(`${file}: not a layer plan: ${(cause as Error).message}`, { cause });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new PlanError(`${file}: not a layer plan (expected a mapping with version, name and layers); write one with layerpack plan --write`);
  }
  const version = (data as { version?: unknown }).version;
  // An image config given where a plan goes (diff image.plan.yaml image.config.yaml): say so, not six schema errors.
  const keys = Object.keys(data);
  if (version === undefined && !Array.isArray((data as { layers?: unknown }).layers) && keys.some((k) => ["profile", "roots", "store", "entrypoint", "output"].includes(k))) {
    throw new PlanError(`${file}: this is an image config, not a layer plan; write its plan with layerpack plan ${file} --write FILE`);
  }
  if (typeof version === "number" && version > PLAN_VERSION) {
    throw new PlanError(
      `${file}: plan format version ${version} is newer than this layerpack reads (version ${PLAN_VERSION}); upgrade layerpack, or rewrite the plan with this one (layerpack plan --write)`,
    );
  }
  const parsed = layerPlanSchema.safeParse(data);
  if (!parsed.success) {
    // Located and worded as the config loader's (a missing key points at its parent), one line per problem.
    const issues = describeIssues(parsed.error, { data, doc, lines, schema: layerPlanSchema });
    const shown = issues.slice(0, MAX_SHOWN).map((i, n) => formatIssue(file, n === 0 ? { ...i, keyPath: `not a valid layer plan: ${i.keyPath || "(top level)"}` } : i));
    if (issues.length > MAX_SHOWN) shown.push(`${file}: ... and ${issues.length - MAX_SHOWN} more`);
    throw new PlanError(shown.join("\n"));
  }
  const plan = parsed.data;
  checkItemsOnce(plan, { doc, lines, file });
  if (options.expectName !== undefined && plan.name !== options.expectName && !plan.family?.includes(options.expectName)) {
    const config = options.configLabel ? ` (${options.configLabel})` : "";
    throw new PlanError(
      `${file} is the plan of image "${plan.name}", not of "${options.expectName}"${config}: give this config's plan file, or write it with layerpack plan --write`,
    );
  }
  return plan;
}

const lineNote = (line: number | undefined): string => (line !== undefined ? `, line ${line}` : "");

/**
 * Refuses a store item listed twice (in two layers, twice in one, or in a layer and in base.items): diff, check and sticky planning take each
 * item to lie in exactly one layer, as every plan layerpack writes has it. Names the item, both layers and lines.
 */
function checkItemsOnce(plan: LayerPlan, src: { doc: Document.Parsed; lines: LineCounter; file: string }, base: (string | number)[] = []): void {
  const lineOf = (key: (string | number)[]) => {
    const node = src.doc.getIn(key, true);
    return isNode(node) && node.range ? src.lines.linePos(node.range[0]) : undefined;
  };
  const seen = new Map<string, (string | number)[]>();
  const whereKey = (key: (string | number)[]) => {
    const here = lineOf(key);
    return here ? `${src.file}:${here.line}:${here.col}` : src.file;
  };
  // The base image's items are not packed again (planLayers leaves them out): listed in a layer too, the plan lies.
  plan.base?.items.forEach((item, j) => {
    const key = [...base, "base", "items", j];
    const first = seen.get(item);
    if (first === undefined) return void seen.set(item, key);
    throw new PlanError(`${whereKey(key)}: not a valid layer plan: ${formatKeyPath(key)}: ${item} is listed twice in ${formatKeyPath(key.slice(0, -1))} (items[${String(first.at(-1))}]${lineNote(lineOf(first)?.line)})`);
  });
  plan.layers.forEach((layer, i) => {
    if (layer.kind !== "store") return;
    layer.items.forEach((item, j) => {
      const key = [...base, "layers", i, "items", j];
      const first = seen.get(item.path);
      if (first === undefined) return void seen.set(item.path, key);
      const line = lineOf(first)?.line;
      const said = first.at(-2) === "items" && first.at(-3) === "base"
        ? `is in ${formatKeyPath(first.slice(0, -1))} too${line !== undefined ? ` (line ${line})` : ""}: the base image holds it, so no layer of this plan packs it`
        : first.at(-3) === i
          ? `is listed twice in ${formatKeyPath(key.slice(0, -2))} (items[${String(first.at(-1))}]${lineNote(line)})`
          : `is in ${formatKeyPath(first.slice(0, -2))} too${line !== undefined ? ` (line ${line})` : ""}; a store item lies in exactly one layer`;
      throw new PlanError(`${whereKey(key)}: not a valid layer plan: ${formatKeyPath(key)}: ${item.path} ${said}`);
    });
  });
  plan.platforms?.forEach((p, k) => checkItemsOnce(p, src, ["platforms", k]));
}

/** Larger than any plan of a real closure (a 4000-item plan is ~2 MB), small enough to hold in memory. */
const MAX_PLAN_FILE = 64 << 20;

/** Reads a plan file; a missing or unreadable file is a PlanError naming it. */
export function readPlanFile(file: string, options: Omit<ParsePlanOptions, "file"> & { shown?: string } = {}): LayerPlan {
  const shown = options.shown ?? file;
  let text: string;
  try {
    text = readUserFile(file, MAX_PLAN_FILE);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new PlanError(`cannot read plan file ${shown}: no such file`);
    throw new PlanError(`cannot read plan file ${shown}: ${(cause as Error).message}`, { cause });
  }
  return parsePlanFile(text, { ...options, file: shown });
}

/** Writes a plan file atomically (temp file beside it, then rename), so a reader never sees half a plan. */
export function writePlanFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (cause) {
    fs.rmSync(tmp, { force: true });
    throw new PlanError(`cannot write plan file ${file}: ${(cause as Error).message}`, { cause });
  }
}

export interface PreviousPlan {
  /** The previous plan, when there is one to keep the grouping of. */
  plan?: LayerPlan;
  /** The file it was (or would have been) read from. */
  file?: string;
  /** True when `layers.previous` names a file that does not exist yet (first run: plan without it). */
  missing?: boolean;
}

/**
 * The previous plan for sticky planning: `explicit` (a --previous argument, relative to `cwd`) must exist;
 * `layers.previous` (relative to the config) may not exist yet, since the first `plan --write` creates it.
 * Either must be a plan of the same image name.
 */
export function previousPlanFor(opts: { spec: { name: string; layers: { previous?: string | undefined } }; configDir: string; cwd: string; explicit?: string | undefined }): PreviousPlan {
  const { spec } = opts;
  const file = opts.explicit !== undefined ? path.resolve(opts.cwd, opts.explicit) : spec.layers.previous !== undefined ? path.resolve(opts.configDir, spec.layers.previous) : undefined;
  if (file === undefined) return {};
  if (opts.explicit === undefined && !fs.existsSync(file)) return { file, missing: true };
  const rel = path.relative(opts.cwd, file);
  const shown = rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
  const origin = opts.explicit !== undefined ? "--previous" : "layers.previous";
  try {
    return { file, plan: readPlanFile(file, { shown, expectName: spec.name }) };
  } catch (err) {
    if (err instanceof PlanError) throw new PlanError(`${origin}: ${err.message}`, { cause: err.cause });
    throw err;
  }
}
