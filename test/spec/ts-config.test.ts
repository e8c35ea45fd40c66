import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { loadSpec } from "../../src/spec/load.ts";
import { loadError, tmpConfigDir } from "./helpers.ts";

const DEFINE = fileURLToPath(new URL("../../src/spec/define.ts", import.meta.url));
const LOAD = fileURLToPath(new URL("../../src/spec/load.ts", import.meta.url));

const tsConfig = (body: string, importFrom = DEFINE) =>
  `import { defineConfig } from ${JSON.stringify(importFrom)};\n` +
  `const layers: number = 7;\n` +
  `export default defineConfig(${body});\n`;

describe("TS configs (in process)", () => {
  test("export default defineConfig({...}) with type annotations", async () => {
    const cwd = tmpConfigDir({
      "image.config.ts": tsConfig('{ name: "hello", profile: "./profile", layers: { max: layers }, output: { path: "./hello.tar" } }'),
    });
    const r = await loadSpec({ cwd, env: {} });
    expect(r.path).toBe(path.join(cwd, "image.config.ts"));
    expect(r.dependencies[0]).toBe(r.path);
    expect(r.config.layers).toEqual({ max: 7, strategy: "sharing" });
    expect(r.config.profile).toBe(path.join(cwd, "profile"));
  });

  test("a reload picks up edits", async () => {
    const body = (name: string) => tsConfig(`{ name: "${name}", profile: "./p", output: { path: "o.tar" } }`);
    const cwd = tmpConfigDir({ "image.config.mts": body("first") });
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("first");
    writeFileSync(path.join(cwd, "image.config.mts"), body("second"));
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("second");
  });

  test("validation errors name the file and key path, without a line", async () => {
    const cwd = tmpConfigDir({
      "image.config.ts": tsConfig('{ name: "hello", profile: "./p", layers: { max: 300 }, output: { path: "o.tar" } } as never'),
    });
    const err = await loadError({ cwd });
    expect(err.message).toMatch(/^image\.config\.ts: layers\.max: must be at most 127: overlay/);
    expect([err.keyPath, err.line, err.column]).toEqual(["layers.max", undefined, undefined]);
  });

  test("a module without a default export", async () => {
    const cwd = tmpConfigDir({ "image.config.js": "export const config = {};\n" });
    expect((await loadError({ cwd })).message).toBe(
      "image.config.js: the config module has no default export; write `export default defineConfig({ ... })`",
    );
  });

  test("a config module that throws is reported with the file", async () => {
    const cwd = tmpConfigDir({ "image.config.mjs": 'throw new Error("boom");\n' });
    const err = await loadError({ cwd });
    expect(err.message).toBe("image.config.mjs: loading the config module failed: boom");
    expect((err.cause as Error).message).toBe("boom");
  });
});

/** Runs loadSpec in a plain Node process (Node's own loader, as the CLI does, not vitest's). */
function loadInNode(script: string, cwd: string): unknown {
  const file = path.join(cwd, "run.mjs");
  writeFileSync(file, `import { loadSpec } from ${JSON.stringify(LOAD)};\n${script}`);
  return JSON.parse(execFileSync(process.execPath, [file], { cwd, encoding: "utf8" }));
}

describe("TS configs under Node's loader", () => {
  test('`from "layerpack"` resolves outside the checkout; local imports are dependencies and reload', () => {
    const cwd = tmpConfigDir({
      "image.config.ts": tsConfig('{ name, profile: "./p", output: { path: "o.tar" } }', "layerpack").replace(
        "\n",
        '\nimport { name } from "./lib/name.ts";\n',
      ),
      "lib/name.ts": 'export const name: string = "first";\n',
    });
    const out = loadInNode(
      [
        'import { writeFileSync } from "node:fs";',
        "const a = await loadSpec({ env: {} });",
        'writeFileSync("lib/name.ts", "export const name: string = \\"second\\";\\n");',
        "const b = await loadSpec({ env: {} });",
        "console.log(JSON.stringify({ names: [a.config.name, b.config.name], deps: b.dependencies }));",
      ].join("\n"),
      cwd,
    );
    expect(out).toEqual({
      names: ["first", "second"],
      deps: [path.join(cwd, "image.config.ts"), path.join(cwd, "lib/name.ts")],
    });
  });

  test("a TS syntax error names the file", () => {
    const cwd = tmpConfigDir({ "image.config.ts": "export default {{ name: 'x' };\n" });
    const out = loadInNode(
      "try { await loadSpec({ env: {} }); console.log('null'); } catch (e) { console.log(JSON.stringify([e.name, e.message, e.file])); }",
      cwd,
    ) as string[];
    expect(out[0]).toBe("SpecError");
    expect(out[1]).toMatch(/^image\.config\.ts: loading the config module failed: /);
    expect(out[2]).toBe(path.join(cwd, "image.config.ts"));
  });
});
