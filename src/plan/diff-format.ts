/** Renders a PlanDiff as plain text (terminals, `check`), Markdown (pull requests) or JSON (tools). */
import { formatBytes, markdownCell as cell, oneLine, printable } from "../util/format.ts";
import { itemName, type DiffItem, type LayerChange, type PlanDiff } from "./diff.ts";

export type DiffFormat = "text" | "markdown" | "json";
export const DIFF_FORMATS: readonly DiffFormat[] = ["text", "markdown", "json"];

/** Exact bytes, with a rounded binary unit beside them from 1 KiB up. */
export function bytesText(n: number): string {
  return Math.abs(n) < 1024 ? `${n} bytes` : `${n} bytes (${formatBytes(n)})`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function headline(d: PlanDiff): string {
  const what = d.kind === "image" ? "compressed" : "of store items";
  const raw = d.pull.uncompressedBytes !== undefined ? `, ${bytesText(d.pull.uncompressedBytes)} uncompressed` : "";
  const pull = `A host that has ${oneLine(d.old.label)} pulls ${d.pull.layers} of ${d.new.layers} layers to get ${oneLine(d.new.label)}: ${bytesText(d.pull.bytes)} ${what}${raw}`;
  const changed = `${plural(d.changed.items, "store item")} changed or added: ${bytesText(d.changed.bytes)}${d.kind === "image" ? " of files" : ""}`;
  return `${pull}; ${changed}.`;
}

function itemList(items: DiffItem[], sign: string): string {
  return items.map((it) => `${sign}${oneLine(itemName(it.path))} (${it.size})`).join(", ");
}

function layerLine(l: LayerChange): string {
  const pos = l.status === "removed" ? `  -` : `${String(l.new).padStart(3)}`;
  const was = l.old !== undefined && l.old !== l.new ? `(was ${l.old})  ` : "";
  const size = l.status === "changed" && l.oldBytes !== l.bytes ? `${l.oldBytes} -> ${l.bytes} bytes` : `${l.bytes} bytes`;
  let line = `${pos}  ${l.status.padEnd(9)}  ${was}${oneLine(l.label)}  [${plural(l.items, "item")}, ${size}]`;
  const change = [itemList(l.itemsIn, "+"), l.status === "removed" ? "" : itemList(l.itemsOut, "-")].filter((s) => s !== "");
  if (l.status !== "unchanged" && l.status !== "added" && change.length > 0) line += `\n       ${change.join(", ")}`;
  for (const e of l.entriesIn ?? []) line += `\n       +${oneLine(e)}`;
  for (const e of l.entriesOut ?? []) line += `\n       -${oneLine(e)}`;
  return line;
}

export function diffToText(d: PlanDiff): string {
  const out = [`layerpack diff: ${oneLine(d.old.label)} -> ${oneLine(d.new.label)} (${d.kind}s)`, headline(d), ""];
  for (const n of d.notes) out.push(`note: ${oneLine(n)}`);
  if (d.notes.length > 0) out.push("");
  out.push(`Layers of ${oneLine(d.new.label)}, bottom first:`);
  for (const l of d.layers) out.push(layerLine(l));
  if (d.moved.length > 0) {
    out.push("", `Moved between layers (${d.moved.length}):`);
    // "old ... new": the numbers count different lists, so `layer 1 -> 1` read as no move at all.
    for (const m of d.moved) out.push(`  ${oneLine(itemName(m.path))} (${m.size} bytes): old layer ${m.from} -> new layer ${m.to}`);
  }
  // Loops, not push(...rows): an image may hold 200 000 items, more arguments than one call takes.
  if (d.added.length > 0) out.push("", `Added items (${d.added.length}):`);
  for (const it of d.added) out.push(`  + ${oneLine(it.path)} (${it.size} bytes)`);
  if (d.removed.length > 0) out.push("", `Removed items (${d.removed.length}):`);
  for (const it of d.removed) out.push(`  - ${oneLine(it.path)} (${it.size} bytes)`);
  return `${out.join("\n")}\n`;
}

export function diffToMarkdown(d: PlanDiff): string {
  const unchanged = d.layers.filter((l) => l.status === "unchanged").length;
  const out = [
    `### Layer ${d.kind} diff: ${cell(d.old.label)} → ${cell(d.new.label)}`,
    "",
    `**${cell(headline(d))}**`,
    "",
    `${unchanged} of ${d.new.layers} layers unchanged; ${plural(d.moved.length, "item")} moved, ${d.added.length} added, ${d.removed.length} removed.`,
  ];
  for (const n of d.notes) out.push("", `> ${cell(n)}`);
  out.push("", "| Layer | Status | Contents | Items | Bytes | Change |", "|---:|---|---|---:|---:|---|");
  for (const l of d.layers) {
    const pos = l.status === "removed" ? `~~${l.old}~~` : l.old !== undefined && l.old !== l.new ? `${l.new} (was ${l.old})` : String(l.new);
    const bytes = l.status === "changed" && l.oldBytes !== l.bytes ? `${l.oldBytes} → ${l.bytes}` : String(l.bytes);
    const entries = [...(l.entriesIn ?? []).map((e) => `+${e}`), ...(l.entriesOut ?? []).map((e) => `−${e}`)].join(", ");
    const change = l.status === "changed" ? [itemList(l.itemsIn, "+"), itemList(l.itemsOut, "−"), entries].filter((s) => s).join(", ") : "";
    out.push(`| ${pos} | ${l.status} | ${cell(l.label)} | ${l.items} | ${bytes} | ${cell(change)} |`);
  }
  const details = (title: string, head: string, rows: string[]) => {
    if (rows.length === 0) return;
    out.push("", `<details><summary>${title}</summary>`, "", head);
    for (const row of rows) out.push(row);
    out.push("", "</details>");
  };
  details(`Moved items (${d.moved.length})`, "| Item | Bytes | Old layer | New layer |\n|---|---:|---:|---:|", d.moved.map((m) => `| ${cell(m.path)} | ${m.size} | ${m.from} | ${m.to} |`));
  const items = [...d.added.map((it) => ({ ...it, s: "added" })), ...d.removed.map((it) => ({ ...it, s: "removed" }))];
  details(`Added and removed items (${items.length})`, "| Item | Bytes | |\n|---|---:|---|", items.map((it) => `| ${cell(it.path)} | ${it.size} | ${it.s} |`));
  return `${out.join("\n")}\n`;
}

export function renderDiff(d: PlanDiff, format: DiffFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(d, null, 2)}\n`;
    // Item paths and labels come from images anyone may have made: each on one line, no control characters.
    case "markdown":
      return printable(diffToMarkdown(d));
    case "text":
      return printable(diffToText(d));
  }
}
