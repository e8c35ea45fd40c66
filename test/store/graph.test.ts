import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import { closureOf, parseReferencesGraph, parseRegistration, readClosureInfo } from "../../src/store/graph.ts";

const p = (c: string, name: string): string => `/gnu/store/${c.repeat(32)}-${name}`;
const A = p("a", "a");
const B = p("b", "b");
const C = p("c", "c");
const DRV = p("d", "a.drv");
const HEX = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

function errorOf(f: () => unknown): StoreError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error("expected a StoreError");
}

describe("references graph", () => {
  it("parses records, with and without derivers", () => {
    const text = `${A}\n${DRV}\n2\n${B}\n${A}\n${B}\n\n1\n${C}\n${C}\n\n0\n`;
    const recs = parseReferencesGraph(text, "g");
    expect([...recs.values()]).toEqual([
      { path: A, references: [A, B] },
      { path: B, references: [C] },
      { path: C, references: [] },
    ]);
    expect(closureOf(recs, [B], "g").map((r) => r.path)).toEqual([B, C]);
    expect(closureOf(recs, [A], "g").map((r) => r.path)).toEqual([A, B, C]);
    expect(parseReferencesGraph("", "g").size).toBe(0);
    expect(parseReferencesGraph(`${C}\n\n0`, "g").size).toBe(1); // no final newline
  });

  it("reads a graph of 200 000 records in one pass (the end test copied the rest of the lines at each record)", () => {
    const nix32 = "0123456789abcdfghijklmnpqrsvwxyz";
    const hash = (i: number) => [...i.toString(32).padStart(32, "0")].map((d) => nix32[parseInt(d, 32)]).join("");
    const paths = Array.from({ length: 200_000 }, (_, i) => `/gnu/store/${hash(i)}-x`);
    const recs = parseReferencesGraph(`${paths.map((q) => `${q}\n\n0\n`).join("")}\n\n`, "g");
    expect(recs.size).toBe(200_000);
  });

  it("reports malformed input with file and line", () => {
    const cases: [string, RegExp][] = [
      [`${A}\n\nx\n`, /^g:3: expected the number of references \(a non-negative integer\), got "x"$/],
      [`${A}\n\n2\n${B}\n`, /^g:4: unexpected end of file, expected reference 2 of 2$/],
      [`${A}\n\n1\nnot-a-path\n`, /^g:4: expected reference 1 of 1 \(a store path\), got "not-a-path"$/],
      [`relative/x\n\n0\n`, /^g:1: expected a record's store path/],
      [`${A}\n\n0\n${B}\nbogus\n0\n`, /^g:5: expected the deriver/],
      [`${A}\n\n0\n${A}\n\n0\n`, /^g:4: .* has a second record$/],
      [`${A}\n\n-1\n`, /^g:3: /],
    ];
    for (const [text, re] of cases) expect(errorOf(() => parseReferencesGraph(text, "g")).message, text).toMatch(re);
  });

  it("fails when a root or a reference has no record", () => {
    const recs = parseReferencesGraph(`${A}\n\n1\n${B}\n`, "g");
    expect(errorOf(() => closureOf(recs, [C], "g")).message).toBe(`g has no record for ${C}; was it made for this profile or these roots?`);
    expect(errorOf(() => closureOf(recs, [A], "g")).message).toBe(`g: ${A} refers to ${B}, which has no record in the file`);
  });
});

describe("closureInfo", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-graph-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("parses registration records with hashes in any spelling", () => {
    const reg = `${A}\nsha256:${HEX}\n120\n\n1\n${B}\n${B}\n${HEX.toUpperCase()}\n0\n${DRV}\n0\n`;
    expect([...parseRegistration(reg, "r").values()]).toEqual([
      { path: A, narHash: `sha256:${HEX}`, narSize: 120, references: [B] },
      { path: B, narHash: `sha256:${HEX}`, narSize: 0, references: [] },
    ]);
  });

  it("reports malformed registration with file and line", () => {
    const cases: [string, RegExp][] = [
      [`${A}\nmd5:abc\n1\n\n0\n`, /^r:2: expected a sha256 NAR hash \(nix32, hex or SRI\), got "md5:abc"$/],
      [`${A}\nsha256:${HEX}\n12k\n\n0\n`, /^r:3: expected the NAR size/],
      [`${A}\nsha256:${HEX}\n12\n\n0\n${B}\nsha256:${HEX}\n`, /^r:7: unexpected end of file, expected the NAR size$/],
    ];
    for (const [text, re] of cases) expect(errorOf(() => parseRegistration(text, "r")).message, text).toMatch(re);
  });

  it("reads a directory and checks store-paths against registration", () => {
    fs.writeFileSync(path.join(dir, "registration"), `${A}\nsha256:${HEX}\n120\n\n0\n`);
    fs.writeFileSync(path.join(dir, "store-paths"), `${A}\n`);
    expect([...readClosureInfo(dir).keys()]).toEqual([A]);
    fs.writeFileSync(path.join(dir, "store-paths"), `${A}\n${B}\n`);
    expect(errorOf(() => readClosureInfo(dir)).message).toBe(`${path.join(dir, "store-paths")}:2: ${B} has no record in ${path.join(dir, "registration")}`);
    fs.rmSync(path.join(dir, "registration"));
    expect(errorOf(() => readClosureInfo(dir)).message).toMatch(/^reading closureInfo registration .*registration: ENOENT/);
    // closure.file naming a file (the registration itself) instead of the directory
    const file = path.join(dir, "store-paths");
    expect(errorOf(() => readClosureInfo(file)).message).toBe(`closure.file ${file} is a file; nix-closure-info reads a closureInfo directory (holding registration and store-paths), e.g. the output of pkgs.closureInfo`);
  });
});
