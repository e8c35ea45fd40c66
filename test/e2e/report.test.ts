/**
 * `layerpack report` through the real command line, and its page in real headless Chromium (Debian package
 * chromium; in CI a missing chromium fails the file, locally it skips the browser tests): no console errors, the
 * numbers in the page are `diff --json`'s, a 4000-item report is ready in under 2 s, tooltips and the layer panel
 * work, hostile store names stay text. Screenshots go to $LAYERPACK_TEST_ARTIFACTS (default
 * <tmp>/layerpack-test-artifacts), and with LAYERPACK_UPDATE_SCREENSHOT=1 to docs/report.png as well.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { writeExample } from "../golden/example.ts";
import { requireTool } from "../fixtures/tools.ts";
import { fakeHash } from "../fixtures/store.ts";
import { Browser, CHROMIUM_PACKAGE } from "../report/chromium.ts";
import { bigClosures, HOSTILE_NAMES, writeClosureConfig } from "../report/fixtures.ts";
import { layerpack } from "./cli.ts";

const HAVE_CHROMIUM = requireTool("chromium", CHROMIUM_PACKAGE);
const ARTIFACTS = process.env.LAYERPACK_TEST_ARTIFACTS ?? path.join(os.tmpdir(), "layerpack-test-artifacts");
const DOCS_SHOT = path.resolve(import.meta.dirname, "../../docs/report.png");
const INJECTED = `/gnu/store/${fakeHash("/gnu/store", "evil")}-x</script><script>alert(1)</script>`;

let dir: string;
const run = (args: string[], cwd = dir) => layerpack(args, { cwd });
const json = (args: string[], cwd = dir) => JSON.parse(run(args, cwd).stdout);
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-report-"));
  writeExample(dir, "v1", { hello: "2.12" });
  writeExample(dir, "v2", { hello: "2.13" });
  for (const v of ["v1", "v2"]) expect(run(["plan", `${v}.yaml`, "--write", `${v}.plan.yaml`]).status).toBe(0);
  // An older plan whose items a hostile hand edited: its removed item is shown by the report.
  const hostile = YAML.parse(fs.readFileSync(path.join(dir, "v1.plan.yaml"), "utf8"));
  hostile.layers[1].items.push({ path: INJECTED, size: 10 });
  fs.writeFileSync(path.join(dir, "hostile.plan.yaml"), YAML.stringify(hostile));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("report on the command line", () => {
  it("is listed, has --help, and refuses bad arguments with the usage", () => {
    expect(run(["--help"]).stdout).toMatch(/\n {2}report +the layers as an HTML treemap/);
    const help = run(["report", "--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: layerpack report \[config\] \[--previous PLAN\|IMAGE\]/);
    for (const o of ["--previous", "--image", "--output", "--format", "--insecure", "--config"]) expect(help.stdout).toContain(o);
    const bad = run(["report", "v2.yaml", "--format", "pdf"]);
    expect([bad.status, bad.stdout]).toEqual([2, ""]);
    expect(bad.stderr).toMatch(/^layerpack report: --format pdf: use html or markdown\n\nUsage: layerpack report/);
    expect(run(["report", "v2.yaml", "-o", "nowhere/r.html"]).stderr).toMatch(/^layerpack: -o nowhere\/r\.html: the directory .*nowhere does not exist; create it first\n/);
    expect(run(["report", "v2.yaml", "--previous", "v1.plan.yaml", "--image", "v2.tar"]).stderr).toMatch(/is a plan file and --image v2\.tar an image: a report compares a plan with a plan, or an image with an image/);
    expect(run(["report", "v1.yaml", "v2.yaml"]).status).toBe(2);
  });

  it("names the config relative to the current directory, so a checkout elsewhere gives the same page", () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-report-copy-"));
    try {
      spawnSync("cp", ["-a", `${dir}/.`, copy]);
      const pages = [dir, copy].map((where) => {
        // Run from beside the config, not from its directory: the page used to hold the config's absolute path.
        fs.mkdirSync(path.join(where, "beside"), { recursive: true });
        const r = layerpack(["report", "../v2.yaml"], { cwd: path.join(where, "beside") });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).not.toContain(where);
        return r.stdout;
      });
      expect(pages[1]).toBe(pages[0]);
    } finally {
      spawnSync("chmod", ["-R", "u+w", copy]);
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  it("writes to standard output by default and with -o -, the same bytes every time", () => {
    const a = run(["report", "v2.yaml", "--previous", "v1.plan.yaml"]);
    expect([a.status, a.stderr]).toEqual([0, ""]);
    expect(a.stdout.startsWith("<!DOCTYPE html>\n")).toBe(true);
    expect(run(["report", "v2.yaml", "--previous", "v1.plan.yaml", "-o", "-"]).stdout).toBe(a.stdout);
    expect(run(["report", "v2.yaml", "--previous", "v1.plan.yaml", "-o", "r.html"])).toMatchObject({ status: 0, stdout: "", stderr: "wrote r.html: html report of 5 layers, 4 store items, 17624 bytes\n" });
    expect(fs.readFileSync(path.join(dir, "r.html"), "utf8")).toBe(a.stdout);
  });

  it("refuses to print the HTML report to a terminal; markdown there is fine", () => {
    const bin = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
    const tty = (args: string) => spawnSync("script", ["-qec", `"${process.execPath}" "${bin}" report v2.yaml ${args}`, "/dev/null"], { cwd: dir, encoding: "utf8" });
    const html = tty("");
    expect(html.stdout).toMatch(/the HTML report would go to the terminal; give -o report\.html, pipe it, or use --format markdown/);
    expect(html.stdout).not.toContain("<html");
    expect(tty("--format markdown").stdout).toContain("### Layer plan: v2 (v2.yaml)");
  });

  it("a failure leaves the previous output whole, no temp file, and never overwrites an input", () => {
    const before = fs.readFileSync(path.join(dir, "r.html"));
    expect(run(["report", "v2.yaml", "--previous", "missing.plan.yaml", "-o", "r.html"])).toMatchObject({ status: 1, stderr: "layerpack: --previous missing.plan.yaml: no such file\n" });
    expect(fs.readFileSync(path.join(dir, "r.html")).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
    const config = fs.readFileSync(path.join(dir, "v2.yaml"));
    expect(run(["report", "v2.yaml", "-o", "v2.yaml"]).stderr).toMatch(/^layerpack: -o v2\.yaml is the config \(.*v2\.yaml\); writing the report there would destroy it/);
    expect(fs.readFileSync(path.join(dir, "v2.yaml")).equals(config)).toBe(true);
  });

  it("--format markdown is diff --format markdown plus the layer totals; -o FILE.md picks it", () => {
    const md = run(["report", "v2.yaml", "--previous", "v1.plan.yaml", "--format", "markdown"]).stdout;
    const diff = run(["diff", "v1.plan.yaml", "v2.plan.yaml", "--format", "markdown"]).stdout.replaceAll("v2.plan.yaml", "v2.yaml");
    expect(md.startsWith(diff.trimEnd())).toBe(true);
    expect(md).toContain("**v2.yaml: 5 layers, 4 store items, 17624 bytes (17.2 KiB) of store items.**");
    expect(md).toContain("| 4 | added (pull) | hello-2.13 | 1 | 568 | size rank 4: 568 bytes |");
    expect(run(["report", "v2.yaml", "-o", "pr.md"]).status).toBe(0);
    expect(fs.readFileSync(path.join(dir, "pr.md"), "utf8")).toMatch(/^### Layer plan: v2 \(v2\.yaml\)\n\n\*\*5 layers, 4 store items, 17624 bytes \(17\.2 KiB\) of store items\.\*\*\n/);
  });

  it("an image --previous compares with the image the config builds, in diff's numbers", () => {
    expect(run(["report", "v2.yaml", "--previous", "v1.plan.yaml", "--image", "nope.tar"]).status).toBe(2);
    for (const v of ["v1", "v2"]) expect(run(["build", `${v}.yaml`, "-q", "--no-cache"]).status).toBe(0);
    const md = run(["report", "v2.yaml", "--previous", "v1.tar", "-f", "markdown"]);
    expect(md.stderr).toBe("");
    expect(md.stdout.startsWith(run(["diff", "v1.tar", "v2.tar", "--format", "markdown"]).stdout.trimEnd())).toBe(true);
    expect(run(["report", "v2.yaml", "--previous", "v1.tar", "-o", "image.html"]).status).toBe(0);
    // An --image that is not there is named as the option gave it.
    const missing = run(["report", "v2.yaml", "--image", "nope.tar"]);
    expect([missing.status, missing.stderr]).toEqual([1, `layerpack: --image nope.tar: ${path.join(dir, "nope.tar")} does not exist\n`]);
    // The image of other inputs than the config's: reported, with a warning.
    expect(run(["report", "v1.yaml", "--image", "v2.tar", "-o", "stale.html"]).stderr).toMatch(/^layerpack: warning: v2\.tar was not built from the config's current plan/);
  });
});

/** The page's numbers (the <data> elements) by id. */
const NUMBERS = `Object.fromEntries([...document.querySelectorAll("data[id]")].map((d) => [d.id, Number(d.value)]))`;
const READY = `new Promise((resolve) => { const f = () => { const v = document.getElementById("report").getAttribute("data-ready-ms"); v ? resolve(Number(v)) : setTimeout(f, 10); }; f(); })`;
/** The smallest item tile that the pointer can reach (the topmost element at its centre), scrolled into view. */
const SMALLEST = `(() => {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const tiles = [...document.querySelectorAll("#treemap rect[data-i]")].map((r) => { const b = r.getBoundingClientRect(); return { r, a: b.width * b.height }; });
  tiles.sort((x, y) => x.a - y.a);
  for (const { r, a } of tiles) {
    r.scrollIntoView({ block: "center" });
    const b = r.getBoundingClientRect();
    const x = b.x + b.width / 2, y = b.y + b.height / 2;
    if (document.elementFromPoint(x, y) === r) return { x, y, area: a, path: data.items[Number(r.getAttribute("data-i"))][0] };
  }
})()`;
const INJECTION = `({ scripts: document.scripts.length, markup: document.querySelectorAll("img, iframe, object, embed, [onerror], [onload], [onmouseover]").length, body: document.body.textContent })`;

function expectSameNumbers(page: Record<string, number>, d: { old: { layers: number; bytes: number }; new: { layers: number; bytes: number }; pull: { layers: number; bytes: number; uncompressedBytes?: number }; changed: { items: number; bytes: number } }) {
  expect(page).toMatchObject({
    "old-layers": d.old.layers, "old-bytes": d.old.bytes, "new-layers": d.new.layers, "total-layers": d.new.layers, "total-bytes": d.new.bytes,
    "pull-layers": d.pull.layers, "pull-bytes": d.pull.bytes, "changed-items": d.changed.items, "changed-bytes": d.changed.bytes,
  });
  if (d.pull.uncompressedBytes !== undefined) expect(page["pull-uncompressed-bytes"]).toBe(d.pull.uncompressedBytes);
}

describe.skipIf(!HAVE_CHROMIUM)("the report in headless Chromium", () => {
  let browser: Browser;
  let big: string;
  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await Browser.launch(1280, 900);
    big = path.join(dir, "big");
    fs.mkdirSync(big);
    const { old, updated } = bigClosures(4000);
    writeClosureConfig(big, "old", "big", old);
    writeClosureConfig(big, "new", "big", updated);
    for (const v of ["old", "new"]) expect(run(["plan", `${v}.yaml`, "--write", `${v}.plan.yaml`], big).status).toBe(0);
  });
  afterAll(async () => browser?.close());
  const open = async (file: string) => {
    browser.problems.length = 0;
    await browser.open(pathToFileURL(file).href);
    return browser.eval<number>(READY);
  };

  it("a small plan report: no console errors, diff's numbers, tooltip and layer panel, injected names inert", async () => {
    expect(run(["report", "v2.yaml", "--previous", "hostile.plan.yaml", "-o", "small.html"]).status).toBe(0);
    await open(path.join(dir, "small.html"));
    expectSameNumbers(await browser.eval(NUMBERS), json(["diff", "hostile.plan.yaml", "v2.plan.yaml", "--format", "json"]));
    const tile = await browser.eval<{ x: number; y: number; path: string }>(SMALLEST);
    await browser.mouse("mouseMoved", tile.x, tile.y);
    expect(await browser.eval(`document.getElementById("tip").hidden`)).toBe(false);
    expect(await browser.eval<string>(`document.getElementById("tip").textContent`)).toContain(tile.path);
    await browser.mouse("mousePressed", tile.x, tile.y);
    await browser.mouse("mouseReleased", tile.x, tile.y);
    expect(await browser.eval<string>(`document.getElementById("detail").textContent`)).toMatch(/^Layer 4: hello-2\.13.*Why: size rank 4: 568 bytes/);
    const page = await browser.eval<{ scripts: number; markup: number; body: string }>(INJECTION);
    expect([page.scripts, page.markup]).toEqual([2, 0]);
    expect(page.body).toContain(INJECTED);
    expect(browser.problems).toEqual([]);
    fs.writeFileSync(path.join(ARTIFACTS, "report-small.png"), await browser.screenshot());
  });

  it("an image report shows diff --json's numbers of the two images", async () => {
    await open(path.join(dir, "image.html"));
    expectSameNumbers(await browser.eval(NUMBERS), json(["diff", "v1.tar", "v2.tar", "--format", "json"]));
    expect(browser.problems).toEqual([]);
  });

  it("4000 items: ready in under 2 s, every tile drawn, tooltips on the tiniest, diff's numbers", async () => {
    const t0 = performance.now();
    const made = run(["report", "new.yaml", "--previous", "old.plan.yaml", "-o", "big.html"], big);
    const cliMs = performance.now() - t0;
    expect(made.stderr).toBe("wrote big.html: html report of 100 layers, 4000 store items, 3308224461 bytes\n");
    const readyMs = await open(path.join(big, "big.html"));
    console.log(`report of 4000 items: CLI ${Math.round(cliMs)} ms, ${fs.statSync(path.join(big, "big.html")).size} bytes, ready in the browser after ${readyMs} ms`);
    expect(readyMs).toBeLessThan(2000);
    const d = json(["diff", "old.plan.yaml", "new.plan.yaml", "--format", "json"], big);
    expectSameNumbers(await browser.eval(NUMBERS), d);
    expect(d.pull.layers).toBeGreaterThan(0);
    const counts = await browser.eval<number[]>(`[document.querySelectorAll("#treemap rect[data-i]").length, document.querySelectorAll("#treemap g.p rect[data-i]").length, document.querySelectorAll("#treemap rect.c").length, document.querySelectorAll("#treemap text").length]`);
    const pulledItems = d.layers.filter((l: { status: string }) => l.status !== "unchanged" && l.status !== "removed").reduce((n: number, l: { items: number }) => n + l.items, 0);
    expect(counts.slice(0, 3)).toEqual([4000, pulledItems, d.changed.items]);
    expect(counts[3]).toBeLessThan(1500); // tiny tiles unlabelled
    const tile = await browser.eval<{ x: number; y: number; path: string; area: number }>(SMALLEST);
    expect(tile.area).toBeLessThan(4); // a tile of a few pixels still has its tooltip
    await browser.mouse("mouseMoved", tile.x, tile.y);
    expect(await browser.eval<string>(`document.getElementById("tip").textContent`)).toContain(tile.path);
    const page = await browser.eval<{ scripts: number; markup: number; body: string }>(INJECTION);
    expect([page.scripts, page.markup]).toEqual([2, 0]);
    for (const name of HOSTILE_NAMES) expect(page.body).toContain(name);
    expect(browser.problems).toEqual([]);
  });

  it("a screenshot: the map with a tooltip over a tile to pull", async () => {
    await open(path.join(big, "big.html"));
    const at = await browser.eval<{ x: number; y: number; bottom: number }>(`(() => {
      window.scrollTo(0, 0);
      const tiles = [...document.querySelectorAll("#treemap rect.c")].map((r) => r.getBoundingClientRect()).sort((a, b) => b.width * b.height - a.width * a.height);
      const f = document.querySelector("figure").getBoundingClientRect();
      return { x: tiles[0].x + tiles[0].width / 2, y: tiles[0].y + tiles[0].height / 2, bottom: f.bottom + window.scrollY + 12 };
    })()`);
    await browser.mouse("mouseMoved", at.x, at.y);
    const png = await browser.screenshot(Math.ceil(at.bottom));
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    fs.writeFileSync(path.join(ARTIFACTS, "report.png"), png);
    if (process.env.LAYERPACK_UPDATE_SCREENSHOT === "1") {
      fs.mkdirSync(path.dirname(DOCS_SHOT), { recursive: true });
      fs.writeFileSync(DOCS_SHOT, png);
    }
    expect(browser.problems).toEqual([]);
  });
});
