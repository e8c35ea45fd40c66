/**
 * layerpack as users get it: `npm pack`, the tarball installed into a fresh project (from npm's cache, no other
 * network), a TS config importing `defineConfig` and a YAML config with the schema line, built on Node 24 and on the
 * oldest Node 22 the package claims, and run under podman; the user's own `tsc` (strict, no skipLibCheck) accepts
 * the typed API; a global install loads a config that imports layerpack without it being installed in the project.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GREETING } from "../../examples/make-store.ts";
import { removeExample, setUpExample } from "./example-dir.ts";
import { requireTool } from "../fixtures/tools.ts";
import { podman } from "./run-tools.ts";
import { nodeBinary, NODE_22_FLOOR, NODE_26 } from "../fixtures/node-versions.ts";
import { runAsync, runOk } from "../fixtures/run-async.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  version: string;
  engines: { node: string };
  devDependencies: Record<string, string>;
};

const sh = runAsync;
const ok = runOk;

/** npm as a user runs it, with this process's cache dir and no audit or funding noise. */
const npm = (args: string[], cwd: string) => ok("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, env: { npm_config_loglevel: "error" } });

let work: string;
let tarball: string;
let files: string[];
let app: string;
let node22: string;
let node26: string;
const CACHE = () => path.join(work, "cache");

/**
 * A copy of what `npm pack` reads, so that its `prepack` script (tsc, as on publish) compiles into the copy: run in
 * the checkout it rewrites dist/ file by file while the other e2e tests import it, and one of them once read a file
 * half-written.
 */
function sourceCopy(name = "source"): string {
  const copy = path.join(work, name);
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "README.md", "LICENSE", "bin", "src", "schemas"]) {
    fs.cpSync(path.join(ROOT, f), path.join(copy, f), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"));
  return copy;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-package-"));
  const packed = JSON.parse(await npm(["pack", "--json", "--pack-destination", work], sourceCopy())) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path).sort();
  node22 = await nodeBinary(NODE_22_FLOOR);
  node26 = await nodeBinary(NODE_26);
  const { dir } = setUpExample("layerpack-package-app-");
  app = dir;
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "user-app", private: true, type: "commonjs" }));
  await npm(["install", "--save-dev", tarball, `typescript@${PKG.devDependencies.typescript}`, `@types/node@${PKG.devDependencies["@types/node"]}`], app);
}, 300_000);

afterAll(() => {
  removeExample(app);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  test("ships what users need and nothing of test/, bench/ or .ci/", async () => {
    expect(files.filter((f) => /^(test|bench|\.ci|src|examples|scripts)\//.test(f))).toEqual([]);
    for (const f of ["LICENSE", "README.md", "package.json", "bin/layerpack.js", "dist/index.js", "dist/index.d.ts", "dist/cli.js", "schemas/image-spec.schema.json", "schemas/plan.schema.json"]) {
      expect(files).toContain(f);
    }
    expect(fs.readFileSync(path.join(ROOT, "LICENSE"), "utf8")).toMatch(/GNU GENERAL PUBLIC LICENSE\s+Version 3/);
  });

  test("has no install scripts (npm 11 lists any, prepare included, as a script for the user to approve)", () => {
    const installed = JSON.parse(fs.readFileSync(path.join(app, "node_modules/layerpack/package.json"), "utf8")) as { scripts?: Record<string, string> };
    expect(Object.keys(installed.scripts ?? {}).filter((s) => ["preinstall", "install", "postinstall", "prepare"].includes(s))).toEqual([]);
  });

  test("a checkout without dist/ runs its sources (Node 24 strips the types)", () => {
    const checkout = sourceCopy("checkout");
    expect(fs.existsSync(path.join(checkout, "dist"))).toBe(false);
    const r = spawnSync(process.execPath, [path.join(checkout, "bin/layerpack.js"), "help", "build"], { encoding: "utf8" });
    expect([r.status, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^Usage: layerpack build /);
  });
});

describe.each([
  ["Node 24", () => process.execPath],
  [`Node ${NODE_22_FLOOR}`, () => node22],
  [`Node ${NODE_26}`, () => node26],
])("installed in a project, on %s", (label, node) => {
  const hasTools = requireTool("podman") && requireTool("runc");
  const bin = () => path.join(app, "node_modules/layerpack/bin/layerpack.js");
  const layerpack = (args: string[], cwd = app) => sh(node(), [bin(), ...args], { cwd, env: { LAYERPACK_CACHE_DIR: CACHE() } });

  test("--version", async () => {
    const r = await layerpack(["--version"]);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `layerpack ${PKG.version}\n`, ""]);
  });

  test.skipIf(!hasTools)("builds a TS config importing defineConfig, in a CommonJS project, and the image runs", async () => {
    const tag = label.replace(/\W+/g, "-").toLowerCase();
    fs.writeFileSync(
      path.join(app, "image.config.ts"),
      [
        'import { defineConfig } from "layerpack";',
        "const max: number = 20;",
        "export default defineConfig({",
        `  name: "user-ts", tag: "${tag}", store: { dir: "/gnu/store", root: "./store" }, profile: "./profile",`,
        '  closure: { from: "scan" }, symlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"], entrypoint: "bin/hello",',
        `  layers: { max }, output: { path: "./user-ts-${tag}.tar" },`,
        "});",
        "",
      ].join("\n"),
    );
    const r = await layerpack(["build"]);
    expect(r.stderr).toMatch(new RegExp(`built user-ts:${tag}`));
    expect(r.status).toBe(0);
    const p = podman(fs.mkdtempSync("/tmp/lpp-")); // podman refuses a runroot path over 50 characters
    try {
      p.load(path.join(app, `user-ts-${tag}.tar`));
      expect(p.run(`localhost/user-ts:${tag}`)).toBe(`${GREETING}\n`);
    } finally {
      p.cleanup();
    }
  });

  test.skipIf(!hasTools)("builds a YAML config that names the installed JSON Schema, and the image runs", async () => {
    const tag = label.replace(/\W+/g, "-").toLowerCase();
    const schema = "./node_modules/layerpack/schemas/image-spec.schema.json";
    expect(fs.existsSync(path.join(app, schema))).toBe(true);
    fs.writeFileSync(
      path.join(app, "image.config.yaml"),
      `# yaml-language-server: $schema=${schema}\nname: user-yaml\ntag: ${tag}\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\n` +
        `closure: { from: scan }\nsymlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"]\nentrypoint: bin/hello\noutput: { path: ./user-yaml-${tag}.tar }\n`,
    );
    const r = await layerpack(["build", "image.config.yaml"]);
    expect(r.status, r.stderr).toBe(0);
    const p = podman(fs.mkdtempSync("/tmp/lpp-"));
    try {
      p.load(path.join(app, `user-yaml-${tag}.tar`));
      expect(p.run(`localhost/user-yaml:${tag}`)).toBe(`${GREETING}\n`);
    } finally {
      p.cleanup();
    }
  });

  test("the library imports from an ES module and from CommonJS", async () => {
    fs.writeFileSync(path.join(app, "use.mjs"), 'import { defineConfig, imageSpecSchema } from "layerpack";\nconsole.log(typeof defineConfig, typeof imageSpecSchema.parse);\n');
    fs.writeFileSync(path.join(app, "use.cjs"), 'const { defineConfig } = require("layerpack");\nconsole.log(typeof defineConfig);\n');
    expect(await ok(node(), ["use.mjs"], { cwd: app })).toBe("function function\n");
    expect(await ok(node(), ["use.cjs"], { cwd: app })).toBe("function\n");
  });

  test("a syntax error in a TS config names file:line:column", async () => {
    const dir = fs.mkdtempSync(path.join(app, "broken-"));
    fs.writeFileSync(path.join(dir, "image.config.ts"), 'import { defineConfig } from "layerpack";\nexport default defineConfig({ name: "x",, });\n');
    const r = await layerpack(["plan"], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^layerpack: image\.config\.ts:2:41: syntax error: \S.*\n$/);
  });
});

describe("the same bytes on every supported Node", () => {
  // Text of a few MiB (deterministic), where codec versions show: zstd 1.5.6 (Node 22.15) and 1.5.7 (22.16 on, 24)
  // write different frames for it, deflate the same stream on all of them. With the store database, which each
  // Node's own SQLite writes.
  function words(file: string): void {
    let x = 1;
    const names = ["lib", "store", "gnu", "profile", "layer", "digest", "sha256", "bin", "share", "doc", "locale", "zoneinfo"];
    const lines: string[] = [];
    for (let n = 0; n < 6 << 20; ) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const line = `${names[x % 12]}/${(x >>> 8).toString(36)} ${names[(x >>> 4) % 12]}\n`;
      lines.push(line);
      n += line.length;
    }
    fs.writeFileSync(file, lines.join(""));
  }
  const config = (dir: string, compression: string, format: string, out: string) =>
    fs.writeFileSync(
      path.join(dir, `${compression}.yaml`),
      `name: same\nstore: { dir: /gnu/store, root: ../store }\nprofile: ../profile\nclosure: { from: scan }\nentrypoint: bin/hello\n` +
        `paths: [{ path: /data/words.txt, type: file, source: ./words.txt }]\ndatabase: true\ncompression: ${compression}\noutput: { format: ${format}, path: ${out} }\n`,
    );
  const manifestOf = (layout: string) => (JSON.parse(fs.readFileSync(layout + "/index.json", "utf8")) as { manifests: { digest: string }[] }).manifests[0]!.digest;
  const digestOf = (file: string) => spawnSync("sha256sum", [file], { encoding: "utf8" }).stdout.split(" ")[0]!;

  test("gzip layers and the store database are one on Node 24, 22.15 and 26; a zstd layer is made by the Node building it, whatever a shared cache holds", async () => {
    const dir = fs.mkdtempSync(path.join(app, "same-"));
    words(path.join(dir, "words.txt"));
    config(dir, "gzip", "docker-archive", "./gzip.tar");
    config(dir, "zstd", "oci-layout", "./zstd-oci");
    const bin = path.join(app, "node_modules/layerpack/bin/layerpack.js");
    const shared = path.join(dir, "cache");
    const build = async (node: string, args: string[]) => {
      const r = await sh(node, [bin, "build", "-q", ...args], { cwd: dir, env: { LAYERPACK_CACHE_DIR: shared } });
      expect([r.status, r.stderr]).toEqual([0, ""]);
    };
    const versions = async (node: string) => (await ok(node, ["-p", "process.versions.zstd"])).trim();
    await build(process.execPath, ["gzip.yaml"]);
    const gzip24 = digestOf(path.join(dir, "gzip.tar"));
    await build(process.execPath, ["zstd.yaml"]);
    const zstd24 = manifestOf(path.join(dir, "zstd-oci"));
    // Node 22.15 with the cache Node 24 filled, then with none: the same archive as Node 24's.
    await build(node22, ["gzip.yaml", "-o", "gzip22.tar"]);
    await build(node22, ["gzip.yaml", "-o", "gzip22-fresh.tar", "--no-cache"]);
    await build(node26, ["gzip.yaml", "-o", "gzip26-fresh.tar", "--no-cache"]);
    expect([digestOf(path.join(dir, "gzip22.tar")), digestOf(path.join(dir, "gzip22-fresh.tar")), digestOf(path.join(dir, "gzip26-fresh.tar"))]).toEqual([gzip24, gzip24, gzip24]);
    // zstd: Node 22.15's own frames, cached or not; not Node 24's, which its zstd does not write.
    await build(node22, ["zstd.yaml", "-o", "zstd22-oci"]);
    await build(node22, ["zstd.yaml", "-o", "zstd22-fresh-oci", "--no-cache"]);
    const zstd22 = manifestOf(path.join(dir, "zstd22-oci"));
    expect(manifestOf(path.join(dir, "zstd22-fresh-oci"))).toBe(zstd22);
    expect([await versions(node22), await versions(process.execPath)]).toEqual(["1.5.6", "1.5.7"]);
    expect(zstd22).not.toBe(zstd24);
    // Node 26 bundles zstd 1.5.7 too: Node 24's frames.
    await build(node26, ["zstd.yaml", "-o", "zstd26-fresh-oci", "--no-cache"]);
    expect(manifestOf(path.join(dir, "zstd26-fresh-oci"))).toBe(zstd24);
  }, 120_000);
});

describe("the user's TypeScript", () => {
  test("tsc --strict without skipLibCheck accepts the typed API", async () => {
    fs.writeFileSync(
      path.join(app, "typed.ts"),
      [
        'import { defineConfig, loadSpec, planLayers, resolveClosure, type ImageSpec, type LayerPlan } from "layerpack";',
        'const config = defineConfig({ name: "typed", profile: "./profile", layers: { max: 10, strategy: "size" }, output: { path: "t.tar" } });',
        "export async function plan(): Promise<LayerPlan> {",
        "  const { config: spec } = await loadSpec({ cwd: process.cwd() });",
        "  const name: ImageSpec['name'] = spec.name;",
        "  void name;",
        "  return planLayers(spec, await resolveClosure(spec, { configDir: process.cwd() }));",
        "}",
        "export default config;",
        "",
      ].join("\n"),
    );
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", types: ["node"] }, files: ["typed.ts"] }),
    );
    const r = await sh(process.execPath, [path.join(app, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: app });
    expect(r.all).toBe("");
    expect(r.status).toBe(0);
    // and a type error in a config is caught by it
    fs.writeFileSync(path.join(app, "typed.ts"), 'import { defineConfig } from "layerpack";\nexport default defineConfig({ name: "t", layers: { max: "ten" } });\n');
    expect((await sh(process.execPath, [path.join(app, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: app })).all).toMatch(/typed\.ts\(2,\d+\): error TS2322/);
  });
});

describe("the README's library example", () => {
  test("type-checks with the user's tsc and runs from the installed package (the registry line sent to a layout)", async () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const block = /### The library[^]*?```ts\n([^]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const dir = fs.mkdtempSync(path.join(app, "readme-"));
    fs.writeFileSync(path.join(dir, "build.mts"), block!);
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", types: ["node"] }, files: ["build.mts"] }),
    );
    const tsc = await sh(process.execPath, [path.join(app, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: dir });
    expect([tsc.status, tsc.all]).toEqual([0, ""]);
    // The example store of this project (beforeAll), as a config the example loads; no registry here.
    fs.writeFileSync(path.join(dir, "image.config.yaml"), 'name: hello\nstore: { dir: /gnu/store, root: ../store }\nprofile: ../profile\nclosure: { from: scan }\nentrypoint: bin/hello\n');
    fs.writeFileSync(path.join(dir, "build.mts"), block!.replace("docker://registry.example/team/hello:1", "oci:./pushed:1"));
    const r = await sh(process.execPath, ["build.mts"], { cwd: dir, env: { LAYERPACK_CACHE_DIR: CACHE() } });
    expect([r.status, r.all]).toEqual([0, ""]);
    expect(fs.statSync(path.join(dir, "hello.tar")).size).toBeGreaterThan(0);
    for (const layout of ["hello-oci", "pushed"]) expect(JSON.parse(fs.readFileSync(path.join(dir, layout, "index.json"), "utf8")).manifests).toHaveLength(1);
  });
});

describe("other ways to install and run it", () => {
  test("a global install loads a config importing layerpack from a project that does not have it", async () => {
    const prefix = path.join(work, "global");
    await ok("npm", ["install", "--global", "--prefix", prefix, tarball, "--no-audit", "--no-fund", "--prefer-offline"], { env: { npm_config_loglevel: "error" } });
    const project = fs.mkdtempSync(path.join(work, "bare-"));
    fs.writeFileSync(
      path.join(project, "image.config.mts"),
      'import { defineConfig } from "layerpack";\n' +
        `export default defineConfig({ name: "bare", store: { dir: "/gnu/store", root: ${JSON.stringify(path.join(app, "store"))} }, ` +
        `profile: ${JSON.stringify(path.join(app, "profile"))}, closure: { from: "scan" }, output: { path: "bare.tar" } });\n`,
    );
    const r = await sh(process.execPath, [path.join(prefix, "bin/layerpack"), "plan", "--json"], { cwd: project, env: { LAYERPACK_CACHE_DIR: CACHE() } });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { layers: unknown[] }).layers.length).toBeGreaterThan(1);
  });

  test("an older Node gets one clear line and exit 1", async () => {
    const r = await sh(await nodeBinary("20.19.0"), [path.join(app, "node_modules/layerpack/bin/layerpack.js"), "build"], { cwd: app });
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("layerpack needs Node >= 22.15.0 (22, 24 or 26 LTS); this is 20.19.0\n");
    expect(r.status).toBe(1);
    expect(PKG.engines.node).toBe(`^${NODE_22_FLOOR} || ^24.0.0 || ^26.0.0`);
    // Importing the library says the same, not that node:module lacks an export.
    const lib = await sh(await nodeBinary("20.19.0"), ["--input-type=module", "-e", 'import("layerpack").catch((e) => { console.error(e.message); process.exit(3); })'], { cwd: app });
    expect([lib.status, lib.stderr]).toEqual([3, "layerpack needs Node >= 22.15.0 (22, 24 or 26 LTS); this is 20.19.0\n"]);
  });
});
