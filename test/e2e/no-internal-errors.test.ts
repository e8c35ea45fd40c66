/**
 * Every user-caused failure is a clear message: each case below is a bad input or a fault a user can cause, run
 * through the real command line; none may print "internal error" or a stack trace, and each exits 1 or 2.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";

let dir: string;
const base = "name: e\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n";

beforeAll(() => {
  ({ dir } = setUpExample("layerpack-nointernal-"));
  const w = (name: string, body: string | Buffer) => fs.writeFileSync(path.join(dir, name), body);
  w("ok.yaml", `${base}output: { path: ./ok.tar }\n`);
  w("syntax.yaml", "name: [e\n");
  w("unknown-key.yaml", `${base}colour: blue\noutput: { path: ./x.tar }\n`);
  w("no-profile.yaml", "name: e\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./missing\noutput: { path: ./x.tar }\n");
  w("no-outdir.yaml", `${base}output: { path: ./nowhere/x.tar }\n`);
  w("outdir-is-file.yaml", `${base}output: { path: ./ok.yaml/x.tar }\n`);
  w("dir-output.yaml", `${base}output: { path: ./store }\n`);
  w("bad-source.yaml", `${base}paths: [{ path: /etc/x, type: file, source: ./missing }]\noutput: { path: ./x.tar }\n`);
  w("dir-source.yaml", `${base}paths: [{ path: /etc/x, type: file, source: ./store }]\noutput: { path: ./x.tar }\n`);
  w("bad-root.yaml", `${base}rootSystem: ./missing\nlayers: { max: 10 }\noutput: { path: ./x.tar }\n`);
  w("bad-previous.yaml", `${base}layers: { previous: ./garbage.plan.yaml }\noutput: { path: ./x.tar }\n`);
  w("garbage.plan.yaml", "layers: 12\n");
  w("bad-graph.yaml", `${base.replace("from: scan", "from: guix-graph, file: ./garbage.bin")}output: { path: ./x.tar }\n`);
  w("garbage.bin", Buffer.from([0, 1, 2, 3, 0xff, 0xfe]));
  w("latin1.yaml", Buffer.concat([Buffer.from("name: caf"), Buffer.from([0xe9]), Buffer.from("\n")]));
  w("throws.mjs", 'throw new TypeError("config bug");\n');
  w("exits.mjs", "process.exit(3);\n");
  w("bad-ts.ts", "export default {{;\n");
  w("registry.yaml", `${base}output: { format: registry, ref: "not a ref" }\n`);
  w("not-an-image.tar", "not a tar at all");
  fs.mkdirSync(path.join(dir, "empty-layout"));
  fs.mkdirSync(path.join(dir, "ro-layout"));
  w("layout.yaml", `${base}output: { format: oci-layout, path: ./ro-layout/sub }\n`);
  execFileSync("chmod", ["0555", path.join(dir, "ro-layout")]);
});
afterAll(() => removeExample(dir));

const CASES: [string, string[]][] = [
  ["unknown command", ["frobnicate"]],
  ["unknown option", ["build", "--frob"]],
  ["too many arguments", ["plan", "a.yaml", "b.yaml"]],
  ["no config here", ["build", "--cache-dir", "./c"]],
  ["config missing", ["build", "missing.yaml"]],
  ["config is a directory", ["build", "store"]],
  ["unsupported config type", ["build", "garbage.bin"]],
  ["YAML syntax error", ["plan", "syntax.yaml"]],
  ["unknown key", ["plan", "unknown-key.yaml"]],
  ["non-UTF-8 config", ["plan", "latin1.yaml"]],
  ["TS syntax error", ["plan", "bad-ts.ts"]],
  ["config module throws", ["plan", "throws.mjs"]],
  ["config module exits", ["plan", "exits.mjs"]],
  ["profile missing", ["plan", "no-profile.yaml"]],
  ["garbage references graph", ["plan", "bad-graph.yaml"]],
  ["garbage previous plan", ["plan", "bad-previous.yaml"]],
  ["output directory missing", ["build", "no-outdir.yaml"]],
  ["output directory is a file", ["build", "outdir-is-file.yaml"]],
  ["output is a directory", ["build", "dir-output.yaml"]],
  ["output is the config", ["build", "ok.yaml", "-o", "ok.yaml"]],
  ["output is /dev/null", ["build", "ok.yaml", "-o", "/dev/null"]],
  ["paths source missing", ["build", "bad-source.yaml"]],
  ["paths source a directory", ["build", "dir-source.yaml"]],
  ["rootSystem missing", ["build", "bad-root.yaml"]],
  ["bad registry ref", ["build", "registry.yaml"]],
  ["bad --jobs", ["build", "ok.yaml", "-j", "0"]],
  ["watch with a bad --jobs", ["watch", "ok.yaml", "-j", "abc"]],
  ["push without --to", ["push", "ok.yaml"]],
  ["push to a bad reference", ["push", "ok.yaml", "--to", "user:secret@/x"]],
  ["check without a plan file", ["check", "ok.yaml"]],
  ["diff of missing files", ["diff", "a.plan.yaml", "b.plan.yaml"]],
  ["diff of garbage", ["diff", "garbage.bin", "not-an-image.tar"]],
  ["inspect of a missing path", ["inspect", "missing.tar"]],
  ["inspect of a non-image file", ["inspect", "not-an-image.tar"]],
  ["inspect of an empty directory", ["inspect", "empty-layout"]],
  ["cache with a bad action", ["cache", "frob"]],
  ["cache prune with a bad age", ["cache", "prune", "--older-than", "soon", "--cache-dir", "./c"]],
  ["cache prune with a bad size", ["cache", "prune", "--max-size", "huge", "--cache-dir", "./c"]],
  ["plan --family with one config", ["plan", "--family", "ok.yaml"]],
];

describe("no internal errors", () => {
  it.each(CASES)("%s", (_, args) => {
    const r = layerpack(args, { cwd: dir });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.trim()).not.toBe("");
    expect([1, 2]).toContain(r.status);
  });

  // Root writes anywhere: there, a read-only tmpfs stands in for a read-only file system (when mounting is allowed).
  const readOnlyDir = (): { dir: string; done: () => void } | undefined => {
    if (process.getuid?.() !== 0) return { dir: path.join(dir, "ro-layout"), done: () => {} };
    const ro = fs.mkdtempSync("/tmp/lp-ro-");
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", ro], { stdio: "ignore" });
    } catch {
      fs.rmdirSync(ro);
      return undefined;
    }
    return { dir: ro, done: () => (execFileSync("umount", [ro]), fs.rmdirSync(ro)) };
  };

  for (const format of ["oci-layout", "oci-archive", "docker-archive"]) {
    it(`a ${format} output on a file system that cannot be written`, (ctx) => {
      const ro = readOnlyDir();
      if (!ro) return ctx.skip();
      try {
        const target = path.join(ro.dir, format === "oci-layout" ? "layout" : "image.tar");
        const cfg = path.join(dir, `ro-${format}.yaml`);
        fs.writeFileSync(cfg, `${base}output: { format: ${format}, path: ${target} }\n`);
        for (const extra of [["--cache-dir", "./c"], ["--no-cache"]]) {
          const r = layerpack(["build", cfg, ...extra], { cwd: dir });
          expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
          expect(r.stderr).toMatch(/layerpack: /);
          expect(r.status).toBe(1);
        }
      } finally {
        ro.done();
      }
    });
  }
});
