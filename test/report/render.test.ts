/**
 * The report's renderers: hostile strings (store names, reasons, labels from disk) never become markup, the page
 * allows exactly its own script and style, the numbers are the diff's, and the output is byte-for-byte stable.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { diffPlans, diffSides, imageSide, planSide, type ImageLike } from "../../src/plan/diff.ts";
import { diffToMarkdown } from "../../src/plan/diff-format.ts";
import type { LayerPlan } from "../../src/plan/types.ts";
import { escapeHtml, jsonForScript, markdownCell } from "../../src/report/escape.ts";
import { renderHtml } from "../../src/report/html.ts";
import { renderMarkdown } from "../../src/report/markdown.ts";
import { buildReport, imageReasons, planReasons } from "../../src/report/model.ts";

const HOSTILE = [`</script><script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`, `<!--`, `'onmouseover='alert(3)`, `&lt;&amp;`, "\u2028\u0001"];
const hash = (name: string) => createHash("sha256").update(name).digest("hex").replace(/[^0-9a-d]/g, "a").slice(0, 32).replace(/[eotu]/g, "a");
const item = (name: string, size: number) => ({ path: `/gnu/store/${hash(name).padEnd(32, "a")}-${name}`, size });

function plan(layers: { items: ReturnType<typeof item>[]; reason?: string }[], name = "app"): LayerPlan {
  const store = layers.map((l) => ({ kind: "store" as const, size: l.items.reduce((s, it) => s + it.size, 0), ...(l.reason ? { reason: l.reason } : {}), items: l.items }));
  const all = store.flatMap((l) => l.items);
  return {
    version: 1, name, storeDir: "/gnu/store", strategy: "size", max: 100,
    layers: [...store, { kind: "customisation", entries: [{ path: "/bin", type: "symlink", target: all[0]?.path ?? "/" }] }],
    totals: { items: all.length, bytes: all.reduce((s, it) => s + it.size, 0), layers: store.length + 1 },
  };
}

const old = plan([{ items: [item("glibc-2.39", 12000)], reason: "big" }, { items: [item("hello-2.12", 500), item("profile-1", 100)] }]);
const neu = plan([
  { items: [item("glibc-2.39", 12000)], reason: "big" },
  { items: [item("hello-2.13", 520), item(HOSTILE[0]!, 300)], reason: HOSTILE[1] },
  { items: HOSTILE.slice(1).map((n, i) => item(n, 40 + i)), reason: HOSTILE.join(" ") },
]);

/** The inline scripts and styles of a page, and its CSP. */
function parts(html: string) {
  const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)].map((m) => ({ attrs: m[1]!, body: m[2]! }));
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1]?.replace(/&#39;/g, "'");
  return { scripts, styles, csp };
}
const sha = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

describe("escaping", () => {
  it("escapeHtml leaves no markup or quote, and replaces control characters", () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&amp;</a>`)).toBe("&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
    expect(escapeHtml("a\u0001b\tc\nd\u007f")).toBe("a\ufffdb\tc\nd\ufffd");
  });

  it("jsonForScript cannot end its <script> element and reads back as the same value", () => {
    const value = { s: HOSTILE, n: [1, 2.5] };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it("markdownCell keeps a cell one cell of text", () => {
    expect(markdownCell("a|b\nc <img src=x> `x` *y* [l](u)")).toBe("a\\|b\\\\x0ac &lt;img src=x&gt; \\`x\\` \\*y\\* \\[l\\](u)");
  });
});

describe("the HTML page", () => {
  const d = diffPlans(old, neu, { old: `old<b>.plan.yaml`, new: `new"'.yaml` });
  const report = buildReport(planSide(neu, `new"'.yaml`), { name: "app", reasons: planReasons(neu), previous: { side: planSide(old, "old<b>.plan.yaml"), diff: d } });
  const html = renderHtml(report);

  it("has only its own script and style, each allowed by its hash and nothing else", () => {
    const { scripts, styles, csp } = parts(html);
    expect(scripts.map((s) => s.attrs)).toEqual([` type="application/json" id="report-data"`, ""]);
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html.match(/<\/script/gi)).toHaveLength(2);
    expect(styles).toHaveLength(1);
    expect(csp).toBe(`default-src 'none'; script-src ${sha(scripts[1]!.body)}; style-src ${sha(styles[0]!)}; img-src 'none'; base-uri 'none'; form-action 'none'`);
    expect(html).not.toMatch(/https?:\/\/|<link|<img|<iframe|@import|url\(/i);
  });

  it("never writes a hostile string as markup: no tag, attribute or comment comes from the data", () => {
    // Quotes are harmless inside the JSON data block (only <, > and & could end it): the markup is the rest.
    const markup = html.replace(/<script type="application\/json" id="report-data">[^<]*<\/script>/, "");
    for (const h of HOSTILE.slice(0, 4)) expect(markup).not.toContain(h);
    expect(html).not.toMatch(/<img|<b>|<!--|onerror=alert\(2\)>/);
    expect(markup).not.toMatch(/' ?onmouseover=/);
    // Every tag in the page is one the renderer writes.
    const tags = new Set([...html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1]!.toLowerCase()));
    expect([...tags].sort()).toEqual(["aside", "body", "code", "data", "details", "div", "dl", "dd", "dt", "figure", "g", "h1", "h2", "head", "html", "i", "li", "main", "meta", "p", "rect", "script", "section", "span", "style", "summary", "svg", "table", "tbody", "td", "text", "th", "thead", "title", "tr", "ul"].sort());
    // The data block gives the script the exact strings back.
    const data = JSON.parse(parts(html).scripts[0]!.body) as { layers: { reason: string }[]; items: [string, number, number, number][] };
    expect(data.layers[2]!.reason).toBe(HOSTILE.join(" "));
    expect(data.items.map((i) => i[0])).toContain(item(HOSTILE[0]!, 300).path);
  });

  it("shows the diff's numbers in <data> elements, and the layers to pull add up to them", () => {
    const value = (id: string) => Number(new RegExp(`<data id="${id}" value="(\\d+)">`).exec(html)?.[1]);
    expect([value("pull-layers"), value("pull-bytes"), value("changed-items"), value("changed-bytes")]).toEqual([d.pull.layers, d.pull.bytes, d.changed.items, d.changed.bytes]);
    expect([value("old-layers"), value("old-bytes"), value("new-layers"), value("total-bytes")]).toEqual([d.old.layers, d.old.bytes, d.new.layers, d.new.bytes]);
    const pulled = report.layers.filter((l) => l.pull);
    expect([pulled.length, pulled.reduce((s, l) => s + l.bytes, 0)]).toEqual([d.pull.layers, d.pull.bytes]);
    const changed = report.layers.flatMap((l) => l.items.filter((it) => it.changed));
    expect([changed.length, changed.reduce((s, it) => s + it.size, 0)]).toEqual([d.changed.items, d.changed.bytes]);
  });

  it("is the same bytes every time", () => {
    expect(renderHtml(buildReport(planSide(neu, `new"'.yaml`), { name: "app", reasons: planReasons(neu), previous: { side: planSide(old, "old<b>.plan.yaml"), diff: d } }))).toBe(html);
  });
});

describe("images", () => {
  const layer = (id: string, size: number, items: { path: string; size: number }[], otherEntries = 0) => ({ digest: `sha256:${id.repeat(64)}`, diffId: `sha256:${id.repeat(64)}`, size, uncompressedSize: size * 3, items, otherEntries });
  const image = (layers: ImageLike["layers"]): ImageLike => ({ architecture: "amd64", os: "linux", layers });
  const base = layer("b", 900, [], 40);
  const o = image([base, layer("1", 5000, [item("glibc-2.39", 12000)]), layer("2", 300, [item("hello-2.12", 500), item("profile-1", 100)]), layer("3", 200, [], 3)]);
  const n = image([base, layer("1", 5000, [item("glibc-2.39", 12000)]), layer("4", 320, [item("hello-2.13", 520)]), layer("5", 210, [], 3)]);

  it("pull and changed are diffSides' numbers; reasons found by items, base layers by diff_id", () => {
    const d = diffSides(imageSide(o, "v1.tar"), imageSide(n, "v2.tar"));
    const side = imageSide(n, "v2.tar");
    const p = plan([{ items: [item("glibc-2.39", 12000)], reason: "big" }, { items: [item("hello-2.13", 520)], reason: "small" }]);
    p.base = { image: "base.tar", id: `sha256:${"c".repeat(64)}`, layers: [{ digest: base.digest, diffId: base.diffId, size: 900, mediaType: "x" }], items: [] };
    const { reasons, stale } = imageReasons(side, p);
    expect(stale).toBe(false);
    expect(reasons).toEqual(["a layer of the base image base.tar", "big", "small", expect.stringMatching(/^customisation/)]);
    const r = buildReport(side, { name: "app", reasons, previous: { side: imageSide(o, "v1.tar"), diff: d } });
    expect(r.layers.map((l) => l.pull)).toEqual([false, false, true, true]);
    expect(r.layers.filter((l) => l.pull).reduce((s, l) => s + l.bytes, 0)).toBe(d.pull.bytes);
    expect(d.pull).toEqual({ layers: 2, bytes: 530, uncompressedBytes: 1590 });
    expect(renderHtml(r)).toContain(`<data id="pull-uncompressed-bytes" value="1590">`);
    expect(imageReasons(imageSide(o, "v1.tar"), p).stale).toBe(true);
  });
});

describe("Markdown", () => {
  it("with a previous plan: diff --format markdown, then the totals and the layers with their reasons, escaped", () => {
    const d = diffPlans(old, neu, { old: "old.plan.yaml", new: "new.yaml" });
    const md = renderMarkdown(buildReport(planSide(neu, "new.yaml"), { name: "app", reasons: planReasons(neu), previous: { side: planSide(old, "old.plan.yaml"), diff: d } }));
    expect(md.startsWith(diffToMarkdown(d).trimEnd())).toBe(true);
    const ours = md.slice(diffToMarkdown(d).trimEnd().length);
    expect(ours).toContain(`**new.yaml: 4 layers, 8 store items, ${12000 + 520 + 300 + 40 + 41 + 42 + 43 + 44} bytes (12.7 KiB) of store items.**`);
    expect(ours).toContain("| 2 | added (pull) |");
    expect(ours).not.toMatch(/<img|<script|<!--/);
  });

  it("without: the plan's totals and layers", () => {
    const md = renderMarkdown(buildReport(planSide(old, "image.yaml"), { name: "app", reasons: planReasons(old) }));
    expect(md).toBe(
      [
        "### Layer plan: app (image.yaml)",
        "",
        "**3 layers, 3 store items, 12600 bytes (12.3 KiB) of store items.**",
        "",
        "| Layer | Contents | Items | Bytes | Reason |",
        "|---:|---|---:|---:|---|",
        "| 1 | glibc-2.39 | 1 | 12000 | big |",
        "| 2 | hello-2.12, profile-1 | 2 | 600 | no reason recorded in the plan |",
        "| 3 | customisation | 0 | 0 | customisation: the config's one file, directory or symlink outside the store |",
        "",
      ].join("\n"),
    );
  });
});
