import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { loadSpec } from "../../src/config/load.ts";
import { loadError, tmpConfigDir } from "./helpers.ts";

const DEFINE = fileURLToPath(new URL("../../src/config/define.ts", import.meta.url));
const LOAD = fileURLToPath(new URL("../../src/config/load.ts", import.meta.url));

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

  test("locate finds a key in the source, for errors about the host files it names", async () => {
    const cwd = tmpConfigDir({ "image.config.ts": tsConfig('{\n  name: "hello",\n  profile: "./profile",\n  output: { path: "./hello.tar" },\n}') });
    const r = await loadSpec({ cwd, env: {} });
    expect(r.locate(["profile"])).toEqual({ shown: "image.config.ts", line: 5, column: 3 });
    expect(r.locate(["rootSystem"])).toEqual({ shown: "image.config.ts" });
  });

  test("a reload picks up edits", async () => {
    const body = (name: string) => tsConfig(`{ name: "${name}", profile: "./p", output: { path: "o.tar" } }`);
    const cwd = tmpConfigDir({ "image.config.mts": body("first") });
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("first");
    writeFileSync(path.join(cwd, "image.config.mts"), body("second"));
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("second");
  });

  test("validation errors name the file, key path and, where the source shows it unambiguously, line:column", async () => {
    const cwd = tmpConfigDir({
      "image.config.ts": tsConfig('{ name: "hello", profile: "./p", layers: { max: 300 }, output: { path: "o.tar" } } as never'),
    });
    const err = await loadError({ cwd });
    expect(err.message).toMatch(/^image\.config\.ts:3:72: layers\.max: must be at most 127: overlay/);
    expect([err.keyPath, err.line, err.column]).toEqual(["layers.max", 3, 72]);
    // A key that stands twice in a list gets no position rather than perhaps the wrong one.
    const two = tmpConfigDir({
      "image.config.ts": tsConfig('{ name: "hello", profile: "./p", paths: [{ path: "/a", type: "file", content: "x" }, { path: "/b", type: "file", content: 5 }], output: { path: "o.tar" } } as never'),
    });
    const e2 = await loadError({ cwd: two });
    expect(e2.message).toMatch(/^image\.config\.ts: paths\[1\]\.content: /);
    expect([e2.line, e2.column]).toEqual([undefined, undefined]);
  });

  test("a module without a default export", async () => {
    const cwd = tmpConfigDir({ "image.config.js": "export const config = {};\n" });
    expect((await loadError({ cwd })).message).toBe(
      "image.config.js: the config module has no default export; write `export default defineConfig({ ... })`",
    );
  });

  test("a TS config exporting nothing in a CommonJS project (a script there) says so, not that name is required", async () => {
    const cwd = tmpConfigDir({ "package.json": '{ "type": "commonjs" }\n', "image.config.ts": 'const x = { name: "hello" };\n' });
    expect((await loadError({ cwd })).message).toBe("image.config.ts: the config module exports nothing; write `export default defineConfig({ ... })`");
    // An empty config exported on purpose is validated as one.
    const empty = tmpConfigDir({ "image.config.mts": "export default {};\n" });
    expect((await loadError({ cwd: empty })).message).toMatch(/^image\.config\.mts: name: is required/);
  });

  test("a default export that is a function or a Promise says what to export instead", async () => {
    let cwd = tmpConfigDir({ "image.config.js": 'export default function () { return { name: "x" }; }\n' });
    expect((await loadError({ cwd })).message).toBe("image.config.js: the default export is a function; export the config object itself: `export default defineConfig({ ... })`");
    cwd = tmpConfigDir({ "image.config.mjs": 'export default Promise.resolve({ name: "x" });\n' });
    expect((await loadError({ cwd })).message).toMatch(/^image\.config\.mjs: the default export is a Promise; await it in the module/);
  });

  test("a config module that throws is reported with the file", async () => {
    const cwd = tmpConfigDir({ "image.config.mjs": 'throw new Error("boom");\n' });
    const err = await loadError({ cwd });
    expect(err.message).toBe("image.config.mjs:1:7: loading the config module failed: boom");
    expect((err.cause as Error).message).toBe("boom");
    // Thrown in a file it imports: that file's position (types stripped to blanks keep it).
    const nested = tmpConfigDir({
      "image.config.ts": 'import { f } from "./lib/f.ts";\nf();\nexport default {};\n',
      "lib/f.ts": 'export function f(): never {\n  throw new TypeError("bad thing");\n}\n',
    });
    const thrown = await loadError({ cwd: nested });
    expect([thrown.message, thrown.line, thrown.column]).toEqual(["lib/f.ts:2:9: loading the config module failed: bad thing", 2, 9]);
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

  const loadOutcome = (cwd: string) =>
    loadInNode(
      "try { const r = await loadSpec({ env: {} }); console.log(JSON.stringify({ name: r.config.name, deps: r.dependencies })); }" +
        " catch (e) { console.log(JSON.stringify({ error: [e.name, e.message, e.file, e.line, e.column] })); }",
      cwd,
    ) as { name?: string; deps?: string[]; error?: unknown[] };

  test("a TS syntax error names file:line:column", () => {
    const cwd = tmpConfigDir({ "image.config.ts": "const n: number = 1;\nexport default {{ name: 'x' };\n" });
    const { error } = loadOutcome(cwd);
    expect(error?.[0]).toBe("SpecError");
    expect(error?.[1]).toMatch(/^image\.config\.ts:2:17: syntax error: \S/);
    expect(error?.slice(2)).toEqual([path.join(cwd, "image.config.ts"), 2, 17]);
  });

  test("a JavaScript syntax error in an imported file names that file:line:column", () => {
    const cwd = tmpConfigDir({
      "image.config.mjs": 'import base from "./base.mjs";\nexport default base;\n',
      "base.mjs": "export default {\n  name: 'x',,\n};\n",
    });
    const { error } = loadOutcome(cwd);
    expect(error?.[1]).toMatch(/^base\.mjs:2:13: syntax error: Unexpected token ','/);
    expect(error?.slice(2)).toEqual([path.join(cwd, "base.mjs"), 2, 13]);
  });

  const config = '{ name: "n", profile: "./p", output: { path: "o.tar" } }';
  test.each([
    ["commonjs", "image.config.ts", `import { defineConfig } from "layerpack";\nconst c: object = ${config};\nexport default defineConfig(c as never);\n`],
    ["commonjs", "image.config.cts", `const { defineConfig } = require("layerpack");\nconst c: object = ${config};\nmodule.exports = defineConfig(c);\n`],
    ["module", "image.config.cjs", `module.exports = ${config};\n`],
    ["module", "image.config.cts", `const c: object = ${config};\nmodule.exports = c;\n`],
    ["commonjs", "image.config.mts", `enum E { A }\nexport default { ...${config}, labels: { e: String(E.A) } };\n`],
    ["none", "image.config.js", `import base from "./base";\nexport default base;\n`],
  ])('a "type": "%s" project loads %s', (type, file, body) => {
    const files: Record<string, string> = { [file]: body, "base.ts": `export default ${config};\n` };
    if (type !== "none") files["package.json"] = JSON.stringify({ name: "app", type });
    const r = loadOutcome(tmpConfigDir(files));
    expect(r).toMatchObject({ name: "n" });
  });

  test("a config that calls process.exit while loading is an error, not a silent exit", () => {
    const cwd = tmpConfigDir({ "image.config.ts": 'const code: number = 0;\nprocess.exit(code);\nexport default {};\n' });
    const { error } = loadOutcome(cwd);
    expect(error?.[1]).toBe(
      "image.config.ts:2:9: loading the config module failed: image.config.ts called process.exit(0) while loading; a config module must only export its settings",
    );
  });

  test("a config that never finishes loading is an error after LAYERPACK_CONFIG_TIMEOUT, a loop that never yields too", () => {
    const timedOut = (name: string) =>
      `${name}: loading the config module failed: ${name} did not finish loading within 0.5 s (a top-level await that never settles, or a loop?); LAYERPACK_CONFIG_TIMEOUT sets the limit in seconds`;
    const load = "try { await loadSpec({ env: { LAYERPACK_CONFIG_TIMEOUT: '0.5' } }); console.log('null'); } catch (e) { console.log(JSON.stringify(e.message)); }";
    let cwd = tmpConfigDir({ "image.config.mjs": "await new Promise(() => setInterval(() => {}, 1000));\nexport default {};\n" });
    expect(loadInNode(load, cwd)).toBe(timedOut("image.config.mjs"));
    cwd = tmpConfigDir({ "image.config.ts": "while (true) {}\nexport default {};\n" });
    expect(loadInNode(load, cwd)).toBe(timedOut("image.config.ts"));
    // Nothing left to wait for: said at once.
    cwd = tmpConfigDir({ "image.config.mjs": "await new Promise(() => {});\nexport default {};\n" });
    expect(loadInNode(load, cwd)).toBe("image.config.mjs: loading the config module failed: image.config.mjs did not finish loading: a top-level await never settles (nothing is left that could settle it)");
  });

  test("what a config prints reaches the terminal whole; an error thrown later (a timer, a rejection) is the config's, located", () => {
    let cwd = tmpConfigDir({ "image.config.mjs": 'for (let i = 0; i < 5000; i++) console.log("line " + i);\nexport default { name: "x" };\n' });
    // On stderr: stdout carries build --json's events and build -o -'s image.
    const r = spawnSync(process.execPath, ["-e", `import(${JSON.stringify(LOAD)}).then((m) => m.loadSpec({ env: {} })).catch(() => {})`], { cwd, encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n").filter((l) => l.startsWith("line "))).toHaveLength(5000);
    cwd = tmpConfigDir({ "image.config.mjs": 'setTimeout(() => { throw new Error("late"); }, 10);\nawait new Promise(() => setInterval(() => {}, 1000));\nexport default {};\n' });
    expect(loadOutcome(cwd).error?.[1]).toBe("image.config.mjs:1:26: loading the config module failed: late");
    cwd = tmpConfigDir({ "image.config.mjs": 'Promise.reject(new Error("rej"));\nawait new Promise(() => setInterval(() => {}, 1000));\nexport default {};\n' });
    expect(loadOutcome(cwd).error?.[1]).toBe("image.config.mjs:1:16: loading the config module failed: rej");
  });

  test("a module importing more of layerpack than defineConfig, dynamically too, gets the whole library, and the config runs once", () => {
    const cwd = tmpConfigDir({
      "lib/helper.mjs": 'import { STRATEGY_NAMES, defineConfig } from "layerpack";\nexport const name = defineConfig({}) && STRATEGY_NAMES.join("-");\n',
      "image.config.mjs": 'import * as fs from "node:fs";\nfs.appendFileSync("ran.log", "ran\\n");\nconst { name } = await import("./lib/helper.mjs");\nexport default { name, profile: "./p", output: { path: "o.tar" } };\n',
    });
    expect(loadOutcome(cwd).name).toMatch(/^[a-z]+(-[a-z]+)+$/);
    expect(fs.readFileSync(path.join(cwd, "ran.log"), "utf8")).toBe("ran\n");
  });

  test("a value that is not plain data is named by its key", () => {
    const cwd = tmpConfigDir({ "image.config.mjs": 'export default { name: "x", tags: ["a", () => "b"] };\n' });
    const { error } = loadOutcome(cwd);
    expect(error?.[1]).toBe("image.config.mjs:1:29: tags[1]: a function is not a config value (a config holds strings, numbers, booleans, lists and mappings)");
  });

  test("a package the config imports that is not installed says how to install it", () => {
    const cwd = tmpConfigDir({ "image.config.ts": 'import merge from "lodash-es/merge";\nexport default merge({}, {});\n' });
    const { error } = loadOutcome(cwd);
    expect(error?.[1]).toBe(
      "image.config.ts:1:19: loading the config module failed: image.config.ts imports 'lodash-es/merge', which is not installed here: " +
        "run `npm install --save-dev lodash-es`",
    );
  });

  test("a require of a missing relative file in a CommonJS config is said at the require; a try/catch of it still sees MODULE_NOT_FOUND", () => {
    let cwd = tmpConfigDir({ "image.config.cts": 'const base = require("./base");\nmodule.exports = base;\n' });
    expect(loadOutcome(cwd).error?.[1]).toBe(
      "image.config.cts:1:22: loading the config module failed: image.config.cts imports './base', which does not exist (nor with .ts, .cts, .js, .cjs, .json, /index.ts, /index.js added)",
    );
    cwd = tmpConfigDir({ "image.config.cjs": 'let extra = {};\ntry { extra = require("./local"); } catch (e) { if (e.code !== "MODULE_NOT_FOUND") throw e; }\nmodule.exports = { name: "n", profile: "./p", output: { path: "o.tar" }, ...extra };\n' });
    expect(loadOutcome(cwd)).toMatchObject({ name: "n" });
  });

  test("a CommonJS config that requires an ES module is told so at the require; CommonJS and .ts without import/export still load", () => {
    const cwd = tmpConfigDir({
      "image.config.cts": 'const { name } = require("./name.mts");\nmodule.exports = { name, profile: "./p", output: { path: "o.tar" } };\n',
      "name.mts": 'export const name: string = "n";\n',
    });
    expect(loadOutcome(cwd).error?.[1]).toBe(
      "image.config.cts:1:26: loading the config module failed: image.config.cts requires './name.mts', an ES module (import/export): a CommonJS config cannot require it here; " +
        "import it from an ES module config (.ts, .mts, .mjs), or write name.mts as CommonJS (.cts, .cjs)",
    );
    const ok = tmpConfigDir({
      "image.config.cts": 'const { name } = require("./name");\nmodule.exports = { name: name + require("./more.cjs").more, profile: "./p", output: { path: "o.tar" } };\n',
      "name.ts": 'const name: string = "n";\nmodule.exports = { name };\n',
      "more.cjs": 'exports.more = "m";\n',
    });
    expect(loadOutcome(ok)).toMatchObject({ name: "nm" });
    // Neither a shebang line nor a syntax error makes a CommonJS helper an ES module: the first runs, the second is
    // reported where it is.
    const shebang = tmpConfigDir({
      "image.config.cjs": 'module.exports = { name: require("./helper.js").name, profile: "./p", output: { path: "o.tar" } };\n',
      "helper.js": '#!/usr/bin/env node\nexports.name = "sb";\n',
    });
    expect(loadOutcome(shebang)).toMatchObject({ name: "sb" });
    const broken = tmpConfigDir({ "image.config.cjs": 'module.exports = require("./helper.js");\n', "helper.js": "const x = 1;\nconst y = ;\n" });
    expect(loadOutcome(broken).error?.[1]).toMatch(/^helper\.js:2:11: syntax error: Unexpected token ';'/);
  });

  test("a relative import of a file that does not exist is said at the import, in the file that has it", () => {
    const cwd = tmpConfigDir({ "image.config.ts": 'import base from "./base";\nexport default base;\n', "base.ts": 'import x from "./nope.ts";\nexport default x;\n' });
    expect(loadOutcome(cwd).error?.[1]).toBe(
      "base.ts:1:15: loading the config module failed: base.ts imports './nope.ts', which does not exist (nor with .ts, .mts, .cts, .js, .mjs, .cjs, /index.ts, /index.js added)",
    );
  });
});
