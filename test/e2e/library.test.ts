/**
 * The public API as a program uses it, importing only "layerpack" (the built package, by its own name): load a
 * config, resolve, plan, build once, then write that one build to two more outputs and push it, without building
 * again. skopeo checks that all of them are the same image.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildImage, LayerCache, loadSpec, openImage, parseImageName, planLayers, resolveClosure, writeImage } from "layerpack";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";
import { startRegistry, type TestRegistry } from "../fixtures/registry.ts";

let dir: string;
let ex: ExampleStore;
// Async: the registry's proxy runs in this process, so a synchronous child would block it (deadlock).
const skopeo = async (args: string[]) => JSON.parse((await promisify(execFile)("skopeo", args, { encoding: "utf8" })).stdout) as Record<string, unknown>;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-library-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.runIf(requireTool("skopeo") && requireTool("docker-registry"))("the library, from its package name", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg?.stop());

  it("builds once, writes that build to an OCI layout and an OCI archive, and pushes it: one image everywhere", async () => {
    fs.writeFileSync(
      path.join(dir, "image.config.yaml"),
      `name: lib\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nroots: ["${ex.hello}"]\narchitecture: amd64\noutput: { path: ./lib.tar }\n`,
    );
    const loaded = await loadSpec({ cwd: dir });
    const closure = await resolveClosure(loaded.config, { configDir: loaded.configDir });
    const plan = planLayers(loaded.config, closure);
    const cache = new LayerCache(path.join(dir, "cache"));
    const built = await buildImage({ spec: loaded.config, closure, plan, configDir: loaded.configDir, cache });
    expect(built.stats.rebuilt).toBe(plan.layers.length);

    const layout = await writeImage(built.image, "oci:./lib-oci", { cwd: dir });
    const archive = await writeImage(built.image, "oci-archive:./lib-oci.tar", { cwd: dir });
    const pushed = await writeImage(built.image, `docker://${reg.host}/lib/hello:1`);
    expect(layout.written).toEqual([path.join(dir, "lib-oci")]);
    expect(archive.written).toEqual([path.join(dir, "lib-oci.tar")]);

    const want = built.layers.map((l) => l.digest);
    // skopeo lists a docker archive's layers by diff_id, an OCI image's by blob digest.
    expect((await skopeo(["inspect", `docker-archive:${path.join(dir, "lib.tar")}`])).Layers).toEqual(built.layers.map((l) => l.diffId));
    for (const ref of [`oci:${path.join(dir, "lib-oci")}:lib:1`, `oci-archive:${path.join(dir, "lib-oci.tar")}:lib:1`]) {
      expect((await skopeo(["inspect", ref])).Layers, ref).toEqual(want);
      expect((await skopeo(["inspect", "--raw", ref])).config, ref).toMatchObject({ digest: built.imageId });
    }
    const raw = (await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/lib/hello:1`])) as { layers: { digest: string }[]; config: { digest: string } };
    expect(raw.layers.map((l) => l.digest)).toEqual(want);
    expect(raw.config.digest).toBe(built.imageId);
    expect(pushed.push!.digest).toMatch(/^sha256:/);
    // Read back through the same API: the pushed image is the built one.
    const back = await openImage(parseImageName(`docker://${reg.host}/lib/hello:1`));
    expect(back.configDigest).toBe(built.imageId);
  });
});
