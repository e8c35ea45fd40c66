/**
 * Reusing an existing OCI layout output: "up to date" must mean its blobs are intact, not just present at the
 * right size. Layout blobs are hard links into the layer cache, so a byte flipped in one damages both; the
 * rebuild must notice (even with the mtime put back), rebuild the layer and rewrite the blob.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { imageSpecSchema, type ImageSpec } from "../../src/config/schema.ts";
import { resolveClosure } from "../../src/store/closure.ts";
import { planLayers } from "../../src/plan/index.ts";
import { buildImage } from "../../src/image/build.ts";
import { LayerCache } from "../../src/cache/cache.ts";
import { makeStore, type FakeStore } from "../fixtures/store.ts";
import { findTool } from "../fixtures/tools.ts";

let dir: string;
let store: FakeStore;
let cache: LayerCache;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-layout-reuse-"));
  store = makeStore(
    path.join(dir, "root"),
    "/gnu/store",
    [
      { name: "libc", files: { "lib/libc.so": Buffer.alloc(200_000, 1) } },
      { name: "app", files: { "bin/app": { content: "#!{{libc}}/lib/libc.so\n", executable: true } }, refs: ["libc"] },
      { name: "profile", files: { "bin/app": { symlink: "{{app}}/bin/app" } }, refs: ["app"] },
    ],
    { profile: "profile" },
  );
  cache = new LayerCache(path.join(dir, "cache"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const layoutDir = () => path.join(dir, "layout");
const blob = (digest: string) => path.join(layoutDir(), "blobs", "sha256", digest.slice("sha256:".length));
const sha = (file: string) => `sha256:${createHash("sha256").update(fs.readFileSync(file)).digest("hex")}`;

async function build() {
  const spec: ImageSpec = imageSpecSchema.parse({
    name: "reuse",
    tag: "t",
    store: { dir: "/gnu/store", root: store.root },
    profile: store.profile,
    closure: { from: "scan" },
    entrypoint: "bin/app",
    compression: "gzip",
    output: { format: "oci-layout", path: layoutDir() },
  });
  const closure = await resolveClosure(spec, { configDir: dir });
  return buildImage({ spec, closure, plan: planLayers(spec, closure), configDir: dir, cache });
}

/** Flips one byte in the middle of `file`, in place: same inode, same size; the mtime is put back afterwards. */
function damage(file: string): void {
  const st = fs.statSync(file);
  fs.chmodSync(file, 0o644);
  const fd = fs.openSync(file, "r+");
  const at = Math.floor(st.size / 2);
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0xff;
  fs.writeSync(fd, byte, 0, 1, at);
  fs.closeSync(fd);
  fs.chmodSync(file, st.mode & 0o7777);
  fs.utimesSync(file, st.atime, st.mtime);
}

describe("OCI layout reuse", () => {
  it("leaves an intact layout alone, and rewrites a layer blob damaged in place", async () => {
    const first = await build();
    const layer = first.layers.reduce((a, b) => (b.size > a.size ? b : a));
    for (const l of first.layers) expect(sha(blob(l.digest))).toBe(l.digest);
    // The blob is the cache's own file: damaging one damages the other.
    expect(fs.statSync(blob(layer.digest)).ino).toBe(fs.statSync(cache.blobPath(layer.digest)).ino);
    expect((await build()).stats.upToDate).toBe(true);

    damage(blob(layer.digest));
    expect(fs.statSync(blob(layer.digest)).size).toBe(layer.size);
    expect(sha(blob(layer.digest))).not.toBe(layer.digest);
    const second = await build();
    expect(second.stats.upToDate).toBe(false);
    expect(second.stats.rebuilt).toBe(1);
    expect(sha(blob(layer.digest))).toBe(layer.digest);
    for (const l of second.layers) expect(sha(blob(l.digest))).toBe(l.digest);

    // Once rewritten, the layout is up to date again, with nothing rebuilt.
    const third = await build();
    expect(third.stats).toMatchObject({ upToDate: true, rebuilt: 0 });
  });

  it("rewrites a config blob damaged in place", async () => {
    const first = await build();
    const config = blob(first.imageId);
    damage(config);
    const second = await build();
    expect(second.stats.upToDate).toBe(false);
    expect(sha(config)).toBe(first.imageId);
  });

  it("hashes a layout it has no stamps for once, then trusts the stamps", async () => {
    const first = await build();
    // Kept in the cache beside the output's stamp, never in the layout itself.
    const stamps = path.join(cache.dir, "outputs", `${createHash("sha256").update(layoutDir()).digest("hex")}.blobs.json`);
    expect(fs.readdirSync(layoutDir()).sort()).toEqual(["blobs", "index.json", "oci-layout"]);
    const recorded = Object.keys(JSON.parse(fs.readFileSync(stamps, "utf8")).blobs).sort();
    expect(recorded).toEqual([...new Set(first.layers.map((l) => l.digest.slice(7)))].sort());
    fs.rmSync(stamps);
    expect((await build()).stats.upToDate).toBe(true);
    expect(fs.existsSync(stamps)).toBe(true);
    // A stamp that no longer matches (the blob was damaged) is not trusted.
    damage(blob(first.layers[0]!.digest));
    expect((await build()).stats.upToDate).toBe(false);
    expect(sha(blob(first.layers[0]!.digest))).toBe(first.layers[0]!.digest);
  });

  it.runIf(findTool("skopeo") !== undefined)("gives skopeo a layout whose digests verify after the repair", async () => {
    const first = await build();
    damage(blob(first.layers.at(-1)!.digest));
    await build();
    execFileSync("skopeo", ["copy", "--quiet", `oci:${layoutDir()}:reuse:t`, `dir:${path.join(dir, "copied")}`], { stdio: "pipe" });
  });
});
