/**
 * Stable text forms of a plan, for review in pull requests: fixed key order, items in plan order, sizes as
 * integers, no line folding, a trailing newline. The same plan always gives the same bytes.
 */
import YAML, { visit } from "yaml";
import { jsonText, printable } from "../util/format.ts";
// A cycle within plan/ (plan-file.ts writes with planToYaml), used only inside functions: safe for ES modules.
import { parsePlanFile } from "./plan-file.ts";
import { type CustomEntry, type LayerPlan, type PlannedLayer } from "./types.ts";

/** Copies an entry with its keys in schema order, leaving out absent optional keys. */
function canonicalEntry(e: CustomEntry): CustomEntry {
  switch (e.type) {
    case "directory":
      return { path: e.path, type: e.type, mode: e.mode };
    case "symlink":
      return { path: e.path, type: e.type, target: e.target };
    case "file":
      return {
        path: e.path,
        type: e.type,
        mode: e.mode,
        ...(e.content !== undefined ? { content: e.content } : {}),
        ...(e.source !== undefined ? { source: e.source } : {}),
        ...(e.generated !== undefined ? { generated: e.generated } : {}),
      };
  }
}

function canonicalLayer(l: PlannedLayer): PlannedLayer {
  if (l.kind === "customisation") return { kind: l.kind, entries: l.entries.map(canonicalEntry) };
  if (l.kind === "root-system") return { kind: l.kind, source: l.source, files: l.files, size: l.size };
  return {
    kind: l.kind,
    size: l.size,
    ...(l.reason !== undefined ? { reason: l.reason } : {}),
    items: l.items.map((it) => ({ path: it.path, size: it.size })),
    ...(l.entries !== undefined ? { entries: l.entries.map(canonicalEntry) } : {}),
  };
}

/** The plan with every object's keys in one fixed order (JSON and YAML keep insertion order). */
function canonicalPlan(p: LayerPlan): LayerPlan {
  return {
    version: p.version,
    name: p.name,
    storeDir: p.storeDir,
    strategy: p.strategy,
    max: p.max,
    ...(p.family !== undefined ? { family: [...p.family] } : {}),
    ...(p.fingerprint !== undefined ? { fingerprint: p.fingerprint } : {}),
    ...(p.platform !== undefined ? { platform: { os: p.platform.os, architecture: p.platform.architecture, ...(p.platform.variant !== undefined ? { variant: p.platform.variant } : {}) } } : {}),
    ...(p.base !== undefined
      ? {
          base: {
            image: p.base.image,
            id: p.base.id,
            layers: p.base.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType })),
            items: [...p.base.items],
          },
        }
      : {}),
    totals: { items: p.totals.items, bytes: p.totals.bytes, layers: p.totals.layers },
    layers: p.layers.map(canonicalLayer),
    ...(p.platforms !== undefined ? { platforms: p.platforms.map(canonicalPlan) } : {}),
  };
}

export function planToJson(plan: LayerPlan): string {
  return jsonText(canonicalPlan(plan), 2) + "\n";
}

/**
 * The YAML form. A string holding a control or invisible format character (U+202E reverses the text a reviewer
 * sees) is written double-quoted, where printable's \xNN and \uNNNN are YAML escapes: yaml escapes ESC as \e but
 * writes those characters raw, so printable escapes what is left (in the header comment too, as plain text).
 */
export function planToYaml(plan: LayerPlan): string {
  const doc = new YAML.Document(canonicalPlan(plan));
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === "string" && printable(node.value) !== node.value) node.type = "QUOTE_DOUBLE";
    },
  });
  const t = plan.totals;
  const per = plan.platforms ? ` for ${plan.platforms.length} platforms (each one's plan under platforms)` : "";
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const base = plan.base ? ` on the ${count(plan.base.layers.length, "layer")} of the base image ${plan.base.image}` : "";
  doc.commentBefore = ` layerpack layer plan for ${plan.name}: ${count(t.layers, "layer")}${per}${base}, ${count(t.items, "store item")}, ${count(t.bytes, "byte")} (bottom layer first)`;
  return printable(doc.toString({ lineWidth: 0, indent: 2, indentSeq: true }));
}

/**
 * Reads a plan written by planToYaml or planToJson (YAML is a superset of JSON) and validates it: the plan-file
 * reader's checks and messages (file:line:column), so the library and the commands say the same.
 */
export function parsePlan(text: string, file = "plan"): LayerPlan {
  return parsePlanFile(text, { file });
}
