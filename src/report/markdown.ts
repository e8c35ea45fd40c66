/**
 * `report --format markdown`: the summary for a pull request comment. With --previous it is `diff --format
 * markdown` (diffToMarkdown, the same numbers) followed by the layer totals and the layers with their reasons;
 * without, the plan's totals and layers.
 */
import { bytesText, diffToMarkdown } from "../plan/diff-format.ts";
import { markdownCell as cell } from "./escape.ts";
import type { Report } from "./model.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** More layers than this and the table is folded into a <details>. */
const FOLD = 12;

function layerTable(r: Report): string[] {
  const prev = r.diff !== undefined;
  const rows = [
    prev ? "| Layer | Status | Contents | Items | Bytes | Reason |" : "| Layer | Contents | Items | Bytes | Reason |",
    prev ? "|---:|---|---|---:|---:|---|" : "|---:|---|---:|---:|---|",
  ];
  for (const l of r.layers) {
    const status = prev ? ` ${l.status ?? ""}${l.pull ? " (pull)" : ""} |` : "";
    rows.push(`| ${l.n} |${status} ${cell(l.label)} | ${l.items.length} | ${l.bytes} | ${cell(l.reason)} |`);
  }
  return rows;
}

export function renderMarkdown(r: Report): string {
  const t = r.totals;
  const what = r.kind === "image" ? "compressed" : "of store items";
  const totals = `${plural(t.layers, "layer")}, ${plural(t.items, "store item")}, ${bytesText(t.bytes)} ${what}`;
  const table = layerTable(r);
  const fold = (title: string) => (r.layers.length > FOLD ? ["", `<details><summary>${title}</summary>`, "", ...table, "", "</details>"] : ["", ...table]);
  if (r.diff) {
    const out = [diffToMarkdown(r.diff).trimEnd(), "", `**${cell(r.diff.new.label)}: ${totals}.**`, ...fold(`Layers of ${cell(r.diff.new.label)} and why (${r.layers.length})`)];
    return `${out.join("\n")}\n`;
  }
  const out = [`### Layer ${r.kind}: ${cell(r.name)} (${cell(r.label)})`, "", `**${totals}.**`, ...fold(`Layers and why (${r.layers.length})`)];
  return `${out.join("\n")}\n`;
}
