/**
 * Base images (`base:`): a busybox base made by umoci from Debian's busybox-static, with the example store on top,
 * runs under podman using both; its layers are reused byte for byte; the config merges; the plan records the base
 * so `check` fails when it moves; a layerpack image as the base of another shares its layers and items.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";
import { layerpack } from "./cli.ts";
import { podman, run } from "./run-tools.ts";

let dir: string;
let ex: ExampleStore;
const lp = (args: string[]) => layerpack(args, { cwd: dir });
const hasTools = requireTool("umoci") && requireTool("podman") && fs.existsSync("/bin/busybox");

/** An OCI layout `busybox:1` with one layer: /bin/busybox and /bin/sh, PATH and WorkingDir set. */
function makeBusybox(layout: string, label = "one"): void {
  if (!fs.existsSync(layout)) {
    run("umoci", ["init", "--layout", layout]);
    run("umoci", ["new", "--image", `${layout}:1`]);
  }
  const bundle = fs.mkdtempSync(path.join(dir, "bundle-"));
  fs.rmSync(bundle, { recursive: true });
  run("umoci", ["unpack", "--image", `${layout}:1`, bundle]);
  fs.mkdirSync(path.join(bundle, "rootfs", "bin"), { recursive: true });
  fs.copyFileSync("/bin/busybox", path.join(bundle, "rootfs", "bin", "busybox"));
  fs.chmodSync(path.join(bundle, "rootfs", "bin", "busybox"), 0o755);
  fs.rmSync(path.join(bundle, "rootfs", "bin", "sh"), { force: true });
  fs.symlinkSync("busybox", path.join(bundle, "rootfs", "bin", "sh"));
  run("umoci", ["repack", "--image", `${layout}:1`, bundle]);
  run("umoci", ["config", "--image", `${layout}:1`, "--config.env", "PATH=/bin:/usr/bin", "--config.env", "GREETING=base", "--config.workingdir", "/srv", "--config.label", `made=${label}`, "--config.cmd", "sh"]);
  fs.rmSync(bundle, { recursive: true, force: true });
}

function layoutManifest(layout: string): { config: { digest: string }; layers: { digest: string }[] } {
  const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
  const m = index.manifests.find((d: { annotations?: Record<string, string> }) => d.annotations?.["org.opencontainers.image.ref.name"] === "1");
  return JSON.parse(fs.readFileSync(path.join(layout, "blobs", "sha256", m.digest.slice(7)), "utf8"));
}

function writeConfig(name: string, extra: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `name: ${name}\ntag: t\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\n${extra}\noutput: { path: ./${name}.tar }\n`);
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-base-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  if (process.env.KEEP) return;
  spawnSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.runIf(hasTools)("base images", () => {
  it("a busybox base from umoci under the example store: layers reused, config merged, runs under podman", () => {
    makeBusybox(path.join(dir, "busybox"));
    writeConfig("app", `base: oci:./busybox:1\nroots: ["${ex.hello}"]\nsymlinks: ["/lib64=${ex.glibc}/lib", "/lib=${ex.glibc}/lib"]\nenv: { GREETING: app }\ncmd: ["/bin/sh", "-c", "echo $GREETING in $(pwd); ${ex.hello}/bin/hello"]\nlayers: { max: 4 }`);
    const built = lp(["build", "app.yaml", "-q"]);
    expect(built.status, built.stderr).toBe(0);
    const base = layoutManifest(path.join(dir, "busybox"));
    const image = JSON.parse(lp(["inspect", "docker-archive:app.tar", "--json"]).stdout);
    expect(image.layers.length).toBeLessThanOrEqual(4);
    expect(image.layers[0].digest).toBe(base.layers[0]!.digest); // byte for byte
    const cfg = image.config.config;
    expect(cfg.Env).toEqual(["PATH=/bin:/usr/bin", "GREETING=app"]);
    expect(cfg.WorkingDir).toBe("/srv");
    expect(cfg.Labels).toEqual({ made: "one" });
    expect(image.config.history.length).toBeGreaterThan(image.layers.length - 1);
    expect(image.config.rootfs.diff_ids).toHaveLength(image.layers.length);

    const pm = podman(path.join(dir, "podman"));
    try {
      pm.load(path.join(dir, "app.tar"));
      expect(pm.run("app:t")).toBe("app in /srv\nHello from layerpack!\n");
    } finally {
      pm.cleanup();
    }
    // The same inputs give the same bytes.
    const first = fs.readFileSync(path.join(dir, "app.tar"));
    expect(lp(["build", "app.yaml", "-q", "--no-cache"]).status).toBe(0);
    expect(fs.readFileSync(path.join(dir, "app.tar")).equals(first)).toBe(true);
  });

  it("the plan records the base by its image ID; check fails when the base moves", () => {
    expect(lp(["plan", "app.yaml", "--write", "image.plan.yaml"]).status).toBe(0);
    const plan = fs.readFileSync(path.join(dir, "image.plan.yaml"), "utf8");
    const base = layoutManifest(path.join(dir, "busybox"));
    expect(plan).toContain(`image: oci:./busybox:1`);
    expect(plan).toContain(`id: ${base.config.digest}`);
    expect(lp(["check", "app.yaml"]).status).toBe(0);
    makeBusybox(path.join(dir, "busybox"), "two");
    const check = lp(["check", "app.yaml"]);
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/fingerprint changed/);
    expect(check.stdout).toMatch(/the base image changed: oci:\.\/busybox:1 \(sha256:[0-9a-f]{12}\.\.\., 1 layers\) -> oci:\.\/busybox:1 \(sha256:[0-9a-f]{12}\.\.\., 2 layers\); 1 of its layers new to a host that has OLD/);
  });

  it("an OCI layout on the base: skopeo reads it, the base's blobs are in it, byte for byte", () => {
    const cfg = fs.readFileSync(path.join(dir, "app.yaml"), "utf8").replace("output: { path: ./app.tar }", "output: { format: oci-layout, path: ./app-oci }");
    fs.writeFileSync(path.join(dir, "app-oci.yaml"), cfg);
    const r = lp(["build", "app-oci.yaml", "-q"]);
    expect(r.status, r.stderr).toBe(0);
    const raw = JSON.parse(run("skopeo", ["inspect", "--raw", `oci:${path.join(dir, "app-oci")}`]));
    const base = layoutManifest(path.join(dir, "busybox"));
    expect(raw.layers[0].digest).toBe(base.layers[0]!.digest);
    const blob = (root: string, d: string) => fs.readFileSync(path.join(root, "blobs", "sha256", d.slice(7)));
    expect(blob(path.join(dir, "app-oci"), raw.layers[0].digest).equals(blob(path.join(dir, "busybox"), base.layers[0]!.digest))).toBe(true);
    expect(raw.layers[0].mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
  });

  it("a build from a plan whose base has moved is refused, naming both image IDs", async () => {
    const { loadResolvePlan } = await import("../../src/pipeline.ts");
    const { buildImage } = await import("../../src/image/build.ts");
    const loaded = await loadResolvePlan({ cwd: dir, configPath: "app.yaml", env: {} });
    const stale = { ...loaded.plan, base: { ...loaded.plan.base!, id: `sha256:${"0".repeat(64)}` } };
    await expect(buildImage({ spec: loaded.spec, closure: loaded.closure, plan: stale, configDir: dir })).rejects.toThrow(
      new RegExp(`^base oci:\\./busybox:1 is now ${loaded.plan.base!.id}, not sha256:0{64} as the plan says`),
    );
  });

  it("layers.max counts the base's layers; too small a max is refused with the number needed", () => {
    writeConfig("tight", `base: oci:./busybox:1\nroots: ["${ex.hello}"]\nlayers: { max: 2 }`);
    const r = lp(["plan", "tight.yaml"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/layers\.max: 2 leaves no room on the base image oci:\.\/busybox:1, which has \d+ layers; raise it to at least \d+/);
  });

  it("a missing base, and a base of zstd layers under a docker-archive output, are refused at base's line:column by plan too", () => {
    writeConfig("nobase", `base: ./nosuchfile.tar\nroots: ["${ex.hello}"]`);
    expect(lp(["plan", "nobase.yaml"])).toMatchObject({ status: 1, stderr: expect.stringMatching(/^layerpack: nobase\.yaml:5:7: base: \S*nosuchfile\.tar: cannot read image \S+nosuchfile\.tar: no such file or directory\n$/) });
    // A zstd OCI layout made by layerpack, as a base of a docker archive.
    fs.writeFileSync(path.join(dir, "zlower.yaml"), `name: zlower\ntag: t\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nroots: ["${ex.shell}"]\ncompression: zstd\noutput: { format: oci-layout, path: ./zlower }\n`);
    expect(lp(["build", "zlower.yaml", "-q"]).status).toBe(0);
    writeConfig("zupper", `base: oci:./zlower:zlower:t\nroots: ["${ex.hello}"]`);
    for (const cmd of ["plan", "build"]) {
      expect(lp([cmd, "zupper.yaml"])).toMatchObject({
        status: 1,
        stderr: "layerpack: zupper.yaml:5:7: base: oci:./zlower:zlower:t has zstd layers, which a docker archive cannot carry (docker and containerd mislabel them); write an OCI output (output.format: oci-layout, oci-archive or registry)\n",
      });
    }
    expect(fs.existsSync(path.join(dir, "zupper.tar"))).toBe(false);
  });

  it("a layerpack image as the base of another: its layers shared, its store items not packed again", () => {
    writeConfig("lower", `roots: ["${ex.shell}"]\nlayers: { max: 4 }`);
    expect(lp(["build", "lower.yaml", "-q"]).status).toBe(0);
    writeConfig("upper", `base: docker-archive:./lower.tar\nroots: ["${ex.hello}"]\nlayers: { max: 8 }`);
    const plan = JSON.parse(lp(["plan", "upper.yaml", "--json"]).stdout);
    // hello depends on the shell and glibc, which the lower image holds.
    expect(plan.base.items).toEqual(expect.arrayContaining([ex.shell, ex.glibc]));
    const packed = plan.layers.flatMap((l: { kind: string; items?: { path: string }[] }) => (l.kind === "store" ? l.items!.map((i) => i.path) : []));
    expect(packed).toContain(ex.hello);
    expect(packed).not.toContain(ex.glibc);
    expect(lp(["build", "upper.yaml", "-q"]).status).toBe(0);
    const lower = JSON.parse(lp(["inspect", "lower.tar", "--json"]).stdout);
    const upper = JSON.parse(lp(["inspect", "upper.tar", "--json"]).stdout);
    expect(upper.layers.slice(0, lower.layers.length).map((l: { digest: string }) => l.digest)).toEqual(lower.layers.map((l: { digest: string }) => l.digest));
    const d = JSON.parse(lp(["diff", "lower.tar", "upper.tar", "--format", "json"]).stdout);
    const had = new Set(lower.layers.map((l: { diffId: string }) => l.diffId));
    expect(d.pull.layers).toBe(new Set(upper.layers.filter((l: { diffId: string }) => !had.has(l.diffId)).map((l: { diffId: string }) => l.diffId)).size);
    expect(d.pull.layers).toBeGreaterThan(0);
  });
});
