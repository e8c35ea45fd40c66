import path from "node:path";
import { describe, expect, test } from "vitest";
import { DEFAULT_CREATED, SEARCH_PLACES, loadSpec, resolveFrom } from "../../src/config/load.ts";
import { MINIMAL_YAML, loadError, tmpConfigDir } from "./helpers.ts";

const MINIMAL = { name: "hello", profile: "./profile", output: { path: "./hello.tar" } };

describe("a valid YAML config", () => {
  test("defaults are applied and the result is described", async () => {
    const cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML });
    const r = await loadSpec({ cwd, env: {} });
    expect(r.path).toBe(path.join(cwd, "image.config.yaml"));
    expect(r.configDir).toBe(cwd);
    expect(r.dependencies).toEqual([r.path]);
    expect(r.config).toEqual({
      name: "hello",
      store: "/gnu/store",
      profile: path.join(cwd, "profile"),
      closure: { from: "auto" },
      symlinks: [],
      entrypointArgs: [],
      cmd: [],
      env: {},
      workingDir: "/",
      user: "0:0",
      labels: {},
      exposedPorts: [],
      paths: [],
      layers: { max: 100, strategy: "sharing" },
      compression: "gzip",
      created: DEFAULT_CREATED,
      os: "linux",
      output: { format: "docker-archive", path: path.join(cwd, "hello.tar") },
      database: false,
      perms: [],
      cache: { from: [], publish: true },
    });
  });

  test("host paths resolve against the config's directory; paths[].source stays as written", async () => {
    const cwd = tmpConfigDir({
      "conf/image.config.yaml": [
        "name: hello",
        "roots: [/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x, ./result]",
        "store: { dir: /gnu/store, root: ../chroot }",
        "closure: { from: guix-graph, file: graph.txt }",
        "paths: [{ path: /etc/motd, type: file, source: ./motd }]",
        "output: { path: out/hello.tar }",
      ].join("\n"),
    });
    const dir = path.join(cwd, "conf");
    const r = await loadSpec({ cwd, configPath: "conf/image.config.yaml", env: {} });
    expect(r.configDir).toBe(dir);
    expect(r.config.roots).toEqual(["/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x", path.join(dir, "result")]);
    expect(r.config.store).toEqual({ dir: "/gnu/store", root: path.join(cwd, "chroot") });
    expect(r.config.closure).toEqual({ from: "guix-graph", file: path.join(dir, "graph.txt") });
    expect(r.config.output.path).toBe(path.join(dir, "out/hello.tar"));
    expect(r.config.paths).toEqual([{ path: "/etc/motd", type: "file", mode: "644", source: "./motd" }]);
    expect(resolveFrom(r.configDir, "./motd")).toBe(path.join(dir, "motd"));
    expect(resolveFrom(r.configDir, "/abs//x/")).toBe("/abs/x");
  });

  test("an explicit absolute config path works from any cwd", async () => {
    const dir = tmpConfigDir({ "my.yml": MINIMAL_YAML });
    const r = await loadSpec({ cwd: "/", configPath: path.join(dir, "my.yml"), env: {} });
    expect(r.config.profile).toBe(path.join(dir, "profile"));
  });
});

describe("loadSpec's argument", () => {
  test("a string (a path) is refused, not ignored for a search of the current directory", async () => {
    await expect(loadSpec("image.config.yaml" as never)).rejects.toThrow('loadSpec takes an options object, e.g. loadSpec({ configPath: "image.config.yaml" }), not string');
  });
});

describe("config formats", () => {
  test("image.config.json, with a $schema key for editors", async () => {
    const cwd = tmpConfigDir({ "image.config.json": JSON.stringify({ $schema: "./schemas/image-spec.schema.json", ...MINIMAL, layers: { max: 5 } }) });
    const r = await loadSpec({ cwd, env: {} });
    expect(r.path).toBe(path.join(cwd, "image.config.json"));
    expect(r.config.layers).toEqual({ max: 5, strategy: "sharing" });
  });

  test("package.json#layerpack", async () => {
    const cwd = tmpConfigDir({ "package.json": JSON.stringify({ name: "app", layerpack: { ...MINIMAL, cmd: ["-c", "x"] } }) });
    const r = await loadSpec({ cwd, env: {} });
    expect(r.path).toBe(path.join(cwd, "package.json"));
    expect(r.config.cmd).toEqual(["-c", "x"]);
  });

  test("a config found beside others says which it read and which it did not; a named one says nothing", async () => {
    const cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML, "image.config.json": "{}\n", ".layerpackrc": "name: x\n" });
    const found = await loadSpec({ cwd, env: {} });
    expect(found.path).toBe(path.join(cwd, "image.config.yaml"));
    expect(found.warnings).toEqual(["using image.config.yaml, the first config found; image.config.json, .layerpackrc are not read (remove them, or give the config to use)"]);
    expect((await loadSpec({ cwd, env: {}, configPath: "image.config.yaml" })).warnings).toEqual([]);
    expect((await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": MINIMAL_YAML }), env: {} })).warnings).toEqual([]);
  });

  test("a package.json without the layerpack key is not a config", async () => {
    const cwd = tmpConfigDir({ "package.json": '{ "name": "app" }' });
    expect((await loadError({ cwd })).message).toContain("no config found");
    const err = await loadError({ cwd, configPath: "package.json" });
    expect(err.message).toBe('package.json: has no "layerpack" key holding the config');
  });

  test.each([".layerpackrc.yaml", ".layerpackrc.yml", ".layerpackrc", "image.config.yml"])("%s (YAML)", async (name) => {
    const cwd = tmpConfigDir({ [name]: `${MINIMAL_YAML}user: "1000:1000"\n` });
    const r = await loadSpec({ cwd, env: {} });
    expect([path.basename(r.path), r.config.user]).toEqual([name, "1000:1000"]);
  });

  test(".layerpackrc.json", async () => {
    const cwd = tmpConfigDir({ ".layerpackrc.json": JSON.stringify(MINIMAL) });
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("hello");
  });
});

/** A valid config of the kind each search place holds, named so the test can tell which one was read. */
function configFor(place: string, index: number): string {
  const spec = { ...MINIMAL, labels: { place: String(index) } };
  if (/\.c[jt]s$/.test(place)) return `module.exports = ${JSON.stringify(spec)};\n`;
  if (/\.(m?ts|m?js)$/.test(place)) return `export default ${JSON.stringify(spec)};\n`;
  if (place === "package.json") return JSON.stringify({ name: "app", layerpack: spec });
  return JSON.stringify(spec); // JSON is YAML too
}

describe("search", () => {
  test("the search order is the documented one", () => {
    expect(SEARCH_PLACES).toEqual([
      "image.config.ts", "image.config.mts", "image.config.cts", "image.config.js", "image.config.mjs", "image.config.cjs",
      "image.config.yaml", "image.config.yml", "image.config.json",
      ".layerpackrc", ".layerpackrc.json", ".layerpackrc.yaml", ".layerpackrc.yml", "package.json",
    ]);
  });

  test.each(SEARCH_PLACES.map((p, i) => [p, i] as const))("%s wins over every later place", async (place, index) => {
    const files: Record<string, string> = {};
    for (const [i, p] of SEARCH_PLACES.entries()) if (i >= index) files[p] = configFor(p, i);
    const cwd = tmpConfigDir(files);
    const r = await loadSpec({ cwd, env: {} });
    expect(path.basename(r.path)).toBe(place);
    expect(r.config.labels).toEqual({ place: String(index) });
  });

  test("the search does not walk up past cwd", async () => {
    const parent = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML, "sub/.keep": "" });
    const err = await loadError({ cwd: path.join(parent, "sub") });
    expect(err.message).toContain(`no config found in ${path.join(parent, "sub")}`);
  });
});

describe("created and SOURCE_DATE_EPOCH", () => {
  const load = async (env: Record<string, string | undefined>, extra = "") =>
    (await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": MINIMAL_YAML + extra }), env })).config.created;

  test("default without SOURCE_DATE_EPOCH (and when it is empty)", async () => {
    expect(await load({})).toBe("1970-01-01T00:00:01Z");
    expect(await load({ SOURCE_DATE_EPOCH: "" })).toBe("1970-01-01T00:00:01Z");
  });

  test("SOURCE_DATE_EPOCH as RFC 3339", async () => {
    expect(await load({ SOURCE_DATE_EPOCH: "1700000000" })).toBe("2023-11-14T22:13:20Z");
    expect(await load({ SOURCE_DATE_EPOCH: "0" })).toBe("1970-01-01T00:00:00Z");
  });

  test("an explicit created wins over SOURCE_DATE_EPOCH", async () => {
    expect(await load({ SOURCE_DATE_EPOCH: "1700000000" }, 'created: "2020-01-02T03:04:05Z"\n')).toBe("2020-01-02T03:04:05Z");
  });

  test("options.env defaults to process.env", async () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = "86400";
    try {
      const cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML });
      expect((await loadSpec({ cwd })).config.created).toBe("1970-01-02T00:00:00Z");
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  test.each(["yesterday", "1.5", "-1", "1e9", " 12", "99999999999999", "8589934592"])("SOURCE_DATE_EPOCH=%j is refused", async (value) => {
    const cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML });
    const err = await loadError({ cwd, env: { SOURCE_DATE_EPOCH: value } });
    expect(err.message).toBe(
      `image.config.yaml: created: SOURCE_DATE_EPOCH=${JSON.stringify(value)} is not a whole number of seconds since 1970, up to 8589934591 (2242, what tar headers hold) (unset it, or set \`created\` in the config)`,
    );
    expect(err.keyPath).toBe("created");
  });
});
