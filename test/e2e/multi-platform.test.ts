/**
 * `platforms:`: one image per platform, each from its own closure, joined in an OCI image index under the tags.
 * The plan file holds every platform's plan and `check` covers them all; the items the platforms share are the
 * same layers; skopeo reads the index from a registry and copies it with --all; podman runs the host's image.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GREETING, makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";
import { startRegistry, type TestRegistry } from "../fixtures/registry.ts";
import { PODMAN_EXIT_CODE_RACE, podman } from "./run-tools.ts";
import { runAsync } from "../fixtures/run-async.ts";

const BIN = path.resolve("bin/layerpack.js");
let dir: string;
let ex: ExampleStore;
const exec = (cmd: string, args: string[], env: Record<string, string> = {}) => runAsync(cmd, args, { cwd: dir, env: { LAYERPACK_CACHE_DIR: path.join(dir, "cache"), ...env } });
const lp = (args: string[]) => exec(process.execPath, [BIN, ...args]);
const hasTools = requireTool("skopeo") && requireTool("docker-registry") && requireTool("podman");

function config(name: string, output: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    `name: ${name}\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nentrypoint: ${ex.hello}/bin/hello\nsymlinks: ["/lib64=${ex.glibc}/lib", "/lib=${ex.glibc}/lib"]\n` +
      `platforms:\n  - { architecture: amd64, roots: ["${ex.hello}"] }\n  - { architecture: arm64, variant: v8, roots: ["${ex.profile}"] }\noutput: ${output}\n`,
  );
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-multi-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.runIf(hasTools)("multi-platform images", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg?.stop());

  it("plans every platform in one plan file, which check covers", async () => {
    const cfg = config("plan", "{ format: oci-layout, path: ./plan-oci }");
    const w = await lp(["plan", cfg, "--write", path.join(dir, "image.plan.yaml")]);
    expect(w.status, w.stderr).toBe(0);
    const plan = JSON.parse((await lp(["plan", cfg, "--json"])).stdout);
    expect(plan.platforms.map((p: { platform: unknown }) => p.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ]);
    const c = await lp(["check", cfg, "--plan", path.join(dir, "image.plan.yaml")]);
    expect(c.status, c.stdout + c.stderr).toBe(0);
    // report shows one platform's plan: the host's by default, or the one asked for.
    const arm = await lp(["report", cfg, "--format", "markdown", "--platform", "linux/arm64/v8"]);
    expect(arm.status, arm.stderr).toBe(0);
    expect(arm.stdout).toContain("profile");
    expect((await lp(["report", cfg, "--platform", "linux/s390x"])).stderr).toMatch(/the plan has linux\/amd64, linux\/arm64\/v8/);
    // One platform's closure changes: check fails, and diff shows each platform's plan against its own.
    fs.writeFileSync(cfg, fs.readFileSync(cfg, "utf8").replace(`roots: ["${ex.profile}"]`, `roots: ["${ex.shell}"]`));
    const moved = await lp(["check", cfg, "--plan", path.join(dir, "image.plan.yaml")]);
    expect(moved.status).toBe(1);
    expect((await lp(["plan", cfg, "--write", path.join(dir, "new.plan.yaml")])).status).toBe(0);
    const d = await lp(["diff", path.join(dir, "image.plan.yaml"), path.join(dir, "new.plan.yaml"), "--format", "json"]);
    const diffs = JSON.parse(d.stdout).platforms;
    expect(diffs.map((x: { platform: string }) => x.platform)).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(diffs[0].diff.pull.layers).toBe(0);
    expect(diffs[1].diff.removed.length).toBeGreaterThan(0);
  });

  it("pushes an index under the tag: skopeo reads both platforms, shared items share layers, copy --all works", async () => {
    const cfg = config("multi", `{ format: registry, ref: "${reg.host}/multi/app" }`);
    const r = await lp(["build", cfg, "-q"]);
    expect(r.status, r.stderr).toBe(0);
    const index = JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/multi/app:1`])).stdout);
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m: { platform: unknown }) => m.platform)).toEqual([
      { architecture: "amd64", os: "linux" },
      { architecture: "arm64", os: "linux", variant: "v8" },
    ]);
    const layersOf = async (digest: string) => JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/multi/app@${digest}`])).stdout).layers.map((l: { digest: string }) => l.digest);
    const [amd, arm] = [await layersOf(index.manifests[0].digest), await layersOf(index.manifests[1].digest)];
    // glibc, the shell and hello are in both closures: their layers are the same blobs.
    expect(amd.filter((d: string) => arm.includes(d)).length).toBeGreaterThanOrEqual(1);
    const copy = await exec("skopeo", ["copy", "--all", "--src-tls-verify=false", `docker://${reg.host}/multi/app:1`, `oci:${path.join(dir, "copied")}:x`]);
    expect(copy.status, copy.stderr).toBe(0);
  });

  it("writes the same index into an OCI archive, byte for byte the same on a rebuild", async () => {
    const cfg = config("arc", "{ format: oci-archive, path: ./arc.tar }");
    const r = await lp(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    // The digest shown is the index's, and called so.
    expect(r.stderr).toMatch(/; index [0-9a-f]{12} of 2 platform images\n$/);
    const file = path.join(dir, "arc.tar");
    const first = fs.readFileSync(file);
    const copy = await exec("skopeo", ["copy", "--all", `oci-archive:${file}:arc:1`, `oci:${path.join(dir, "arc-copied")}:x`]);
    expect(copy.status, copy.stderr).toBe(0);
    const copied = JSON.parse(fs.readFileSync(path.join(dir, "arc-copied", "index.json"), "utf8"));
    expect(copied.manifests[0].mediaType).toBe("application/vnd.oci.image.index.v1+json");
    fs.rmSync(path.join(dir, "cache"), { recursive: true, force: true });
    expect((await lp(["build", cfg])).status).toBe(0);
    expect(fs.readFileSync(file).equals(first)).toBe(true);
    // No temporary layout is left beside it.
    expect(fs.readdirSync(dir).filter((n) => n.startsWith(".layerpack"))).toEqual([]);
  });

  it("writes an index into an OCI layout; inspect --platform picks; podman runs the host's image", async () => {
    // podman names an image pulled from oci:PATH after the path, which must be lowercase.
    const lower = path.join(os.tmpdir(), `layerpack-multi-${process.pid}`);
    fs.rmSync(lower, { recursive: true, force: true });
    fs.mkdirSync(lower);
    const layout = path.join(lower, "lay-oci");
    const cfg = config("lay", `{ format: oci-layout, path: ${layout} }`);
    fs.appendFileSync(cfg, "sbom: spdx\n");
    const r = await lp(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    const top = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
    expect(top.manifests.filter((m: { mediaType: string }) => m.mediaType === "application/vnd.oci.image.index.v1+json")).toHaveLength(1);
    // Each platform's SBOM, its subject that platform's image.
    const platformImages = JSON.parse(fs.readFileSync(path.join(layout, "blobs/sha256", top.manifests.find((m: { mediaType: string }) => m.mediaType.endsWith("index.v1+json")).digest.slice(7)), "utf8")).manifests.map((m: { digest: string }) => m.digest);
    const sboms = top.manifests.filter((m: { artifactType?: string }) => m.artifactType === "application/spdx+json");
    expect(sboms.map((m: { annotations: Record<string, string> }) => m.annotations["dev.layerpack.subject"]).sort()).toEqual([...platformImages].sort());
    const arm = JSON.parse((await lp(["inspect", `oci:${layout}:lay:1`, "--platform", "linux/arm64/v8", "--json"])).stdout);
    expect(arm.platforms).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(arm.config).toMatchObject({ os: "linux", architecture: "arm64", variant: "v8" });
    const p = podman(path.join(dir, "podman"));
    try {
      const args = [...p.args, "run", "--rm", "--network", "none", "--platform", "linux/amd64", `oci:${layout}:lay:1`];
      let out = await exec("podman", args, p.env);
      for (let attempt = 1; attempt < 3 && out.status !== 0 && PODMAN_EXIT_CODE_RACE.test(out.stderr); attempt++) out = await exec("podman", args, p.env);
      expect(out.status, out.stderr.slice(-1500)).toBe(0);
      expect(out.stdout).toContain(GREETING);
    } finally {
      p.cleanup();
      fs.rmSync(lower, { recursive: true, force: true });
    }
  });
});

describe("platforms, without a registry", () => {
  it("a relative entrypoint resolves in each platform's own profile", async () => {
    const file = path.join(dir, "profiles.yaml");
    fs.writeFileSync(
      file,
      `name: profiles\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nentrypoint: bin/hello\n` +
        `platforms:\n  - { architecture: amd64, profile: ./profile }\n  - { architecture: arm64, variant: v8, profile: ./profile }\noutput: { format: oci-layout, path: ./profiles-oci }\n`,
    );
    const r = await lp(["build", file, "--quiet"]);
    expect(r.status, r.stderr).toBe(0);
    const blob = (digest: string) => JSON.parse(fs.readFileSync(path.join(dir, "profiles-oci/blobs/sha256", digest.slice(7)), "utf8"));
    const index = blob(JSON.parse(fs.readFileSync(path.join(dir, "profiles-oci/index.json"), "utf8")).manifests[0].digest);
    const entrypoints = (index.manifests as { digest: string }[]).map((m) => blob(blob(m.digest).config.digest).config.Entrypoint);
    expect(entrypoints).toEqual([[`${ex.profile}/bin/hello`], [`${ex.profile}/bin/hello`]]);
  });
  it("an OCI layout drops the platform images' SBOMs the config no longer asks for, as a fresh layout would not have them", async () => {
    const layout = path.join(dir, "trim-multi-oci");
    const cfg = config("trim", `{ format: oci-layout, path: ${layout} }`);
    const base = fs.readFileSync(cfg, "utf8");
    const sboms = () => (JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")).manifests as { artifactType?: string }[]).map((m) => m.artifactType).filter(Boolean).sort();
    fs.writeFileSync(cfg, `${base}sbom: [spdx, cyclonedx]\n`);
    expect((await lp(["build", cfg, "-q"])).status).toBe(0);
    expect(sboms()).toEqual(["application/spdx+json", "application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.cyclonedx+json"]);
    fs.writeFileSync(cfg, `${base}sbom: spdx\n`);
    expect((await lp(["build", cfg, "-q"])).status).toBe(0);
    expect(sboms()).toEqual(["application/spdx+json", "application/spdx+json"]);
  });

  it("inspect --platform on one image (not an index) refuses another platform, and shows its own", async () => {
    const file = path.join(dir, "single.yaml");
    fs.writeFileSync(file, `name: single\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nprofile: ./profile\narchitecture: amd64\noutput: { path: ./single.tar }\n`);
    expect((await lp(["build", file, "--quiet"])).status).toBe(0);
    const other = await lp(["inspect", "single.tar", "--platform", "linux/arm64"]);
    expect([other.status, other.stderr]).toEqual([1, "layerpack: single.tar is one image, for linux/amd64, not an index: it has no image for --platform linux/arm64\n"]);
    const own = await lp(["inspect", "single.tar", "--platform", "linux/amd64"]);
    expect(own.status).toBe(0);
    expect(own.stdout).toMatch(/platform {5}linux\/amd64/);
  });
});
