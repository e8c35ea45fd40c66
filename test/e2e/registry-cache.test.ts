/**
 * The registry as the shared layer cache (cache records, --cache-from): a runner with an empty cache pushes the
 * image another runner pushed without reading a store item, and an update by reading only what changed; sibling
 * repositories mount; file outputs fetch the blobs (digest and diff_id checked); a blob the registry lost is built;
 * a source that cannot be reached is a warning; two runners pushing at once both leave valid images.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { buildImage, LayerCache, loadSpec, planLayers, resolveClosure } from "../../src/index.ts";
import { CACHE_ARTIFACT_TYPE } from "../../src/cache/record.ts";
import { requireTool } from "../fixtures/tools.ts";
import { freePort, startRegistry, type TestRegistry } from "../fixtures/registry.ts";

let dir: string;
let ex: ExampleStore;
// Async: the registry's proxy runs in this process.
const skopeo = async (args: string[]) => (await promisify(execFile)("skopeo", args, { encoding: "utf8" })).stdout;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-regcache-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One runner's build: its own cache directory, the config written fresh. */
async function runner(cacheName: string, config: { name: string; extra?: string; output: string; cacheFrom?: string[] | false; storeRoot?: string; database?: false }) {
  const file = path.join(dir, `${config.name}-${cacheName}.yaml`);
  fs.writeFileSync(
    file,
    `name: ${config.name}\ntag: "1"\nstore: { dir: /gnu/store, root: ${config.storeRoot ?? "./store"} }\nclosure: { from: scan }\nroots: ["${ex.hello}"]\narchitecture: amd64\n` +
      `${config.database === false ? "" : "database: true\n"}${config.extra ?? ""}\noutput: ${config.output}\n`,
  );
  const loaded = await loadSpec({ cwd: dir, configPath: file });
  const closure = await resolveClosure(loaded.config, { configDir: loaded.configDir });
  const plan = planLayers(loaded.config, closure);
  const cache = new LayerCache(path.join(dir, `cache-${cacheName}`));
  return buildImage({ spec: loaded.config, closure, plan, configDir: loaded.configDir, cache, ...(config.cacheFrom !== undefined ? { cacheFrom: config.cacheFrom } : {}) });
}

describe.runIf(requireTool("skopeo") && requireTool("docker-registry"))("the registry as a shared layer cache", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg?.stop());
  const registryOut = (repo: string) => `{ format: registry, ref: "${reg.host}/${repo}" }`;

  it("a push publishes a cache record; a runner with an empty cache pushes the same image reading nothing", async () => {
    const a = await runner("a", { name: "app", output: registryOut("team/app") });
    expect(a.stats.rebuilt).toBe(a.layers.length);
    expect(a.stats.remote).toBe(0);
    // The record is an artifact whose subject is the image (the referrers tag: this registry has no referrers API).
    const referrers = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/team/app:sha256-${a.push!.digest.slice(7)}`]));
    expect(referrers.manifests.map((m: { artifactType: string }) => m.artifactType)).toEqual([CACHE_ARTIFACT_TYPE]);

    const b = await runner("b", { name: "app", output: registryOut("team/app") });
    expect(b.imageId).toBe(a.imageId);
    expect(b.push!.digest).toBe(a.push!.digest);
    expect(b.stats).toMatchObject({ rebuilt: 0, remote: a.layers.length, tarBytes: 0 });
    expect(b.push!.uploaded).toBe(0);
    expect(b.warnings ?? []).toEqual([]);
  });

  it("a push after a build to a file reuses its layers, hashing the items for the record instead of building again", async () => {
    const built = await runner("d", { name: "plain", output: "{ path: ./plain.tar }", database: false });
    expect(built.stats.rebuilt).toBe(built.layers.length);
    const pushed = await runner("d", { name: "plain", output: registryOut("team/plain"), database: false });
    expect(pushed.stats).toMatchObject({ rebuilt: 0, tarBytes: 0 });
    expect(pushed.imageId).toBe(built.imageId);
    // The record it pushed holds the same NAR facts as one from a push that built every layer itself.
    const fresh = await runner("fresh", { name: "plain", output: registryOut("team/plain-fresh"), database: false, cacheFrom: false });
    expect(fresh.stats.rebuilt).toBe(fresh.layers.length);
    const records = async (repo: string, digest: string) =>
      JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/${repo}:sha256-${digest.slice(7)}`])).manifests.map((m: { digest: string }) => m.digest);
    expect(await records("team/plain", pushed.push!.digest)).toEqual(await records("team/plain-fresh", fresh.push!.digest));
  });

  it("a runner with its own copy of the store (other inodes and times) reuses the layers too", async () => {
    execFileSync("cp", ["-a", path.join(dir, "store"), path.join(dir, "store-copy")]);
    const other = await runner("copy", { name: "app", output: registryOut("team/app"), storeRoot: "./store-copy" });
    expect(other.stats).toMatchObject({ rebuilt: 0, tarBytes: 0 });
    expect(other.stats.remote).toBe(other.layers.length);
  });

  it("an update rebuilds only what changed; the store database comes from the record's NAR facts", async () => {
    const c = await runner("c", { name: "app", output: registryOut("team/app"), extra: `paths: [{ path: /etc/motd, type: file, content: "new" }]` });
    // Only the customisation layer (which holds the database and the new file) is built.
    expect(c.stats.rebuilt).toBe(1);
    expect(c.stats.remote).toBe(c.layers.length - 1);
    const info = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${reg.host}/team/app:1`]));
    expect(info.Digest).toBe(c.push!.digest);
  });

  it("another repository mounts the source's blobs; a file output fetches them, checked, into its cache", async () => {
    const from = `docker://${reg.host}/team/app:1`;
    const before = reg.requests.length;
    const d = await runner("d", { name: "app", output: registryOut("other/app"), cacheFrom: [from] });
    expect(d.stats.rebuilt).toBe(1);
    expect(d.push!.mounted).toBe(d.layers.length - 1);
    expect(reg.requests.slice(before).filter((r) => r.method === "PUT" && r.path.includes("/other/app/blobs/")).length).toBeLessThanOrEqual(4);

    const e = await runner("e", { name: "app", output: `{ path: ./e.tar }`, cacheFrom: [from] });
    expect(e.stats.remote).toBeGreaterThan(0);
    const r = await skopeo(["inspect", `docker-archive:${path.join(dir, "e.tar")}`]);
    expect(JSON.parse(r).Layers).toEqual(e.layers.map((l) => l.diffId));
  });

  it("a source's layer another repository would mount is checked against this host's store first (same paths and sizes, other bytes)", async () => {
    const other = path.join(dir, "store-tampered");
    execFileSync("cp", ["-a", path.join(dir, "store"), other]);
    const script = path.join(other, ex.hello.slice(1), "bin/hello");
    execFileSync("chmod", ["-R", "u+w", other]);
    const text = fs.readFileSync(script, "utf8");
    fs.writeFileSync(script, text.replace(/Hello/, "Jello")); // the same size, so the same portable key
    const mine = await runner("t", { name: "app", output: registryOut("mine/app"), storeRoot: "./store-tampered", cacheFrom: [`docker://${reg.host}/team/app:1`] });
    expect(mine.warnings?.some((w) => /but this host's inputs give/.test(w))).toBe(true);
    const fresh = await runner("t2", { name: "app", output: `{ path: ./tampered-fresh.tar }`, storeRoot: "./store-tampered", cacheFrom: false });
    expect(mine.layers.map((l) => l.diffId)).toEqual(fresh.layers.map((l) => l.diffId));
  });

  it("a blob the registry lost is built again; an unreachable source is a warning", async () => {
    const first = await runner("f", { name: "lost", output: registryOut("team/lost") });
    const victim = first.layers[0]!.digest;
    const del = await fetch(`http://${reg.host}/v2/team/lost/blobs/${victim}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    const nobody = `127.0.0.1:${await freePort()}`;
    const again = await runner("g", { name: "lost", output: registryOut("team/lost"), cacheFrom: [`docker://${nobody}/none/such:1`] });
    expect(again.push!.digest).toBe(first.push!.digest);
    expect(again.stats.rebuilt).toBe(1);
    expect(again.warnings?.join("\n")).toContain(`cache source docker://${nobody}/none/such:1: cannot reach registry`);
    await skopeo(["copy", "--src-tls-verify=false", `docker://${reg.host}/team/lost:1`, `oci:${path.join(dir, "lost-copy")}:x`]);
  });

  it("an OCI layout keeps its build's record and is a cache source the same way", async () => {
    const layout = path.join(dir, "lay");
    const first = await runner("l1", { name: "cached", output: `{ format: oci-layout, path: ./lay }` });
    expect(first.stats.rebuilt).toBe(first.layers.length);
    // Still one image in the layout: tools that take oci:DIR without a ref keep working.
    expect(JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")).manifests).toHaveLength(1);
    expect(JSON.parse(await skopeo(["inspect", `oci:${layout}`])).Digest).toMatch(/^sha256:/);
    const second = await runner("l2", { name: "cached", output: `{ path: ./from-layout.tar }`, cacheFrom: [`oci:${layout}:cached:1`], extra: `paths: [{ path: /etc/l, type: file, content: "l" }]` });
    expect(second.stats.rebuilt).toBe(1);
    expect(second.stats.remote).toBe(second.layers.length - 1);
  });

  it("a source whose record pairs a layer's key with other bytes is refused: its layers must unpack to this host's own tar", async () => {
    const layout = path.join(dir, "poison");
    const first = await runner("p1", { name: "poison", output: `{ format: oci-layout, path: ./poison }`, database: false });
    // Two store layers' records swap their blobs: each blob is a genuine layer of the image with its real diff_id,
    // which is all a check of the blob against its record can see.
    const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
    const recordDigest: string = index.manifests[0].annotations["dev.layerpack.cache.record"];
    const record = JSON.parse(fs.readFileSync(path.join(layout, "blobs/sha256", recordDigest.slice(7)), "utf8"));
    const [a, b] = record.layers as Record<string, unknown>[];
    for (const field of ["digest", "diffId", "size", "tarSize", "mediaType"]) [a![field], b![field]] = [b![field], a![field]];
    delete a!.nar;
    delete b!.nar;
    const forged = Buffer.from(`${JSON.stringify(record)}\n`);
    const forgedDigest = `sha256:${createHash("sha256").update(forged).digest("hex")}`;
    fs.writeFileSync(path.join(layout, "blobs/sha256", forgedDigest.slice(7)), forged);
    index.manifests[0].annotations["dev.layerpack.cache.record"] = forgedDigest;
    fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify(index));

    const victim = await runner("p2", { name: "poison", output: `{ path: ./poison-victim.tar }`, database: false, cacheFrom: [`oci:${layout}:poison:1`] });
    expect(victim.layers.map((l) => l.diffId)).toEqual(first.layers.map((l) => l.diffId));
    expect(victim.stats.rebuilt).toBe(2);
    expect(victim.warnings?.filter((w) => /but this host's inputs give/.test(w))).toHaveLength(2);
    // And nothing forged stayed in the cache: a build without the source gives the same image.
    const again = await runner("p2", { name: "poison", output: `{ path: ./poison-again.tar }`, database: false, cacheFrom: false });
    expect(again.layers.map((l) => l.diffId)).toEqual(first.layers.map((l) => l.diffId));
  });

  it("Ctrl-C while the cache record is pushed stops the build, not a warning after which it succeeds", async () => {
    const file = path.join(dir, "abort-record.yaml");
    fs.writeFileSync(file, `name: abort\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nroots: ["${ex.hello}"]\narchitecture: amd64\noutput: { format: registry, ref: "${reg.host}/t/abort" }\n`);
    const loaded = await loadSpec({ cwd: dir, configPath: file });
    const closure = await resolveClosure(loaded.config, { configDir: loaded.configDir });
    const stop = new AbortController();
    let manifestPut = false;
    // The first request after the image's manifest is the record's: Ctrl-C then.
    reg.failNext((req) => {
      if (req.method === "PUT" && req.url!.includes("/t/abort/manifests/1")) manifestPut = true;
      else if (manifestPut && !stop.signal.aborted) stop.abort();
      return false;
    }, 1000, 500, "", "");
    const outcome = await buildImage({ spec: loaded.config, closure, plan: planLayers(loaded.config, closure), configDir: loaded.configDir, cache: new LayerCache(path.join(dir, "cache-abort")), signal: stop.signal }).then(
      (r) => `succeeded, warning ${JSON.stringify(r.warnings)}`,
      (e: Error) => e.name,
    );
    reg.failNext(() => false, 0, 500, "", "");
    expect(stop.signal.aborted).toBe(true);
    expect(outcome).toBe("AbortError");
  });

  it("two runners pushing sibling images to one repository at once both succeed", async () => {
    const [x, y] = await Promise.all([
      runner("x", { name: "sib", output: registryOut("team/sib:x"), extra: `paths: [{ path: /etc/x, type: file, content: "x" }]` }),
      runner("y", { name: "sib", output: registryOut("team/sib:y"), extra: `paths: [{ path: /etc/y, type: file, content: "y" }]` }),
    ]);
    for (const [tag, built] of [["x", x], ["y", y]] as const) {
      const info = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${reg.host}/team/sib:${tag}`]));
      expect(info.Digest).toBe(built.push!.digest);
    }
    // Each now serves as a cache source for the other's layers.
    const z = await runner("z", { name: "sib", output: registryOut("team/sib:x"), extra: `paths: [{ path: /etc/x, type: file, content: "x" }]` });
    expect(z.stats.rebuilt).toBe(0);
  });
});
