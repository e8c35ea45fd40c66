/**
 * OCI outputs end to end, checked by the tools that read them: oci-image-tool validates the layout, umoci unpacks
 * it, skopeo reads it, podman loads the oci-archive (zstd layers too) and runs it; `layerpack inspect` reads all.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { GREETING, type ExampleStore } from "../../examples/make-store.ts";
import { exampleConfig, removeExample, setUpExample } from "./example-dir.ts";
import { requireTool } from "../fixtures/tools.ts";
import { layerpack } from "./cli.ts";
import { podman, run, skopeoInspect } from "./run-tools.ts";

let dir: string;
let ex: ExampleStore;

function writeConfig(name: string, output: string, extra = ""): string {
  return exampleConfig(dir, name, `symlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"]\nprofile: ./profile\nentrypoint: bin/hello\n${extra}\noutput: ${output}`);
}

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8"));

beforeAll(() => ({ dir, ex } = setUpExample("layerpack-oci-")));
afterAll(() => removeExample(dir));

describe("OCI image layout", () => {
  const hasTools = requireTool("oci-image-tool") && requireTool("umoci") && requireTool("skopeo");
  const layout = () => path.join(dir, "hello-oci");

  it("writes a layout whose index names every tag and whose blobs hash to their names", () => {
    const cfg = writeConfig("hello", "{ format: oci-layout, path: ./hello-oci }", "tags: [v1, latest]\ncompression: gzip");
    const r = layerpack(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(path.join(layout(), "oci-layout"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = readJson(path.join(layout(), "index.json"));
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations)).toEqual(
      ["test", "v1", "latest"].map((t) => ({
        "org.opencontainers.image.ref.name": `hello:${t}`,
        "io.containerd.image.name": `docker.io/library/hello:${t}`,
        "org.opencontainers.image.created": "1970-01-01T00:00:01Z",
        "org.opencontainers.image.title": "hello",
        "org.opencontainers.image.version": "test",
        // The build's cache record, kept in the layout so it can be a cache source.
        "dev.layerpack.cache.record": expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      })),
    );
    const blobs = path.join(layout(), "blobs/sha256");
    for (const name of fs.readdirSync(blobs)) {
      expect(run("sha256sum", [path.join(blobs, name)]).split(" ")[0]).toBe(name);
    }
    const manifest = readJson(path.join(blobs, index.manifests[0].digest.slice(7)));
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(new Set(manifest.layers.map((l: { mediaType: string }) => l.mediaType))).toEqual(new Set(["application/vnd.oci.image.layer.v1.tar+gzip"]));
    // The second build finds the layout already holds the image.
    expect(layerpack(["build", cfg]).stderr).toMatch(/output up to date/);
  });

  it.runIf(hasTools)("is valid for oci-image-tool, unpacked by umoci and read by skopeo", () => {
    run("oci-image-tool", ["validate", "--type", "image", layout()]);
    const bundle = path.join(dir, "bundle");
    run("umoci", ["unpack", "--rootless", "--image", `${layout()}:hello:v1`, bundle]);
    expect(fs.readFileSync(path.join(bundle, "rootfs", ex.hello.slice(1), "bin/hello"), "utf8")).toContain(GREETING);
    const info = skopeoInspect(`oci:${layout()}:hello:latest`) as { Layers: string[]; Digest: string };
    const index = readJson(path.join(layout(), "index.json"));
    const manifest = readJson(path.join(layout(), "blobs/sha256", index.manifests[0].digest.slice(7)));
    expect(info.Digest).toBe(index.manifests[0].digest);
    expect(info.Layers).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
  });

  it("adds another image to an existing layout and replaces an image of the same name", () => {
    const other = writeConfig("other", "{ format: oci-layout, path: ./hello-oci }", "compression: none");
    expect(layerpack(["build", other]).status).toBe(0);
    const names = () => readJson(path.join(layout(), "index.json")).manifests.map((m: { annotations: Record<string, string> }) => m.annotations["org.opencontainers.image.ref.name"]);
    expect(names()).toEqual(["hello:test", "hello:v1", "hello:latest", "other:test"]);
    const changed = writeConfig("hello", "{ format: oci-layout, path: ./hello-oci }", "compression: none\nenv: { X: y }");
    expect(layerpack(["build", changed]).status).toBe(0);
    // hello:test now names the new image; the tags the new config no longer has keep the old one.
    expect(names()).toEqual(["hello:v1", "hello:latest", "other:test", "hello:test"]);
    const r = layerpack(["inspect", layout()]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/holds 3 images; choose one by its ref name, as oci:DIR:REF or oci-archive:FILE:REF \(inspect: --ref NAME\): /);
    // --ref on what has no images to pick from is refused, not ignored; a config module is no plan or image for diff.
    const archive = writeConfig("refless", "{ format: docker-archive, path: ./refless.tar }");
    expect(layerpack(["build", archive]).status).toBe(0);
    const wrong = layerpack(["inspect", path.join(dir, "refless.tar"), "--ref", "x"]);
    expect([wrong.status, wrong.stderr.split("\n")[0]]).toEqual([2, `layerpack inspect: --ref x: ${path.join(dir, "refless.tar")} is a docker archive; --ref picks one image of an OCI layout or archive`]);
    fs.writeFileSync(path.join(dir, "some.config.ts"), "export default {};\n");
    const diffed = layerpack(["diff", path.join(dir, "some.config.ts"), path.join(dir, "refless.tar")]);
    expect([diffed.status, diffed.stderr.split("\n")[0]]).toEqual([1, `layerpack: cannot read ${path.join(dir, "some.config.ts")}: it is a config module, not a plan file or an image; write its plan with layerpack plan ${path.join(dir, "some.config.ts")} --write FILE, or build its image`]);
    const shown = layerpack(["inspect", layout(), "--ref", "hello:test", "--json"]);
    expect(JSON.parse(shown.stdout).config.config.Env).toEqual(["X=y"]);
  });

  it("refuses an existing output that is not an OCI layout, and leaves it alone", () => {
    const target = path.join(dir, "not-a-layout");
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "keep.txt"), "mine");
    const cfg = writeConfig("refused", "{ format: oci-layout, path: ./not-a-layout }");
    const r = layerpack(["build", cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`output.path ${target} is a directory that holds no OCI layout (no oci-layout file)`);
    expect(fs.readdirSync(target)).toEqual(["keep.txt"]);
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-") || n.includes("nocache"))).toEqual([]);
  });

  it("builds the same layout without a cache, leaving no temporary cache behind", () => {
    const a = writeConfig("nc", "{ format: oci-layout, path: ./nc-a }", "compression: zstd");
    const b = path.join(dir, "nc-b.yaml");
    fs.writeFileSync(b, fs.readFileSync(a, "utf8").replace("./nc-a", "./nc-b"));
    expect(layerpack(["build", a]).status).toBe(0);
    const r = layerpack(["build", b, "--no-cache"]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, "nc-b/index.json"))).toEqual(fs.readFileSync(path.join(dir, "nc-a/index.json")));
    expect(fs.readdirSync(dir).filter((n) => n.includes("nocache"))).toEqual([]);
  });
});

describe("OCI archive", () => {
  const hasTools = requireTool("podman") && requireTool("runc") && requireTool("skopeo");

  it.runIf(hasTools)("with zstd layers is loaded and run by podman", () => {
    const cfg = writeConfig("zhello", "{ format: oci-archive, path: ./zhello.tar }", "compression: zstd");
    const r = layerpack(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    const out = path.join(dir, "zhello.tar");
    const info = skopeoInspect(`oci-archive:${out}`, true) as { layers: { mediaType: string }[] };
    expect(info.layers.every((l) => l.mediaType === "application/vnd.oci.image.layer.v1.tar+zstd")).toBe(true);
    const pm = podman(path.join(dir, "podman"));
    try {
      expect(pm.load(out)).toContain("hello");
      const loaded = /Loaded image: (\S+)/.exec(pm.load(out))![1]!;
      expect(loaded).toMatch(/zhello:test$/);
      expect(pm.run(loaded).trim()).toBe(GREETING);
    } finally {
      pm.cleanup();
    }
  });

  it("is reproducible and read back by inspect with the store items of each layer", () => {
    const cfg = writeConfig("arch", "{ format: oci-archive, path: ./arch.tar }", "compression: gzip");
    expect(layerpack(["build", cfg]).status).toBe(0);
    const out = path.join(dir, "arch.tar");
    const first = fs.readFileSync(out);
    fs.rmSync(out);
    expect(layerpack(["build", cfg, "--no-cache"]).status).toBe(0);
    expect(fs.readFileSync(out).equals(first)).toBe(true);
    const shown = JSON.parse(layerpack(["inspect", out, "--json"]).stdout);
    expect(shown.kind).toBe("oci-archive");
    expect(shown.names).toEqual(["arch:test"]);
    expect(shown.layers).toHaveLength(5);
    expect(shown.layers.map((l: { comment: string }) => l.comment)).toEqual(["store: glibc", "store: dash", "store: hello", "store: profile", "customisation: 4 entries"]);
    const text = layerpack(["inspect", out]).stdout;
    expect(text).toContain(`manifest     ${shown.manifestDigest}`);
    expect(text).toContain("store: hello");
  });
});

describe("an output left alone only when a build would write the very same bytes", () => {
  const sha = (f: string) => run("sha256sum", [f]).split(" ")[0]!;
  const build = (cfg: string, ...args: string[]) => {
    const r = layerpack(["build", cfg, ...args]);
    expect(r.status, r.stderr).toBe(0);
    return r.stderr;
  };
  const index = (layout: string) => fs.readFileSync(path.join(layout, "index.json"), "utf8");

  it("an OCI archive whose SBOMs or annotations change is written again, as a fresh build would write it", () => {
    const out = path.join(dir, "stale.tar");
    const variant = (extra: string) => writeConfig("stale", "{ format: oci-archive, path: ./stale.tar }", extra);
    build(variant(""));
    const plain = sha(out);
    for (const extra of ["sbom: spdx", "annotations: { org.opencontainers.image.description: changed }", ""]) {
      const cfg = variant(extra);
      expect(build(cfg)).not.toMatch(/output up to date/);
      const kept = sha(out);
      build(cfg, "-o", path.join(dir, "stale-fresh.tar"), "--no-cache");
      expect(kept, extra).toBe(sha(path.join(dir, "stale-fresh.tar")));
    }
    expect(sha(out)).toBe(plain);
    expect(build(variant(""))).toMatch(/output up to date/);
  });

  it("an OCI layout drops this image's SBOMs and cache record when the config no longer asks for them", () => {
    const layout = path.join(dir, "trim-oci");
    const variant = (extra: string) => writeConfig("trim", "{ format: oci-layout, path: ./trim-oci }", extra);
    for (const [from, to] of [
      ["sbom: [spdx, cyclonedx]", "sbom: spdx"],
      ["sbom: spdx", ""],
      ["", "cache: { publish: false }"],
    ] as const) {
      fs.rmSync(layout, { recursive: true, force: true });
      build(variant(from));
      build(variant(to));
      build(variant(to), "-o", path.join(dir, "trim-fresh-oci"), "--no-cache");
      expect(index(layout), `${from} -> ${to}`).toBe(index(path.join(dir, "trim-fresh-oci")));
      fs.rmSync(path.join(dir, "trim-fresh-oci"), { recursive: true, force: true });
    }
    expect(build(variant("cache: { publish: false }"))).toMatch(/output up to date/);
  });
});
