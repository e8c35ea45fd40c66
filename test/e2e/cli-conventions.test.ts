/**
 * The command line behaves as npm, vite and esbuild users expect: -v/--version anywhere, `help CMD` and `CMD --help`,
 * usage errors on stderr with exit 2 and a "did you mean", conflicting flags refused, --tag, JSON errors with --json.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";

const PKG = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../package.json"), "utf8")) as { version: string };
let dir: string;
let cfg: string;
beforeAll(() => {
  ({ dir } = setUpExample("layerpack-conventions-"));
  cfg = path.join(dir, "image.yaml");
  fs.writeFileSync(cfg, "name: conv\ntag: cfg\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n");
});
afterAll(() => removeExample(dir));

describe("CLI conventions", () => {
  it("what a TS config prints goes to stderr: stdout stays the JSON events, and the image of -o -", () => {
    const ts = path.join(dir, "loud.config.ts");
    fs.writeFileSync(ts, 'console.log("loading config");\nexport default { name: "loud", store: { dir: "/gnu/store", root: "./store" }, profile: "./profile", closure: { from: "scan" } };\n');
    const json = layerpack(["build", ts, "--json", "-o", path.join(dir, "loud.tar")], { cwd: dir });
    expect(json.status, json.stderr).toBe(0);
    for (const line of json.stdout.trimEnd().split("\n")) expect(() => JSON.parse(line), line).not.toThrow();
    expect(json.stderr).toContain("loading config\n");
    const piped = spawnSync(process.execPath, [path.resolve("bin/layerpack.js"), "build", ts, "-o", "-"], { cwd: dir, maxBuffer: 64 << 20, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
    expect(piped.status, String(piped.stderr)).toBe(0);
    expect(piped.stdout.subarray(257, 262).toString("latin1")).toBe("ustar");
  });

  it.each([["-v"], ["--version"], ["-V"], ["build", "-v"], ["plan", "--version", "x.yaml"]])("%s prints the version", (...args) => {
    const r = layerpack(args, { cwd: dir });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `layerpack ${PKG.version}\n`, ""]);
  });

  it("help CMD and CMD --help print that command's usage and options on stdout", () => {
    const a = layerpack(["help", "build"], { cwd: dir });
    const b = layerpack(["build", "--help"], { cwd: dir });
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toMatch(/^Usage: layerpack build /);
    for (const option of ["--output", "--quiet", "--json", "--cache-dir", "--no-cache", "--jobs", "--tag", "--config", "--help"]) expect(a.stdout).toContain(option);
    expect(layerpack(["help", "cache"], { cwd: dir }).stdout).not.toContain("--tag");
    // -c and -h line up with each command's own options.
    for (const cmd of ["build", "push", "watch", "plan", "report", "inspect"]) {
      const columns = new Set(layerpack(["help", cmd], { cwd: dir }).stdout.split("\n").flatMap((l) => /^ {2}(?:-\w, | {4})?--[\w-]+(?: [A-Z]+)? +(?=\S)/.exec(l)?.[0].length ?? []));
      expect(columns.size, `${cmd}: ${[...columns].join(", ")}`).toBe(1);
    }
  });

  it("usage errors go to stderr with exit 2, with a suggestion", () => {
    let r = layerpack(["buidl"], { cwd: dir });
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^layerpack: unknown command 'buidl' \(did you mean 'build'\?\)/);
    r = layerpack(["build", "--no-cach"], { cwd: dir });
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^layerpack build: unknown option '--no-cach' \(did you mean '--no-cache'\?\)\n\nUsage: layerpack build/);
    // The synopsis and where the options are, not the whole help burying the error.
    expect(r.stderr).toMatch(/\nRun 'layerpack build --help' for its options\.\n$/);
    expect(r.stderr).not.toContain("layers built at once");
    r = layerpack([], { cwd: dir });
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^Usage: layerpack <command>/);
    r = layerpack(["build", cfg, "-j", "0"], { cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--jobs must be a whole number of at least 1, not 0\n\nUsage: layerpack build/);
  });

  it.each([
    [["--no-cache", "--cache-dir", "x"], "--no-cache and --cache-dir cannot be used together"],
    [["-q", "--json"], "--quiet and --json cannot be used together"],
  ])("conflicting flags %j are refused", (flags, message) => {
    const r = layerpack(["build", cfg, ...flags], { cwd: dir });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it("--tag replaces the config's tags, repeatable; a bad tag is a usage error", () => {
    const r = layerpack(["build", cfg, "--tag", "1.2", "--tag", "latest", "--json"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const done = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; repoTag?: string }).find((e) => e.type === "build-done");
    expect(done?.repoTag).toBe("conv:1.2");
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "conv.tar")).toString("latin1").match(/\[\{"Config".*?\}\]/)?.[0] ?? "[]") as { RepoTags: string[] }[];
    if (manifest.length > 0) expect(manifest[0]!.RepoTags).toEqual(["conv:1.2", "conv:latest"]);
    const bad = layerpack(["build", cfg, "--tag", "no good"], { cwd: dir });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--tag "no good": not a valid tag/);
    const to = layerpack(["push", cfg, "--to", "Bad Ref"], { cwd: dir });
    expect(to.status).toBe(2);
    expect(to.stderr).toMatch(/^layerpack push: --to: malformed image reference 'Bad Ref'.*\n\nUsage: layerpack push/);
  });

  it("with --json, a failure is a JSON line on stdout with the file and position", () => {
    fs.writeFileSync(path.join(dir, "bad.yaml"), "name: conv\nprofile: ./profile\nlayers: { max: 500 }\n");
    const r = layerpack(["build", path.join(dir, "bad.yaml"), "--json"], { cwd: dir });
    expect(r.status).toBe(1);
    const event = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    expect(event).toMatchObject({ type: "error", file: path.join(dir, "bad.yaml"), keyPath: "layers.max", line: 3, column: 16 });
    expect(String(event.message)).toMatch(/layers\.max: must be at most 127/);
    expect(new Date(String(event.time)).toISOString()).toBe(event.time);
  });

  it("options are checked before the config is loaded, and with --json a usage error is a JSON line too", () => {
    // A config module that would announce it ran: a bad option must stop before it does.
    fs.writeFileSync(path.join(dir, "loud.mjs"), 'console.error("CONFIG RAN");\nexport default { name: "conv", profile: "./profile" };\n');
    for (const [args, message] of [
      [["build", "loud.mjs", "-j", "0"], "--jobs must be a whole number of at least 1, not 0"],
      [["push", "loud.mjs", "--to", "127.0.0.1:9/x", "--tag", "no good"], '--tag "no good": not a valid tag (letters, digits, _ . -, at most 128)'],
      [["build", "loud.mjs", "--cache-from", "x", "--no-cache-from"], "give --cache-from or --no-cache-from, not both"],
    ] as const) {
      const r = layerpack([...args, "--json"], { cwd: dir });
      expect([r.status, r.stderr.includes("CONFIG RAN")], args.join(" ")).toEqual([2, false]);
      expect(JSON.parse(r.stdout.trim())).toMatchObject({ type: "error", message });
    }
    for (const args of [["build", "--json", "--bogus"], ["build", "--json", "a", "b"], ["watch", "--bogus", "--json"]]) {
      const r = layerpack(args, { cwd: dir });
      expect(r.status, args.join(" ")).toBe(2);
      expect(JSON.parse(r.stdout.trim()), args.join(" ")).toMatchObject({ type: "error", message: expect.stringMatching(/unknown option '--bogus'|too many arguments: b/) });
    }
    // After --, --json is an argument, not the option.
    expect(layerpack(["build", "--bogus", "--", "--json"], { cwd: dir }).stdout).toBe("");
  });

  it("-c is offered and taken only by commands that read a config", () => {
    for (const cmd of ["inspect", "diff", "cache"]) {
      const help = layerpack(["help", cmd], { cwd: dir }).stdout;
      expect(help, cmd).not.toMatch(/--config|\[config\]/);
      const r = layerpack([cmd, "-c", cfg], { cwd: dir });
      expect([r.status, r.stderr], cmd).toEqual([2, expect.stringMatching(/unknown option '-c'|Unknown option '-c'/)]);
    }
    expect(layerpack(["help", "plan"], { cwd: dir }).stdout).toContain("-c, --config FILE");
  });

  it("cache with a --cache-dir that is missing or not a directory is an error; prune creates nothing", () => {
    const missing = path.join(dir, "no-cache-here");
    for (const action of ["info", "prune"]) {
      const r = layerpack(["cache", action, "--cache-dir", missing], { cwd: dir });
      expect([r.status, r.stderr.split("\n")[0]]).toEqual([2, `layerpack cache: --cache-dir ${missing}: no such directory`]);
    }
    expect(fs.existsSync(missing)).toBe(false);
    const r = layerpack(["cache", "info", "--cache-dir", cfg], { cwd: dir });
    expect([r.status, r.stderr.split("\n")[0]]).toEqual([2, `layerpack cache: --cache-dir ${cfg}: not a directory`]);
    expect(layerpack(["cache"], { cwd: dir }).stderr.split("\n")[0]).toBe("layerpack cache: give info or prune");
  });

  it("cache info --json gives ISO 8601 times", () => {
    layerpack(["build", cfg, "--cache-dir", path.join(dir, "c")], { cwd: dir });
    const info = JSON.parse(layerpack(["cache", "info", "--json", "--cache-dir", path.join(dir, "c")], { cwd: dir }).stdout) as { newestUse: string };
    expect(new Date(info.newestUse).toISOString()).toBe(info.newestUse);
  });
});
