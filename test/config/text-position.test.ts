import { describe, expect, it } from "vitest";
import { textPosition } from "../../src/config/text-position.ts";

describe("textPosition: where a key of a TS config stands", () => {
  const src = 'export default {\n  name: "x",\n  layers: { "max": "10" },\n  output: { path: "o" },\n};\n';
  it("finds each key after the one before it, quoted or not", () => {
    expect(textPosition(src, ["layers", "max"])).toEqual({ line: 3, column: 13 });
    expect(textPosition(src, ["output", "path"])).toEqual({ line: 4, column: 13 });
    expect(textPosition(src, ["name"])).toEqual({ line: 2, column: 3 });
  });
  it("gives nothing when it cannot be sure", () => {
    expect(textPosition(src, ["missing"])).toBeUndefined();
    expect(textPosition(src, [])).toBeUndefined();
    // "path" stands twice after "paths": which one is meant is not clear from the text.
    expect(textPosition('x = { paths: [{ path: "/a" }, { path: "/b" }] }', ["paths", 1, "path"])).toBeUndefined();
    // Not a property: a member access or another word ending in the key.
    expect(textPosition("const a = b.name ? 1 : 2; const rename: 1", ["name"])).toBeUndefined();
    // A key only spread into its parent is not found in a sibling after it.
    const spread = 'const shared = { format: "oci-layuot" };\nexport default {\n  output: { path: "o", ...shared },\n  sbom: { format: "spdx" },\n};\n';
    expect(textPosition(spread, ["output", "format"])).toBeUndefined();
    expect(textPosition(spread, ["sbom", "format"])).toEqual({ line: 4, column: 11 });
    // Nor inside a string or a comment.
    expect(textPosition('x = { labels: { note: "see layers: { max: 200 }" }, // layers: { max: 1 }\n}', ["layers", "max"])).toBeUndefined();
    // A value that is not a literal has no keys to find.
    expect(textPosition("x = { layers: base.layers }", ["layers", "max"])).toBeUndefined();
  });
});
