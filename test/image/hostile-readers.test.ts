/**
 * The image readers (inspect's read-oci, diff's read-archive) given hostile input: digests that are paths, archive
 * paths with `..`, blobs that are symlinks or FIFOs or the wrong size, and documents far too big. Each must be
 * refused with a LayerpackError naming the file and what is wrong, without hanging, reading host files, or
 * reading (or keeping) the big data whole. Fixtures are made here, in temp dirs.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { pack } from "tar-stream";
import { archive } from "./tar-archive.ts";
import { encodeHeader } from "../../src/image/tar.ts";
import { readImage } from "../../src/oci/read.ts";
import { readDockerArchive } from "../../src/oci/read-archive.ts";
import { LayerpackError } from "../../src/errors.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-hostile-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const hex = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const file = (name: string, data: Buffer) => ({ h: { name, type: "file" as const, mode: 0o644, mtime: 1 }, data });
const LAYER = archive([file("etc/motd", Buffer.from("hi\n"))]);

/** A tar with names our own encoder refuses to write (`..`, absolute), by tar-stream's packer. */
async function hostileTar(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) p.entry({ name: e.name, size: e.data.length }, e.data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A config and a manifest for one layer; `edit` may change the manifest before it is encoded. */
function image(edit: (m: { config: Record<string, unknown>; layers: Record<string, unknown>[] }) => void = () => {}) {
  const config = json({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${hex(LAYER)}`] }, history: [{ comment: "motd" }] });
  const m = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${hex(config)}`, size: config.length } as Record<string, unknown>,
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${hex(LAYER)}`, size: LAYER.length }] as Record<string, unknown>[],
  };
  edit(m);
  return { config, manifest: json(m) };
}

const indexOf = (digest: string, size: number) =>
  json({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size, annotations: { "org.opencontainers.image.ref.name": "x:1" } }] });

/** An OCI layout directory with `blobs` (written under their hashes) and `index` (default: the first blob). */
function layout(name: string, blobs: Buffer[], index?: Buffer): string {
  const root = path.join(dir, name);
  fs.mkdirSync(path.join(root, "blobs", "sha256"), { recursive: true });
  fs.writeFileSync(path.join(root, "oci-layout"), json({ imageLayoutVersion: "1.0.0" }));
  for (const b of blobs) fs.writeFileSync(path.join(root, "blobs", "sha256", hex(b)), b);
  fs.writeFileSync(path.join(root, "index.json"), index ?? indexOf(`sha256:${hex(blobs[0]!)}`, blobs[0]!.length));
  return root;
}

function goodLayout(name = "good"): { root: string; manifest: Buffer; config: Buffer } {
  const { config, manifest } = image();
  return { root: layout(name, [manifest, config, LAYER]), manifest, config };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a refusal").toBeInstanceOf(LayerpackError);
  return (err as Error).message;
}

describe("digests and archive paths are checked before they are used", () => {
  it("reads a well-formed layout (the fixtures are valid)", async () => {
    const img = await readImage(goodLayout().root);
    expect(img.layers).toEqual([{ digest: `sha256:${hex(LAYER)}`, size: LAYER.length, mediaType: "application/vnd.oci.image.layer.v1.tar", diffId: `sha256:${hex(LAYER)}`, comment: "motd", open: expect.any(Function) }]);
    // Opened, the layer is its blob's bytes, checked as they stream.
    const chunks: Buffer[] = [];
    for await (const c of await img.layers[0]!.open()) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks)).toEqual(LAYER);
  });

  it("refuses a digest that is a path, naming index.json and the digest, and says nothing about host files", async () => {
    const root = layout("evil", [], indexOf("sha256:../../../../etc/shadow", 10));
    const msg = await refusal(readImage(root));
    expect(msg).toBe(`${path.join(root, "index.json")}: manifests[0].digest is not a valid digest: "sha256:../../../../etc/shadow" (expected sha256: and 64 lowercase hex digits)`);
    // A traversal to a file that exists and to one that does not get the same answer.
    fs.writeFileSync(path.join(dir, "secret"), "s3cret");
    const there = layout("there", [], indexOf("sha256:../../../secret", 6));
    const absent = layout("absent", [], indexOf("sha256:../../../nothing", 6));
    const [a, b] = [await refusal(readImage(there)), await refusal(readImage(absent))];
    expect(a.replace("secret", "X").replace(there, "L")).toBe(b.replace("nothing", "X").replace(absent, "L"));
  });

  it("makes the same checks in an OCI archive (a tar of the layout)", async () => {
    const tarOf = (root: string) => {
      const out = `${root}.tar`;
      spawnSync("tar", ["-cf", out, "-C", root, "."]);
      return out;
    };
    const evil = tarOf(layout("evil", [], indexOf("sha256:../../../../etc/shadow", 10)));
    expect(await refusal(readImage(evil))).toBe(`${evil}: index.json: manifests[0].digest is not a valid digest: "sha256:../../../../etc/shadow" (expected sha256: and 64 lowercase hex digits)`);
    const { config } = image();
    const wrongSize = image((m) => (m.config.size = config.length + 7));
    const sized = tarOf(layout("sized", [wrongSize.manifest, config]));
    expect(await refusal(readImage(sized))).toBe(`${sized}: the config blob sha256:${hex(config)} is ${config.length} bytes, but its descriptor says ${config.length + 7}`);
    expect((await readImage(tarOf(goodLayout().root))).kind).toBe("oci-archive");
  });

  it("refuses uppercase or short digests in manifests and configs", async () => {
    const upper = image((m) => (m.layers[0]!.digest = `sha256:${hex(LAYER).toUpperCase()}`));
    const r1 = layout("upper", [upper.manifest, upper.config]);
    expect(await refusal(readImage(r1))).toMatch(/blobs\/sha256\/[0-9a-f]{64}: layers\[0\]\.digest is not a valid digest: "sha256:[0-9A-F]{64}"/);
    const short = image((m) => (m.config.digest = "sha256:abc"));
    expect(await refusal(readImage(layout("short", [short.manifest])))).toMatch(/config\.digest is not a valid digest: "sha256:abc"/);
    const config = json({ rootfs: { diff_ids: ["sha256:/etc/passwd"] } });
    const badIds = image((m) => (m.config = { ...m.config, digest: `sha256:${hex(config)}`, size: config.length }));
    expect(await refusal(readImage(layout("ids", [badIds.manifest, config])))).toMatch(/rootfs\.diff_ids\[0\] is not a valid digest: "sha256:\/etc\/passwd"/);
  });

  it("refuses docker archive manifest.json paths that leave the archive (inspect and diff)", async () => {
    const { config } = image();
    for (const [Config, Layers, bad] of [
      ["../config.json", ["layer.tar"], "Config \"../config.json\" goes up with .."],
      ["config.json", ["/layer.tar"], "Layers[0] \"/layer.tar\" is absolute"],
      ["config.json", ["a/../../layer.tar"], "Layers[0] \"a/../../layer.tar\" goes up with .."],
    ] as const) {
      // The archive really holds entries of those names: only the check stops them.
      const tar = path.join(dir, "docker.tar");
      fs.writeFileSync(tar, await hostileTar([{ name: Config, data: config }, { name: Layers[0], data: LAYER }, { name: "manifest.json", data: json([{ Config, RepoTags: ["x:1"], Layers }]) }]));
      const want = `${tar}: manifest.json: ${bad}; it must be a relative path inside the archive`;
      expect(await refusal(readImage(tar))).toBe(want);
      expect(await refusal(readDockerArchive(tar))).toBe(want);
    }
  });
});

describe("layout blobs are regular files inside blobs/sha256, of their descriptor's size", () => {
  it("refuses a blob that is a symlink, even to the right bytes", async () => {
    const { root, manifest } = goodLayout();
    const blob = path.join(root, "blobs", "sha256", hex(manifest));
    fs.renameSync(blob, path.join(dir, "elsewhere"));
    fs.symlinkSync(path.join(dir, "elsewhere"), blob);
    expect(await refusal(readImage(root))).toBe(`${blob}: the manifest blob is a symbolic link, not a regular file; refusing to read it`);
  });

  it("refuses a blobs/sha256 directory that is a symlink", async () => {
    const { root } = goodLayout();
    const sha = path.join(root, "blobs", "sha256");
    fs.renameSync(sha, path.join(dir, "real-blobs"));
    fs.symlinkSync(path.join(dir, "real-blobs"), sha);
    expect(await refusal(readImage(root))).toMatch(/blobs\/sha256: the blobs\/sha256 directory is a symbolic link, not a directory/);
  });

  it("refuses a blob larger or smaller than its descriptor says", async () => {
    const { config } = image();
    const smaller = image((m) => (m.config.size = config.length + 1));
    const r1 = layout("smaller", [smaller.manifest, config]);
    expect(await refusal(readImage(r1))).toBe(`${path.join(r1, "blobs", "sha256", hex(config))}: the config blob is ${config.length} bytes, but its descriptor says ${config.length + 1}`);
    const larger = image((m) => (m.config.size = config.length - 1));
    expect(await refusal(readImage(layout("larger", [larger.manifest, config])))).toMatch(/the config blob is \d+ bytes, but its descriptor says \d+/);
  });

  it("checks the digest of the documents it reads", async () => {
    const { root, config } = goodLayout();
    const blob = path.join(root, "blobs", "sha256", hex(config));
    const bytes = fs.readFileSync(blob);
    bytes[5] = bytes[5]! ^ 1;
    fs.writeFileSync(blob, bytes);
    expect(await refusal(readImage(root))).toBe(`${blob}: the config blob does not match its digest sha256:${hex(config)}`);
  });

  it("refuses documents nested thousands of levels deep (they overflow the stack of whatever walks them)", async () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    const diffIds = JSON.stringify([`sha256:${hex(LAYER)}`]);
    const config = Buffer.from(`{"architecture":"amd64","os":"linux","config":{"Labels":${deep(200_000)}},"rootfs":{"type":"layers","diff_ids":${diffIds}}}`);
    const { manifest } = image((m) => (m.config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${hex(config)}`, size: config.length }));
    const root = layout("deep", [manifest, config, LAYER]);
    expect(await refusal(readImage(root))).toMatch(/the config is not valid JSON: it nests deeper than 64 levels/);
    const list = Buffer.from(`[{"Config":"c.json","Layers":["l.tar"],"RepoTags":[${deep(100_000)}]}]`);
    const tarFile = path.join(dir, "deep.tar");
    fs.writeFileSync(tarFile, archive([file("manifest.json", list), file("c.json", config), file("l.tar", LAYER)]));
    expect(await refusal(readImage(tarFile))).toMatch(/manifest\.json is not valid JSON: it nests deeper than 64 levels/);
    expect(await refusal(readDockerArchive(tarFile))).toMatch(/manifest\.json.*is not valid JSON: it nests deeper than 64 levels/);
    // 64 levels are fine.
    const ok = Buffer.from(`{"architecture":"amd64","os":"linux","config":{"Labels":${deep(60)}},"rootfs":{"type":"layers","diff_ids":${diffIds}}}`);
    const { manifest: okManifest } = image((m) => (m.config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${hex(ok)}`, size: ok.length }));
    await expect(readImage(layout("shallow", [okManifest, ok, LAYER]))).resolves.toBeDefined();
  });

  it("never blocks on a FIFO: a blob, index.json, or the archive itself", () => {
    const { root, manifest } = goodLayout("fifo-blob");
    const blob = path.join(root, "blobs", "sha256", hex(manifest));
    fs.rmSync(blob);
    spawnSync("mkfifo", [blob]);
    const index = path.join(goodLayout("fifo-index").root, "index.json");
    fs.rmSync(index);
    spawnSync("mkfifo", [index]);
    const tar = path.join(dir, "fifo.tar");
    spawnSync("mkfifo", [tar]);
    // In a child: a blocking open would hang this test's process for good.
    const src = path.resolve(import.meta.dirname, "../../src/oci");
    const script = `
      const { readImage } = await import(${JSON.stringify(path.join(src, "read.ts"))});
      const { readDockerArchive } = await import(${JSON.stringify(path.join(src, "read-archive.ts"))});
      for (const read of [() => readImage(${JSON.stringify(root)}), () => readImage(${JSON.stringify(path.dirname(index))}), () => readImage(${JSON.stringify(tar)}), () => readDockerArchive(${JSON.stringify(tar)})]) {
        try { await read(); console.log("read"); } catch (e) { console.log(e.name + ": " + e.message); }
      }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "--no-warnings", "-e", script], { encoding: "utf8", timeout: 20_000 });
    expect(r.signal, `timed out: ${r.stdout}${r.stderr}`).toBeNull();
    expect(r.stdout.trim().split("\n")).toEqual([
      `LayerpackError: ${blob}: the manifest blob is a FIFO, not a regular file; refusing to read it`,
      `LayerpackError: ${index}: index.json is a FIFO, not a regular file; refusing to read it`,
      `LayerpackError: ${tar} is a FIFO, not a regular file; an image archive must be a file`,
      `LayerpackError: ${tar} is a FIFO, not a regular file; an image archive must be a file`,
    ]);
  });
});

/** A sparse file: tar headers at their offsets, each entry's data `{` then zeros (holes), two zero blocks at the end. */
function sparseTar(target: string, entries: { name: string; size: number }[], truncateAfter?: number): void {
  const fd = fs.openSync(target, "w");
  let at = 0;
  for (const e of entries) {
    fs.writeSync(fd, encodeHeader({ name: e.name, type: "file", mode: 0o644, mtime: 1, size: e.size }), 0, 512, at);
    fs.writeSync(fd, Buffer.from("{"), 0, 1, at + 512);
    at += 512 + Math.ceil(e.size / 512) * 512;
  }
  fs.ftruncateSync(fd, truncateAfter ?? at + 1024);
  fs.closeSync(fd);
}

/** Runs `f` while sampling RSS; the most it grew, in MiB. */
async function peakGrowth(f: () => Promise<unknown>): Promise<number> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 1);
  try {
    await f();
  } finally {
    clearInterval(timer);
  }
  return (Math.max(peak, process.memoryUsage.rss()) - start) / (1 << 20);
}

describe("documents and non-layer entries are read with a size limit", () => {
  const BIG = 100 << 20;

  it("refuses a 100 MiB index.json from its size, without reading it", async () => {
    const { root } = goodLayout();
    const index = path.join(root, "index.json");
    fs.writeFileSync(index, '{"manifests":[');
    fs.truncateSync(index, BIG);
    const t0 = Date.now();
    const grew = await peakGrowth(async () => expect(await refusal(readImage(root))).toBe(`${index}: index.json is 100 MiB, over the 16 MiB limit for such documents`));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(grew).toBeLessThan(50);
  });

  it("refuses a manifest whose descriptor says 100 MiB before opening it", async () => {
    const { manifest, config } = image();
    const root = layout("huge", [manifest, config], indexOf(`sha256:${hex(manifest)}`, BIG));
    expect(await refusal(readImage(root))).toBe(`${root}: the manifest blob sha256:${hex(manifest)} is 100 MiB by its descriptor, over the 16 MiB limit for JSON documents`);
  });

  it("refuses a 100 MiB entry of an archive from its header, before its data is read (inspect and diff)", async () => {
    // The archive holds only the first 64 KiB of the entry: a reader that went on would fail with a truncated tar.
    const tar = path.join(dir, "big.tar");
    sparseTar(tar, [{ name: "manifest.json", size: BIG }], 64 << 10);
    const want = `${tar}: entry "manifest.json" is 100 MiB; an entry that is not a layer (a tar, plain or gzip) must be a document of at most 16 MiB`;
    expect(await refusal(readImage(tar))).toBe(want);
    expect(await refusal(readDockerArchive(tar))).toBe(want);
  });

  it("keeps at most 64 MiB of documents from an archive: memory stays flat for 300 MiB of them", async () => {
    // Cut at 100 MiB: a reader that kept going past its budget would fail on the truncated tar instead.
    const tar = path.join(dir, "many.tar");
    sparseTar(tar, Array.from({ length: 20 }, (_, i) => ({ name: `doc${i}.json`, size: 15 << 20 })), 100 << 20);
    const want = `${tar}: its entries that are not layers add up to more than 64 MiB; this is not an image archive`;
    for (const read of [() => readImage(tar), () => readDockerArchive(tar)]) {
      const grew = await peakGrowth(async () => expect(await refusal(read())).toBe(want));
      expect(grew).toBeLessThan(200);
    }
  });
});
