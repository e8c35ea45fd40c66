/**
 * `output` is optional: builds go to ./<name>.tar beside the config, and plan, check and push never need it.
 * `build -o -` streams the docker archive to standard output (the same bytes as the file), for `| podman load`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { GREETING } from "../../examples/make-store.ts";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";
import { findTool, requireTool } from "../fixtures/tools.ts";
import { podman } from "./run-tools.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
let dir: string;
let cfg: string;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(() => {
  ({ dir } = setUpExample("layerpack-outdefault-"));
  fs.mkdirSync(path.join(dir, "sub"));
  cfg = path.join(dir, "image.yaml");
  fs.writeFileSync(cfg, 'name: team/hello\ntag: t\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\nsymlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"]\nentrypoint: bin/hello\n');
});
afterAll(() => removeExample(dir));

describe("output is optional", () => {
  it("build writes ./<name>.tar beside the config (slashes as dashes), from any directory", () => {
    const r = layerpack(["build", cfg, "-q"], { cwd: path.join(dir, "sub") });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(path.join(dir, "team-hello.tar"));
    expect(fs.statSync(path.join(dir, "team-hello.tar")).size).toBeGreaterThan(1000);
  });

  it("plan and check need no output", () => {
    expect(layerpack(["plan", cfg, "--write", path.join(dir, "image.plan.yaml")], { cwd: dir }).status).toBe(0);
    const r = layerpack(["check", cfg, "--plan", path.join(dir, "image.plan.yaml")], { cwd: dir });
    expect(r.stderr).not.toMatch(/output/);
  });
});

describe("build -o -", () => {
  it("streams the same archive to standard output, with nothing else there", () => {
    const file = fs.readFileSync(path.join(dir, "team-hello.tar"));
    for (const extra of [[], ["--json"], ["-q"], ["--no-cache"]]) {
      const r = spawnSync(process.execPath, [BIN, "build", cfg, "-o", "-", ...extra], { cwd: dir, maxBuffer: 64 << 20, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
      expect(r.status, r.stderr.toString()).toBe(0);
      expect(sha(r.stdout)).toBe(sha(file));
      if (extra[0] === "--json") expect(r.stderr.toString()).toMatch(/"type":"build-done"/);
    }
    expect(fs.readdirSync(dir).filter((n) => n.includes("stdout") || n === "-")).toEqual([]);
  });

  it.runIf(findTool("podman") !== undefined || Boolean(process.env.CI))("pipes into podman load", () => {
    requireTool("podman");
    const p = podman(fs.mkdtempSync("/tmp/lpo-"));
    try {
      const r = spawnSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${BIN}" build "${cfg}" -o - | podman ${p.args.join(" ")} load`], {
        cwd: dir,
        encoding: "utf8",
        env: { ...process.env, ...p.env },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(p.run("localhost/team/hello:t")).toBe(`${GREETING}\n`);
    } finally {
      p.cleanup();
    }
  });

  it.each([
    ["a reader that stops early (| head)", "set -o pipefail; {build} | head -c 10 > /dev/null", "the reading end of standard output closed before the whole archive was written to it"],
    ["a full disk under standard output", "{build} > /dev/full", "writing the archive to standard output failed: ENOSPC: no space left on device, write"],
  ])("%s gets one line on stderr and exit 1, no stack trace, no temp file", (_what, shell, message) => {
    const tmp = fs.mkdtempSync(path.join(dir, "tmp-"));
    const r = spawnSync("bash", ["-c", shell.replace("{build}", `"${process.execPath}" "${BIN}" build "${cfg}" -o -`)], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, TMPDIR: tmp, LAYERPACK_CACHE_DIR: path.join(dir, "cache") },
    });
    expect(r.stderr.split("\n").filter((l) => !/^layer \d+\/\d+ /.test(l))).toEqual([`layerpack: -o -: ${message}`, ""]);
    expect(r.status).toBe(1);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith("layerpack"))).toEqual([]);
  });

  it.runIf(findTool("script") !== undefined)("is refused when standard output is a terminal", () => {
    const r = spawnSync("script", ["-qec", `"${process.execPath}" "${BIN}" build "${cfg}" -o -`, "/dev/null"], { cwd: dir, encoding: "utf8" });
    expect(r.stdout).toMatch(/standard output is a terminal; pipe it/);
    expect(r.status).not.toBe(0);
    // The same for output.path "-" written in the config, not given as -o.
    fs.writeFileSync(path.join(dir, "stdout.yaml"), `${fs.readFileSync(cfg, "utf8")}output: { path: "-" }\n`);
    const own = spawnSync("script", ["-qec", `"${process.execPath}" "${BIN}" build "${path.join(dir, "stdout.yaml")}"`, "/dev/null"], { cwd: dir, encoding: "latin1" });
    expect(own.stdout).toMatch(/standard output is a terminal; pipe it/);
    expect(own.stdout).not.toContain("ustar");
  });

  it("-o - of an OCI layout config, and any -o of a registry one, are refused before any work, leaving no temp file", () => {
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("layerpack-stdout"));
    const base = fs.readFileSync(cfg, "utf8");
    fs.writeFileSync(path.join(dir, "lay.yaml"), `${base}output: { format: oci-layout, path: ./lay }\n`);
    fs.writeFileSync(path.join(dir, "reg.yaml"), `${base}output: { format: registry, ref: "127.0.0.1:9/x/y:1" }\n`);
    const cases: [string, string, string][] = [
      ["lay.yaml", "-", "-o -: the config writes an OCI layout, a directory, which standard output cannot carry; set output.format: oci-archive (or docker-archive) to stream the image as one file"],
      ["reg.yaml", "-", "-o -: the config pushes to a registry (output.format: registry), which writes no file; to write one, set output.format to docker-archive, oci-archive or oci-layout"],
      ["reg.yaml", "./x.tar", "-o ./x.tar: the config pushes to a registry (output.format: registry), which writes no file; to write one, set output.format to docker-archive, oci-archive or oci-layout"],
      ["lay.yaml", "oci:out-oci", "-o oci:out-oci: -o takes a path, and oci: is how image names are written (skopeo, inspect, diff); for an OCI layout set output.format: oci-layout and give -o the path alone (./oci:out-oci for a file of that very name)"],
    ];
    for (const [config, output, message] of cases) {
      const r = spawnSync(process.execPath, [BIN, "build", path.join(dir, config), "-o", output], { cwd: dir, encoding: "utf8", env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
      expect([r.status, r.stdout, r.stderr]).toEqual([1, "", `layerpack: ${message}\n`]);
    }
    expect(fs.existsSync(path.join(dir, "lay"))).toBe(false);
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("layerpack-stdout"))).toEqual(before);
  });

  it("-o - of an OCI archive config streams the OCI archive", () => {
    fs.writeFileSync(path.join(dir, "ociarch.yaml"), `${fs.readFileSync(cfg, "utf8")}output: { format: oci-archive, path: ./o.tar }\n`);
    const r = spawnSync(process.execPath, [BIN, "build", path.join(dir, "ociarch.yaml"), "-o", "-", "-q"], { cwd: dir, maxBuffer: 64 << 20, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
    expect(r.status, r.stderr.toString()).toBe(0);
    const names = spawnSync("tar", ["-t"], { input: r.stdout, encoding: "utf8" }).stdout.split("\n");
    expect(names).toEqual(expect.arrayContaining(["oci-layout", "index.json"]));
    expect(fs.existsSync(path.join(dir, "o.tar"))).toBe(false);
  });

  it("-o - of an OCI archive with sbom: streams the SBOMs inside it; a docker archive's, files beside it, are refused", () => {
    const base = fs.readFileSync(cfg, "utf8");
    fs.writeFileSync(path.join(dir, "ociarch-sbom.yaml"), `${base}sbom: spdx\noutput: { format: oci-archive, path: ./os.tar }\n`);
    const r = spawnSync(process.execPath, [BIN, "build", path.join(dir, "ociarch-sbom.yaml"), "-o", "-", "-q"], { cwd: dir, maxBuffer: 64 << 20, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
    expect(r.status, r.stderr.toString()).toBe(0);
    const index = JSON.parse(spawnSync("tar", ["-xO", "index.json"], { input: r.stdout, encoding: "utf8" }).stdout) as { manifests: { artifactType?: string }[] };
    expect(index.manifests.map((m) => m.artifactType ?? "image")).toEqual(["image", "application/spdx+json"]);
    fs.writeFileSync(path.join(dir, "docker-sbom.yaml"), `${base}sbom: spdx\noutput: { format: docker-archive, path: ./ds.tar }\n`);
    const d = spawnSync(process.execPath, [BIN, "build", path.join(dir, "docker-sbom.yaml"), "-o", "-"], { cwd: dir, encoding: "utf8", env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
    expect([d.status, d.stdout]).toEqual([2, ""]);
    expect(d.stderr).toMatch(/^layerpack build: -o -: sbom: writes its files beside a docker archive/);
  });

  it("is refused for OCI layouts", () => {
    fs.writeFileSync(path.join(dir, "layout.yaml"), fs.readFileSync(cfg, "utf8") + "output: { format: oci-layout, path: \"-\" }\n");
    const r = layerpack(["plan", path.join(dir, "layout.yaml")], { cwd: dir });
    expect(r.stderr).toMatch(/output\.path: - \(standard output\) is only for the archive formats/);
    expect(r.status).toBe(1);
  });
});
