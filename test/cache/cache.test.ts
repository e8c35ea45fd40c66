/**
 * The layer cache through the library API: hits read nothing and give the same bytes, damaged blobs are rebuilt,
 * builds running at once share one cache, and every way of building (cached, parallel, sequential, streaming)
 * gives an identical image.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { imageSpecSchema, type ImageSpec } from "../../src/config/schema.ts";
import { resolveClosure } from "../../src/store/closure.ts";
import { planLayers } from "../../src/plan/index.ts";
import { buildImage, type BuildEvent } from "../../src/image/build.ts";
import { defaultCacheDir, LayerCache } from "../../src/cache/cache.ts";
import { BuildError } from "../../src/errors.ts";
import { cacheInfo, pruneCache } from "../../src/cache/prune.ts";
import { makeStore, type FakeStore } from "../fixtures/store.ts";

let dir: string;
let store: FakeStore;
const sha = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-cache-"));
  store = makeStore(
    path.join(dir, "root"),
    "/gnu/store",
    [
      { name: "libc", files: { "lib/libc.so": Buffer.alloc(300_000, 1) } },
      { name: "big", files: { "share/data": Buffer.alloc(900_000, 2) }, refs: ["libc"] },
      { name: "app", files: { "bin/app": { content: "#!{{libc}}/lib/libc.so\n", executable: true } }, refs: ["big", "libc"] },
      { name: "profile", files: { "bin/app": { symlink: "{{app}}/bin/app" } }, refs: ["app"] },
    ],
    { profile: "profile" },
  );
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module script in a child Node, killed after 20 s. */
const runModule = (script: string) =>
  spawnSync(process.execPath, ["--input-type=module", "--no-warnings", "-e", script], { encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" });

async function build(opts: {
  out: string;
  cache?: LayerCache;
  concurrency?: number;
  compression?: "gzip" | "none";
  format?: string;
  paths?: unknown[];
  events?: BuildEvent[];
  onEvent?: (e: BuildEvent) => void;
}) {
  const spec: ImageSpec = imageSpecSchema.parse({
    name: "cached",
    tag: "t",
    store: { dir: "/gnu/store", root: store.root },
    profile: store.profile,
    closure: { from: "scan" },
    symlinks: ["/bin=bin"],
    entrypoint: "bin/app",
    compression: opts.compression ?? "gzip",
    output: { format: opts.format ?? "docker-archive", path: path.join(dir, opts.out) },
    ...(opts.paths ? { paths: opts.paths } : {}),
  });
  const scanMemo = opts.cache?.scanMemo();
  const closure = await resolveClosure(spec, { configDir: dir, ...(scanMemo ? { scanMemo } : {}) });
  const plan = planLayers(spec, closure);
  const events = opts.events;
  const onEvent = opts.onEvent ?? (events && ((e: BuildEvent) => void events.push(e)));
  return buildImage({ spec, closure, plan, configDir: dir, cache: opts.cache, concurrency: opts.concurrency, onEvent });
}

describe("layer cache", () => {
  it("reuses every layer on a rebuild, gives the same bytes, and leaves an up-to-date output alone", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const first = await build({ out: "a.tar", cache });
    expect(first.stats).toMatchObject({ rebuilt: 5, reused: 0, upToDate: false });
    const digest = sha(path.join(dir, "a.tar"));
    const second = await build({ out: "a.tar", cache });
    expect(second.stats).toMatchObject({ rebuilt: 0, reused: 5, bytesWritten: 0, upToDate: true });
    expect(sha(path.join(dir, "a.tar"))).toBe(digest);
    // A changed output file is rewritten, from the cache.
    fs.appendFileSync(path.join(dir, "a.tar"), "x");
    const third = await build({ out: "a.tar", cache });
    expect(third.stats).toMatchObject({ rebuilt: 0, reused: 5, upToDate: false });
    expect(sha(path.join(dir, "a.tar"))).toBe(digest);
  });

  it("a docker archive streamed into place (and kept as a pack) is up to date on the very next build", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push((await build({ out: "s.tar", cache, compression: "none" })).stats.upToDate);
    expect(runs).toEqual([false, true, true]);
  });

  it("does not read the store for cached layers (scan results and layers both come from the cache)", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    await build({ out: "a.tar", cache });
    // Replace a file's content in place without touching the item's top directory: a hit must not notice.
    fs.writeFileSync(path.join(store.host("big"), "share/data"), Buffer.alloc(900_000, 3));
    const again = await build({ out: "b.tar", cache });
    expect(again.stats.rebuilt).toBe(0);
    expect(sha(path.join(dir, "b.tar"))).toBe(sha(path.join(dir, "a.tar")));
  });

  it("a remembered scan of an item that named a then missing item is not reused once that item is back", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const moved = path.join(dir, "libc-moved");
    fs.renameSync(store.host("libc"), moved);
    // A store without libc: the scan cannot see it, and the image lacks it.
    const without = await build({ out: "a.tar", cache });
    fs.renameSync(moved, store.host("libc"));
    const built = await build({ out: "b.tar", cache });
    const fresh = await build({ out: "c.tar" });
    expect(sha(path.join(dir, "b.tar"))).toBe(sha(path.join(dir, "c.tar")));
    expect(built.layers.length).toBe(fresh.layers.length);
    expect(without.layers.length).toBeLessThan(fresh.layers.length);
  });

  it("a layer whose cached copy (inside a docker archive kept as a pack) was overwritten is rebuilt and reported built", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    await build({ out: "a.tar", cache, compression: "none" });
    // The archive is overwritten in place: the pack, a hard link to it, changes with it.
    const archive = path.join(dir, "a.tar");
    fs.writeFileSync(archive, Buffer.alloc(fs.statSync(archive).size, 0x55));
    const events: BuildEvent[] = [];
    const layout = await build({ out: "lay", cache, compression: "none", format: "oci-layout", events });
    expect(layout.stats.rebuilt).toBeGreaterThan(0);
    const built = events.filter((e) => e.type === "layer-done" && !e.cached).length;
    expect(built).toBe(layout.stats.rebuilt);
    expect(events.filter((e) => e.type === "layer-start").length).toBe(built);
  });

  it("rebuilds a layer whose blob is truncated or corrupt", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const first = await build({ out: "a.tar", cache });
    const digest = sha(path.join(dir, "a.tar"));
    const [l0, l1] = first.layers;
    fs.truncateSync(cache.blobPath(l0!.digest), 10);
    const blob1 = cache.blobPath(l1!.digest);
    const bytes = fs.readFileSync(blob1);
    bytes[bytes.length >> 1]! ^= 0xff;
    fs.chmodSync(blob1, 0o644);
    fs.writeFileSync(blob1, bytes);
    const events: BuildEvent[] = [];
    const second = await build({ out: "b.tar", cache, events });
    expect(second.stats).toMatchObject({ rebuilt: 2, reused: 3 });
    // The progress says so too: each damaged layer is built after it was found reused.
    expect(events.filter((e) => e.type === "layer-start").length).toBe(2);
    expect(events.filter((e) => e.type === "layer-done" && !e.cached).length).toBe(2);
    expect(sha(path.join(dir, "b.tar"))).toBe(digest);
    const third = await build({ out: "c.tar", cache });
    expect(third.stats.rebuilt).toBe(0);
  });

  it("takes a tampered or misshapen entry for a miss: nothing outside the cache is read or removed", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const first = await build({ out: "a.tar", cache });
    const digest = sha(path.join(dir, "a.tar"));
    const victim = path.join(dir, "victim.txt");
    fs.writeFileSync(victim, "keep me");
    const entries = fs.readdirSync(path.join(dir, "cache", "layers"));
    const shapes: unknown[] = [
      { ...first.layers[0], tarSize: 1, digest: "sha256:../../../victim.txt" },
      { ...first.layers[0], tarSize: 1, size: 7, digest: "sha256:../../../victim.txt" },
      { digest: 5 },
      [],
      { ...first.layers[0], tarSize: 1, pack: "../../victim.txt" },
    ];
    entries.forEach((e, i) => fs.writeFileSync(path.join(dir, "cache", "layers", e), JSON.stringify(shapes[i % shapes.length])));
    const second = await build({ out: "b.tar", cache });
    expect(second.stats.reused).toBe(0);
    expect(sha(path.join(dir, "b.tar"))).toBe(digest);
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me");
    // A directory where an entry goes, and a link among the blobs: prune neither fails nor follows them.
    const before = cacheInfo(cache);
    fs.mkdirSync(path.join(dir, "cache", "layers", "dir.json"));
    fs.symlinkSync(victim, path.join(dir, "cache", "blobs", "sha256", "f".repeat(64)));
    expect(cacheInfo(cache)).toMatchObject({ blobs: before.blobs, blobBytes: before.blobBytes });
    pruneCache(cache, { maxBytes: 1 });
    expect(fs.existsSync(path.join(dir, "cache", "layers", "dir.json"))).toBe(false);
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me");
  });

  it("prune and info never follow a link planted in the cache: nothing outside it is listed, counted or removed", async () => {
    const root = path.join(dir, "cache");
    const cache = new LayerCache(root);
    await build({ out: "a.tar", cache });
    const outside = path.join(dir, "outside");
    fs.mkdirSync(outside);
    // Shaped like a scan file (so that counting through a link would show), and old (so that age rules would take it).
    const victim = path.join(outside, "victim.json");
    fs.writeFileSync(victim, JSON.stringify({ dir: "/x", records: { a: {}, b: {} } }));
    const old = new Date(Date.now() - 86_400_000);
    for (const f of [victim, outside]) fs.utimesSync(f, old, old);
    const before = cacheInfo(cache);
    const subs = ["layers", "blobs/sha256", "packs", "scan", "plans", "tmp"];
    for (const sub of subs) {
      for (const [name, target] of [["d".repeat(64), outside], ["f".repeat(64), victim]] as const) {
        fs.symlinkSync(target, path.join(root, sub, name));
        fs.lutimesSync(path.join(root, sub, name), old, old);
      }
    }
    expect(cacheInfo(cache)).toMatchObject({ layers: before.layers, blobs: before.blobs, blobBytes: before.blobBytes, scans: before.scans, tempBytes: before.tempBytes });
    pruneCache(cache, { maxBytes: 0, olderThanMs: 0 });
    // The links themselves are foreign entries: removed, never what they point to.
    const present = (f: string) => fs.lstatSync(f, { throwIfNoEntry: false }) !== undefined;
    for (const sub of subs.filter((s) => s !== "scan")) expect(present(path.join(root, sub, "f".repeat(64))), sub).toBe(false);
    // A link in place of one of the cache's own directories: not descended into, whatever the options.
    fs.rmSync(path.join(root, "tmp"), { recursive: true });
    fs.symlinkSync(outside, path.join(root, "tmp"));
    fs.renameSync(path.join(root, "layers"), path.join(root, "layers-real"));
    fs.symlinkSync(outside, path.join(root, "layers"));
    expect(cacheInfo(cache)).toMatchObject({ layers: 0, tempFiles: 0, tempBytes: 0 });
    pruneCache(cache, { maxBytes: 0 });
    pruneCache(cache, { all: true });
    expect(fs.readdirSync(outside)).toEqual(["victim.json"]);
    expect(fs.readFileSync(victim, "utf8")).toMatch(/records/);
    // Builds refuse such a cache (and so does `cache prune`, which opens it the same way).
    expect(() => new LayerCache(root)).toThrow(/layers is a symbolic link, not a directory/);
  });

  it("a layer whose temp file was swept away while it was written fails with an error saying so, not ENOENT", () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const temp = cache.tempPath("layer-0");
    fs.writeFileSync(temp, "x");
    fs.rmSync(temp);
    const layer = { digest: `sha256:${"a".repeat(64)}`, diffId: `sha256:${"b".repeat(64)}`, size: 1, tarSize: 1, mediaType: "application/vnd.oci.image.layer.v1.tar" };
    expect(() => cache.putLayer("0".repeat(64), temp, layer)).toThrow(BuildError);
    expect(() => cache.putLayer("0".repeat(64), temp, layer)).toThrow(/temp file .*layer-0-.* was removed while this build was using it/);
  });

  it("never opens a FIFO in a blob's place blocking: copying it into an archive or loosening it from a pack is a miss", () => {
    const fifo = path.join(dir, "blob");
    execFileSync("mkfifo", [fifo]);
    // In a child: a blocking open would hang this test's process for good. Size 0, so no size check can catch it.
    const src = path.resolve(import.meta.dirname, "../../src");
    const script = `
      const { TarFileWriter } = await import(${JSON.stringify(path.join(src, "image/tar-file.ts"))});
      const { LayerCache } = await import(${JSON.stringify(path.join(src, "cache/cache.ts"))});
      const blob = { file: ${JSON.stringify(fifo)}, digest: "sha256:${"e".repeat(64)}", diffId: "sha256:${"e".repeat(64)}", size: 0, tarSize: 0, mediaType: "x" };
      console.log(new TarFileWriter(${JSON.stringify(path.join(dir, "out.tar"))}, 0).copyEntry("layer", blob));
      console.log(new LayerCache(${JSON.stringify(path.join(dir, "cache"))}).loosen("${"0".repeat(64)}", { ...blob, offset: 0 }));`;
    const r = runModule(script);
    expect(r.signal, `timed out: ${r.stdout}${r.stderr}`).toBeNull();
    expect(r.stdout.trim().split("\n")).toEqual(["undefined", "undefined"]);
  });

  it("gives byte-identical images cached or not, in parallel or one layer at a time", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    await build({ out: "streamed.tar" });
    await build({ out: "sequential.tar", cache: new LayerCache(path.join(dir, "c1")), concurrency: 1 });
    await build({ out: "parallel.tar", cache, concurrency: 4 });
    await build({ out: "warm.tar", cache, concurrency: 4 });
    const want = sha(path.join(dir, "streamed.tar"));
    for (const f of ["sequential.tar", "parallel.tar", "warm.tar"]) expect(sha(path.join(dir, f)), f).toBe(want);
  });

  it("serves two builds running at once on one cache", async () => {
    const cache1 = new LayerCache(path.join(dir, "cache"));
    const cache2 = new LayerCache(path.join(dir, "cache"));
    const [a, b] = await Promise.all([build({ out: "a.tar", cache: cache1 }), build({ out: "b.tar", cache: cache2, compression: "gzip" })]);
    expect(a.imageId).toBe(b.imageId);
    expect(sha(path.join(dir, "a.tar"))).toBe(sha(path.join(dir, "b.tar")));
    expect(fs.readdirSync(path.join(dir, "cache", "tmp"))).toEqual([]);
    expect(cacheInfo(cache1)).toMatchObject({ layers: 5, blobs: 5 });
  });

  it("keeps a streamed archive as a pack: rebuilds copy from it, and OCI outputs get loose blobs from it", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const first = await build({ out: "a.tar", cache, compression: "none" });
    expect(first.stats).toMatchObject({ rebuilt: 5, reused: 0 });
    expect(cacheInfo(cache)).toMatchObject({ layers: 5, blobs: 0, packs: 1 });
    // The pack is the archive itself (a hard link): no layer byte was written twice.
    const pack = fs.readdirSync(path.join(dir, "cache", "packs"))[0]!;
    expect(fs.statSync(path.join(dir, "cache", "packs", pack)).ino).toBe(fs.statSync(path.join(dir, "a.tar")).ino);
    const second = await build({ out: "b.tar", cache, compression: "none" });
    expect(second.stats).toMatchObject({ rebuilt: 0, reused: 5 });
    expect(sha(path.join(dir, "b.tar"))).toBe(sha(path.join(dir, "a.tar")));
    // Removing the output does not lose the cache: the pack keeps the bytes.
    fs.rmSync(path.join(dir, "a.tar"));
    fs.rmSync(path.join(dir, "b.tar"));
    const layout = await build({ out: "layout", cache, compression: "none", format: "oci-layout" });
    expect(layout.stats).toMatchObject({ rebuilt: 0, reused: 5 });
    for (const l of layout.layers) expect(sha(path.join(dir, "layout", "blobs", "sha256", l.digest.slice(7)))).toBe(l.digest.slice(7));
    expect(cacheInfo(cache)).toMatchObject({ layers: 5, blobs: 5 });
  });

  it("refuses to cache a layer whose host file changed while it was written", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    const src = path.join(dir, "motd");
    fs.writeFileSync(src, "AAAA\n");
    const paths = [{ path: "/etc/motd", type: "file", source: "motd" }];
    const edit = (e: BuildEvent) => {
      if (e.type === "layer-start" && e.index === e.count - 1) fs.writeFileSync(src, "BBBB\n");
    };
    await expect(build({ out: "a.tar", cache, compression: "none", paths, onEvent: edit })).rejects.toThrow(/changed while it was being written/);
    expect(fs.existsSync(path.join(dir, "a.tar"))).toBe(false);
    fs.writeFileSync(src, "AAAA\n");
    const again = await build({ out: "a.tar", cache, compression: "none", paths });
    expect(again.stats.rebuilt).toBeGreaterThan(0);
    const x = path.join(dir, "x");
    fs.mkdirSync(x);
    execFileSync("tar", ["-xf", path.join(dir, "a.tar"), "-C", x]);
    const manifest = JSON.parse(fs.readFileSync(path.join(x, "manifest.json"), "utf8"))[0];
    expect(execFileSync("tar", ["-xOf", path.join(x, manifest.Layers.at(-1)), "etc/motd"], { encoding: "utf8" })).toBe("AAAA\n");
  });

  it("reports info and prunes by size, age and entirely", async () => {
    const cache = new LayerCache(path.join(dir, "cache"));
    await build({ out: "a.tar", cache });
    await build({ out: "n.tar", cache, compression: "none" });
    const info = cacheInfo(cache);
    // The gzip build's layers are loose blobs (built in parallel); the uncompressed one streamed into its archive,
    // which the cache keeps as one pack.
    expect(info).toMatchObject({ layers: 10, blobs: 5, packs: 1, scans: 4 });
    // Nothing unused yet: a plain prune keeps everything.
    expect(pruneCache(cache, {})).toMatchObject({ layersRemoved: 0, blobsRemoved: 0 });
    const half = Math.floor(info.blobBytes / 2);
    const bySize = pruneCache(cache, { maxBytes: half });
    expect(bySize.layersRemoved).toBeGreaterThan(0);
    expect(cacheInfo(cache).blobBytes).toBeLessThanOrEqual(half);
    await build({ out: "again.tar", cache, compression: "none" });
    expect(cacheInfo(cache).layers).toBeGreaterThan(0);
    expect(pruneCache(cache, { olderThanMs: 0, now: Date.now() + 1000 }).layersRemoved).toBeGreaterThan(0);
    expect(cacheInfo(cache)).toMatchObject({ layers: 0, blobs: 0, packs: 0, blobBytes: 0 });
    pruneCache(cache, { all: true });
    expect(cacheInfo(cache).scans).toBe(0);
  });
});

describe("the default cache directory", () => {
  it("is never relative to the current directory: an empty or relative HOME and a relative XDG_CACHE_HOME are passed over", () => {
    const home = os.userInfo().homedir;
    expect(defaultCacheDir({ HOME: "" })).toBe(path.join(home, ".cache", "layerpack"));
    expect(defaultCacheDir({ HOME: "rel" })).toBe(path.join(home, ".cache", "layerpack"));
    expect(defaultCacheDir({ HOME: "/h", XDG_CACHE_HOME: "cache" })).toBe("/h/.cache/layerpack");
    expect(defaultCacheDir({ HOME: "/h", XDG_CACHE_HOME: "/x" })).toBe("/x/layerpack");
  });
});
