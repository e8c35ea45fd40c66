/**
 * The report as one self-contained HTML file: no network, no external scripts, fonts or images. The treemap is an
 * inline SVG laid out here (treemap.ts); one inline style sheet and one inline script, both allowed by hash in a
 * Content-Security-Policy that forbids everything else. Every string is escaped (escape.ts). The numbers a test or
 * a reader checks are `<data id=... value=...>` elements. Deterministic: same report, same bytes.
 */
import { bytesText } from "../plan/diff-format.ts";
import type { DiffItem, MovedItem } from "../plan/diff.ts";
import { formatBytes } from "../util/format.ts";
import { cspHash, escapeHtml as e, jsonForScript } from "./escape.ts";
import type { Report, ReportLayer } from "./model.ts";
import { SCRIPT, STYLE } from "./page-assets.ts";
import { layoutTreemap, type Treemap } from "./treemap.ts";

export const TREEMAP_WIDTH = 1200;
export const TREEMAP_HEIGHT = 720;
/** Lists of added, removed and moved items stop here (`layerpack diff` prints them all). */
const LIST_LIMIT = 200;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const num = (id: string, value: number, text = bytesText(value)) => `<data id="${id}" value="${value}">${e(text)}</data>`;
const attr = (name: string, value: string | number) => ` ${name}="${e(String(value))}"`;

/** A hue per layer (golden angle apart), so neighbouring layers differ; used when there is nothing to compare. */
const hue = (k: number) => `hsl(${Math.round((k * 137.508) % 360)},48%,${k % 2 === 0 ? 74 : 82}%)`;

function totals(r: Report): string {
  const t = r.totals;
  return `<dl class="cards">
<div><dt>Layers</dt><dd>${num("total-layers", t.layers, String(t.layers))}</dd></div>
<div><dt>Store items</dt><dd>${num("total-items", t.items, String(t.items))}</dd></div>
<div><dt>${r.kind === "image" ? "Bytes (compressed layers)" : "Bytes (store items, NAR)"}</dt><dd>${num("total-bytes", t.bytes)}</dd></div>
</dl>`;
}

/** Bars: NEW's bytes, the bytes to pull, the bytes changed, on one scale. */
function bars(r: Report): string {
  const d = r.diff!;
  const rows: [string, number, string][] = [
    ["all layers", d.new.bytes, "k"],
    ["to pull", d.pull.bytes, "p"],
    ["changed", d.changed.bytes, "c"],
  ];
  const max = Math.max(1, ...rows.map((x) => x[1]));
  const body = rows
    .map(([label, n, cls], i) => {
      const w = Math.max(n > 0 ? 1 : 0, Math.round((n / max) * 440 * 100) / 100);
      return `<text x="0" y="${i * 22 + 14}">${e(label)}</text><rect x="120" y="${i * 22 + 3}" width="${w}" height="15" rx="2" class="${cls}"/><text x="${126 + w}" y="${i * 22 + 14}">${e(formatBytes(n))}</text>`;
    })
    .join("");
  return `<svg class="bars" viewBox="0 0 640 66" role="img" aria-label="bytes to pull against bytes changed">${body}</svg>`;
}

function update(r: Report): string {
  const d = r.diff;
  if (!d) return "";
  const what = d.kind === "image" ? "compressed" : "of store items";
  const raw = d.pull.uncompressedBytes !== undefined ? `<div><dt>Uncompressed, to pull</dt><dd>${num("pull-uncompressed-bytes", d.pull.uncompressedBytes)}</dd></div>` : "";
  const notes = d.notes.length > 0 ? `<ul class="notes">${d.notes.map((n) => `<li>${e(n)}</li>`).join("")}</ul>` : "";
  return `<section id="update" aria-label="update from the previous image">
<h2>Update from <span id="previous-label">${e(d.old.label)}</span></h2>
<p class="sub">A host that has ${e(d.old.label)} (${num("old-layers", d.old.layers, plural(d.old.layers, "layer"))}, ${num("old-bytes", d.old.bytes)}) pulls ${num("pull-layers", d.pull.layers, String(d.pull.layers))} of ${num("new-layers", d.new.layers, String(d.new.layers))} layers to get ${e(d.new.label)}.</p>
<dl class="cards">
<div class="pull"><dt>Bytes to pull (${what})</dt><dd>${num("pull-bytes", d.pull.bytes)}</dd></div>${raw}
<div class="chg"><dt>Bytes changed (${num("changed-items", d.changed.items, plural(d.changed.items, "store item"))} changed or added)</dt><dd>${num("changed-bytes", d.changed.bytes)}</dd></div>
</dl>
${bars(r)}${notes}</section>`;
}

function legend(r: Report): string {
  if (!r.diff) return `<p class="legend">Each box is a layer, its area its bytes; each tile in it a store item. Hover for details, click a layer for its reason.</p>`;
  return `<p class="legend"><span><i class="k"></i>layer a host already has</span><span><i class="p"></i>layer to pull</span><span><i class="c"></i>item changed or added</span><span>Hover for details, click a layer for its reason.</span></p>`;
}

function svg(r: Report, map: Treemap): string {
  const out: string[] = [];
  const rect = (b: { x: number; y: number; w: number; h: number }) => `x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}"`;
  out.push(`<g class="boxes">`);
  for (const b of map.layers) out.push(`<rect class="lb"${attr("data-l", b.layer)} ${rect(b)}/>`);
  out.push(`</g><g class="tiles">`);
  // Item indexes run over all layers in order: the data block's `items` list.
  const first: number[] = [];
  r.layers.reduce((n, l, k) => ((first[k] = n), n + l.items.length), 0);
  let open = -1;
  for (const t of map.tiles) {
    if (t.layer !== open) {
      if (open >= 0) out.push(`</g>`);
      open = t.layer;
      const l = r.layers[t.layer]!;
      const look = l.pull === undefined ? ` fill="${hue(t.layer)}"` : ` class="${l.pull ? "p" : "k"}"`;
      out.push(`<g${attr("data-l", t.layer)}${look}>`);
    }
    const item = t.item >= 0 ? r.layers[t.layer]!.items[t.item]! : undefined;
    out.push(item ? `<rect${item.changed ? ` class="c"` : ""}${attr("data-i", first[t.layer]! + t.item)} ${rect(t)}/>` : `<rect ${rect(t)}/>`);
  }
  if (open >= 0) out.push(`</g>`);
  out.push(`</g><g class="labels">`);
  for (const t of map.tiles) {
    if (t.label === undefined) continue;
    out.push(`<text x="${Math.round((t.x + 3) * 10) / 10}" y="${Math.round((t.y + 11) * 10) / 10}">${e(t.label)}</text>`);
    const size = t.item >= 0 ? r.layers[t.layer]!.items[t.item]!.size : r.layers[t.layer]!.bytes;
    if (t.h >= 25 && t.w >= 50) out.push(`<text class="s" x="${Math.round((t.x + 3) * 10) / 10}" y="${Math.round((t.y + 22) * 10) / 10}">${e(formatBytes(size))}</text>`);
  }
  for (const b of map.layers) if (b.title !== undefined) out.push(`<text class="lt" x="${Math.round((b.x + 3) * 10) / 10}" y="${Math.round((b.y + 10.5) * 10) / 10}">${e(b.title)}</text>`);
  out.push(`</g>`);
  const label = `Treemap of the ${r.layers.length} layers by bytes; each tile a store item`;
  return `<svg id="treemap" viewBox="0 0 ${map.width} ${map.height}" role="img" aria-label="${e(label)}">${out.join("\n")}</svg>`;
}

function layerTable(r: Report): string {
  const prev = r.diff !== undefined;
  const head = `<tr><th class="n">Layer</th>${prev ? "<th>Status</th>" : ""}<th>Contents</th><th class="n">Items</th><th class="n">Bytes</th><th>Reason</th></tr>`;
  const row = (l: ReportLayer, k: number) => {
    const status = prev ? `<td>${e(l.status ?? "")}${l.pull ? " (pull)" : ""}</td>` : "";
    return `<tr${attr("data-l", k)} tabindex="0"${l.pull ? ` class="pulled"` : ""}><td class="n">${l.n}</td>${status}<td>${e(l.label)}</td><td class="n">${l.items.length}</td><td class="n"><data value="${l.bytes}">${e(formatBytes(l.bytes))}</data></td><td class="r">${e(l.reason)}</td></tr>`;
  };
  return `<table id="layer-table"><thead>${head}</thead><tbody>\n${r.layers.map(row).join("\n")}\n</tbody></table>`;
}

function list<T>(title: string, xs: T[], line: (x: T) => string): string {
  if (xs.length === 0) return "";
  const more = xs.length > LIST_LIMIT ? `<li>… and ${xs.length - LIST_LIMIT} more (layerpack diff lists them all)</li>` : "";
  return `<details><summary>${e(title)} (${xs.length})</summary><ul>${xs.slice(0, LIST_LIMIT).map((x) => `<li>${line(x)}</li>`).join("")}${more}</ul></details>`;
}

function changes(r: Report): string {
  const d = r.diff;
  if (!d) return "";
  const item = (it: DiffItem) => `<code>${e(it.path)}</code> (${it.size} bytes)`;
  const removedLayers = d.layers.filter((l) => l.status === "removed");
  return `<section id="changes"><h2>Changes</h2>
${list("Added items", d.added, item)}${list("Removed items", d.removed, item)}${list("Moved between layers", d.moved, (m: MovedItem) => `${item(m)}: old layer ${m.from} → new layer ${m.to}`)}${list("Layers of the previous image no longer used", removedLayers, (l) => `${l.old}: ${e(l.label)} (${l.bytes} bytes)`)}
</section>`;
}

/** The data the script reads: layer facts and, per item, [path, size, layer index, changed]. */
function dataBlock(r: Report): string {
  const layers = r.layers.map((l) => ({ n: l.n, label: l.label, reason: l.reason, bytes: l.bytes, items: l.items.length, ...(l.status ? { status: l.status } : {}), ...(l.pull !== undefined ? { pull: l.pull } : {}) }));
  const items = r.layers.flatMap((l, k) => l.items.map((it) => [it.path, it.size, k, it.changed ? 1 : 0]));
  return jsonForScript({ layers, items });
}

export function renderHtml(r: Report): string {
  const map = layoutTreemap(
    r.layers.map((l) => ({ bytes: l.bytes, title: `#${l.n} ${formatBytes(l.bytes)} ${l.label}`, items: l.items })),
    TREEMAP_WIDTH,
    TREEMAP_HEIGHT,
  );
  const csp = `default-src 'none'; script-src ${cspHash(SCRIPT)}; style-src ${cspHash(STYLE)}; img-src 'none'; base-uri 'none'; form-action 'none'`;
  const title = `Layer report: ${r.name}`;
  const what = r.kind === "image" ? "image" : "layer plan";
  const hidden = r.layers.filter((l) => l.bytes === 0).length;
  const zero = hidden === 0 ? "" : ` ${hidden === 1 ? "One layer has no bytes: it is" : `${hidden} layers have no bytes: they are`} in the table, not in the map.`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="layerpack report">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main id="report"${attr("data-kind", r.kind)}${attr("data-previous", r.diff ? "yes" : "no")}>
<h1>Layer report: <span id="image-name">${e(r.name)}</span></h1>
<p class="sub">The ${what} of <span id="source-label">${e(r.label)}</span>.${e(zero)}</p>
${totals(r)}
${update(r)}
${legend(r)}
<figure>${svg(r, map)}</figure>
<aside id="detail" hidden aria-live="polite"></aside>
<div id="tip" role="tooltip" hidden></div>
<h2>Layers, bottom first</h2>
${layerTable(r)}
${changes(r)}
</main>
<script type="application/json" id="report-data">${dataBlock(r)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
