/**
 * An image anyone may have made can put terminal escape sequences and newlines in its names, its config and its
 * store paths. inspect, diff and the error messages show them as \xNN, each value on its own line, so an image
 * cannot retitle or clear the terminal, recolour the output or forge a line (a fake "unchanged" in a CI log).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { pack } from "tar-stream";
import { layerpack } from "./cli.ts";
import { oneLine, printable } from "../../src/util/format.ts";
import { formatError, LayerpackError } from "../../src/errors.ts";

const ESC = "\u001b]0;PWNED\u0007\u001b[2J\u001b[31m";
const hex = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function tarOf(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) p.entry({ name: e.name, size: e.data.length, mode: 0o644, mtime: new Date(0) }, e.data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-escapes-"));
  const layer = await tarOf([{ name: `gnu/store/${"a".repeat(32)}-x${ESC}\nforged line/f`, data: Buffer.from("hi\n") }]);
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", created: `1970${ESC}`, rootfs: { type: "layers", diff_ids: [`sha256:${hex(layer)}`] }, history: [{ comment: `c${ESC}\nFAKE LINE\u202e\u009b` }] }),
  );
  const manifest = Buffer.from(JSON.stringify([{ Config: "c.json", RepoTags: [`evil:1${ESC}\nforged output line`], Layers: ["l.tar"] }]));
  fs.writeFileSync(path.join(dir, "esc.tar"), await tarOf([{ name: "c.json", data: config }, { name: "l.tar", data: layer }, { name: "manifest.json", data: manifest }]));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const clean = (text: string) => {
  expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  expect(text).not.toMatch(/^(forged|FAKE)/m);
};

describe("control characters from images", () => {
  it("printable and oneLine show them as \\xNN; oneLine also newlines and tabs", () => {
    expect(printable("a\u001b[31mb\nc\td\u009b")).toBe("a\\x1b[31mb\nc\td\\x9b");
    expect(oneLine("a\nb\tc\u0007")).toBe("a\\x0ab\\x09c\\x07");
    expect(formatError(new LayerpackError(`bad name ${ESC}`))).toBe("layerpack: bad name \\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31m\n");
  });

  it("inspect shows names, created and history comments without them, one value per line", () => {
    const r = layerpack(["inspect", "esc.tar"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    clean(r.stdout);
    expect(r.stdout).toContain("evil:1\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31m\\x0aforged output line");
  });

  it("diff shows store paths without them, in text and markdown", () => {
    for (const format of ["text", "markdown"]) {
      const r = layerpack(["diff", "esc.tar", "esc.tar", "--format", format], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      clean(r.stdout);
      // Markdown escapes the backslash and bracket once more, so that a renderer shows \x1b[2J.
      expect(r.stdout).toContain(format === "text" ? "\\x1b[2J" : "\\\\x1b\\[2J");
    }
  });

  it("--json output (inspect, diff) holds them only as \\uNNNN, U+202E and C1 too, and parses back to them", () => {
    for (const args of [["inspect", "esc.tar", "--json"], ["diff", "esc.tar", "esc.tar", "--format", "json"]]) {
      const r = layerpack(args, { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      clean(r.stdout);
      expect(r.stdout).not.toContain("\u202e");
      JSON.parse(r.stdout);
    }
    const inspected = layerpack(["inspect", "esc.tar", "--json"], { cwd: dir }).stdout;
    expect(inspected).toContain("FAKE LINE\\u202e\\u009b");
    expect(JSON.stringify(JSON.parse(inspected))).toContain("FAKE LINE\u202e\u009b");
  });
});
