/**
 * The example image end to end, checked with the tools a user has: skopeo reads it, podman loads and runs it, GNU tar
 * extracts every layer to exactly the store items, and two builds are byte-identical.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { GREETING, type ExampleStore } from "../../examples/make-store.ts";
import { exampleConfig, removeExample, setUpExample } from "./example-dir.ts";
import { requireTool } from "../fixtures/tools.ts";
import { layerpack } from "./cli.ts";
import { extractLayers, podman, skopeoInspect } from "./run-tools.ts";

const sha256File = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

let dir: string;
let ex: ExampleStore;

function writeConfig(name: string, extra: string, symlinks = '["/bin=bin", "/lib=lib", "/lib64=lib"]'): string {
  return exampleConfig(dir, name, `symlinks: ${symlinks}\n${extra}\noutput: { path: ./${name}.tar }`);
}

beforeAll(() => ({ dir, ex } = setUpExample("layerpack-e2e-")));
afterAll(() => removeExample(dir));

describe("the example image", () => {
  const hasTools = requireTool("skopeo") && requireTool("podman") && requireTool("runc");

  it("builds reproducibly, and GNU tar extracts each store item byte for byte", () => {
    const cfg = writeConfig("hello", "profile: ./profile\nentrypoint: bin/hello\ncompression: gzip");
    const first = layerpack(["build", cfg]);
    expect(first.stderr).toMatch(/built hello:test: 5 layers built, 0 reused/);
    expect(first.status).toBe(0);
    const out = path.join(dir, "hello.tar");
    expect(first.stdout.trim()).toBe(out);
    const digest = sha256File(out);
    fs.renameSync(out, path.join(dir, "hello-1.tar"));
    expect(layerpack(["build", cfg, "-q"]).status).toBe(0);
    expect(sha256File(out)).toBe(digest);

    const { manifest, dirs } = extractLayers(out, path.join(dir, "extract"));
    expect(manifest.RepoTags).toEqual(["hello:test"]);
    expect(dirs).toHaveLength(5);
    const seen = new Set<string>();
    for (const layerDir of dirs.slice(0, -1)) {
      for (const name of fs.readdirSync(path.join(layerDir, "gnu/store"))) {
        seen.add(`/gnu/store/${name}`);
        execFileSync("diff", ["-r", "--no-dereference", path.join(ex.storeRoot, "gnu/store", name), path.join(layerDir, "gnu/store", name)]);
      }
    }
    expect([...seen].sort()).toEqual(ex.items);
    const custom = dirs.at(-1)!;
    expect(fs.readlinkSync(path.join(custom, "bin"))).toBe(`${ex.profile}/bin`);
    expect(fs.statSync(path.join(custom, "tmp")).mode & 0o7777).toBe(0o1777);
  });

  it.runIf(hasTools)("is read by skopeo as our manifest says, and podman runs it", () => {
    const out = path.join(dir, "hello.tar");
    const info = skopeoInspect(`docker-archive:${out}`) as { Layers: string[]; Architecture: string; Os: string; Created: string; Env: string[] };
    const { manifest } = extractLayers(out, path.join(dir, "extract-2"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "extract-2/archive", manifest.Config), "utf8"));
    expect(info.Layers).toEqual(config.rootfs.diff_ids);
    expect(info.Architecture).toBe("amd64");
    expect(info.Os).toBe("linux");
    expect(info.Created).toBe("1970-01-01T00:00:01Z");
    expect(config.config.Entrypoint).toEqual([`${ex.profile}/bin/hello`]);

    const pm = podman(path.join(dir, "podman"));
    try {
      expect(pm.load(out)).toContain("hello:test");
      expect(pm.run("localhost/hello:test").trim()).toBe(GREETING);
    } finally {
      pm.cleanup();
    }
  });

  it.runIf(hasTools)("runs as a single layer with layers.max 1, uncompressed", () => {
    const cfg = writeConfig("single", "profile: ./profile\nentrypoint: bin/hello\nlayers: { max: 1 }\ncompression: none");
    const r = layerpack(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    const out = path.join(dir, "single.tar");
    expect((skopeoInspect(`docker-archive:${out}`) as { Layers: string[] }).Layers).toHaveLength(1);
    const pm = podman(path.join(dir, "podman-single"));
    try {
      pm.load(out);
      expect(pm.run("localhost/single:test").trim()).toBe(GREETING);
    } finally {
      pm.cleanup();
    }
  });

  it("shares the layers of common store items between two images", () => {
    const a = writeConfig("img-a", `roots: ["${ex.hello}"]\nentrypoint: ${ex.hello}/bin/hello`, `["/lib64=${ex.glibc}/lib"]`);
    const b = writeConfig("img-b", `roots: ["${ex.shell}"]\nentrypoint: ${ex.shell}/bin/sh\ncmd: ["-c", "echo b"]`, `["/lib64=${ex.glibc}/lib"]`);
    for (const cfg of [a, b]) {
      const r = layerpack(["build", cfg]);
      expect(r.status, r.stderr).toBe(0);
    }
    const layersOf = (name: string) => extractLayers(path.join(dir, `${name}.tar`), path.join(dir, `x-${name}`)).manifest.Layers;
    const la = layersOf("img-a");
    const lb = layersOf("img-b");
    // glibc and the shell are in both closures and each has its own layer in both images; the customisation layers
    // (same /lib64 link, same /tmp) are identical too. Only img-a's hello layer is its own.
    const shared = la.filter((l) => lb.includes(l));
    expect(shared).toEqual([la[0], la[1], la[3]]);
    expect(la).toHaveLength(4);
    expect(lb).toHaveLength(3);
  });

  it.runIf(hasTools)("the embedded default: `layerpack build` at the top of the checkout builds image.config.ts, which runs", () => {
    const repo = path.resolve(import.meta.dirname, "../..");
    const out = path.join(dir, "default.tar");
    const r = layerpack(["build", "-o", out], { cwd: repo });
    expect(r.status, r.stderr).toBe(0);
    const pm = podman(path.join(dir, "podman-default"));
    try {
      expect(pm.load(out)).toContain("layerpack-example:latest");
      expect(pm.run("localhost/layerpack-example:latest").trim()).toBe(GREETING);
    } finally {
      pm.cleanup();
    }
  });

  it("`plan` prints every layer with its items, as YAML and JSON", () => {
    const cfg = writeConfig("planned", "profile: ./profile\nentrypoint: bin/hello");
    const yaml = layerpack(["plan", cfg]);
    expect(yaml.status).toBe(0);
    for (const item of ex.items) expect(yaml.stdout).toContain(`path: ${item}`);
    const json = JSON.parse(layerpack(["plan", cfg, "--json"]).stdout);
    expect(json.layers.map((l: { kind: string }) => l.kind)).toEqual(["store", "store", "store", "store", "customisation"]);
    expect(json.totals.items).toBe(ex.items.length);
  });
});
