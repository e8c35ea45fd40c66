/**
 * Docker archives whose layers were damaged after they were written (bytes overwritten, a layer swapped): a
 * docker archive names its layers by nothing but the config's diff_ids, so those are what catch it. Each reader
 * must refuse such a layer with a LayerpackError naming the archive and the layer, in plain words, with zlib's own
 * words only as the cause. Fixtures are made here, in a temp dir.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { archive } from "../image/tar-archive.ts";
import { readDockerArchive } from "../../src/oci/read-archive.ts";
import { openImage } from "../../src/oci/read.ts";
import { parseImageName } from "../../src/oci/name.ts";
import { writeImage } from "../../src/image/write.ts";
import { resolveBase } from "../../src/image/base.ts";
import { LayerpackError } from "../../src/errors.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-damaged-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const digest = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const file = (name: string, data: Buffer) => ({ h: { name, type: "file" as const, mode: 0o644, mtime: 1 }, data });
// Random bytes do not compress: the middle of the gzip layer is deflate data, not its header or trailer.
const TAR = archive([file("etc/motd", Buffer.from("hi\n"))]);
const BIG = archive([file("data/blob", randomBytes(64 << 10))]);
const GZ = gzipSync(BIG);

/** 4 bytes in the middle overwritten (each bit flipped, so they surely change), as a bad disk might. */
function damaged(data: Buffer): Buffer {
  const out = Buffer.from(data);
  const at = out.length >> 1;
  out.writeUInt32BE(~out.readUInt32BE(at) >>> 0, at);
  return out;
}

/** A docker archive as layerpack writes one (layers named by their digest), of `layers` with `diffIds` in its config. */
function dockerArchive(name: string, layers: { name: string; data: Buffer }[], diffIds: string[]): string {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIds } }));
  const configName = `${digest(config).slice(7)}.json`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ["x:1"], Layers: layers.map((l) => l.name) }]));
  const tar = path.join(dir, name);
  fs.writeFileSync(tar, archive([...layers.map((l) => file(l.name, l.data)), file(configName, config), file("manifest.json", manifest)]));
  return tar;
}

const GZ_NAME = `${digest(GZ).slice(7)}.tar.gz`;
const TAR_NAME = `${digest(TAR).slice(7)}.tar`;

async function refusal(p: Promise<unknown>): Promise<LayerpackError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a refusal").toBeInstanceOf(LayerpackError);
  return err as LayerpackError;
}

describe("diff's reader (read-archive.ts)", () => {
  it("says a layer's gzip data is corrupt, naming the archive and the layer; zlib's words are the cause", async () => {
    const tar = dockerArchive("corrupt.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: damaged(GZ) }], [digest(TAR), digest(BIG)]);
    const err = await refusal(readDockerArchive(tar, "corrupt.tar"));
    expect(err.message).toBe(`corrupt.tar: layer ${GZ_NAME} is damaged: its gzip data is corrupt`);
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/^Z_/);
  });

  it("reads the same archive undamaged", async () => {
    const tar = dockerArchive("good.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: GZ }], [digest(TAR), digest(BIG)]);
    const read = await readDockerArchive(tar);
    expect(read.layers.map((l) => l.diffId)).toEqual([digest(TAR), digest(BIG)]);
  });
});

const open = (tar: string, verifyLayers?: boolean) => openImage(parseImageName(`docker-archive:${tar}`, { cwd: dir }), verifyLayers ? { verifyLayers } : {});
const GOOD = () => dockerArchive("good.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: GZ }], [digest(TAR), digest(BIG)]);

describe("openImage", () => {
  it("takes an image name as a string too, as writeImage does, relative names from opts.cwd", async () => {
    const tar = GOOD();
    const parsed = await open(tar);
    for (const text of [tar, `docker-archive:${path.basename(tar)}`]) {
      const image = await openImage(text, { cwd: path.dirname(tar) });
      expect(image.layers.map((l) => l.diffId)).toEqual(parsed.layers.map((l) => l.diffId));
    }
  });
});

describe("openImage with verifyLayers (push --from's reader)", () => {
  it("refuses a layer whose gzip data is corrupt, naming the archive, the layer, its digest and the diff_id", async () => {
    const bad = damaged(GZ);
    const tar = dockerArchive("corrupt.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: bad }], [digest(TAR), digest(BIG)]);
    const err = await refusal(open(tar, true));
    expect(err.message).toBe(
      `${tar}: layer ${GZ_NAME} is damaged: its gzip data is corrupt, so it cannot unpack to ${digest(BIG)}, the config's rootfs.diff_ids[1] (the layer's bytes hash to ${digest(bad)})`,
    );
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/^Z_/);
  });

  it("refuses a layer that unpacks to other bytes than its diff_id, with both digests (sound gzip, or a plain tar)", async () => {
    const other = archive([file("etc/motd", Buffer.from("bye\n"))]);
    const swapped = dockerArchive("swapped.tar", [{ name: GZ_NAME, data: gzipSync(other) }], [digest(BIG)]);
    expect((await refusal(open(swapped, true))).message).toBe(
      `${swapped}: layer ${GZ_NAME} does not match the image's config: it unpacks to ${digest(other)}, but the config's rootfs.diff_ids[0] says ${digest(BIG)}; the archive was changed or damaged after it was written`,
    );
    const plain = dockerArchive("plain.tar", [{ name: TAR_NAME, data: damaged(TAR) }], [digest(TAR)]);
    expect((await refusal(open(plain, true))).message).toMatch(
      new RegExp(`^${plain}: layer ${TAR_NAME} does not match the image's config: it is not gzip, and as a plain tar it hashes to ${digest(damaged(TAR))}, but the config's rootfs.diff_ids\\[0\\] says ${digest(TAR)};`),
    );
  });

  it("opens a sound archive, with nothing left for verifyLayers to do", async () => {
    const image = await open(GOOD(), true);
    expect(image.layers.map((l) => l.diffId)).toEqual([digest(TAR), digest(BIG)]);
    expect(image.verifyLayers).toBeUndefined();
  });
});

describe("writeImage of a docker archive opened without verifyLayers (the library)", () => {
  it("checks the layers first, in a pass of its own, and writes nothing when one is damaged", async () => {
    const tar = dockerArchive("corrupt.tar", [{ name: GZ_NAME, data: damaged(GZ) }], [digest(BIG)]);
    const image = await open(tar);
    expect(image.verifyLayers).toBeTypeOf("function");
    const out = path.join(dir, "out");
    expect((await refusal(writeImage(image, `oci:${out}`))).message).toMatch(new RegExp(`^${tar}: layer ${GZ_NAME} is damaged: its gzip data is corrupt,`));
    expect(fs.existsSync(out)).toBe(false);
  });

  it("refuses an archive replaced since it was opened, and writes a sound one", async () => {
    const tar = GOOD();
    const image = await open(tar);
    await writeImage(image, `oci:${path.join(dir, "out")}`);
    expect(fs.existsSync(path.join(dir, "out", "index.json"))).toBe(true);
    const again = await open(tar);
    fs.renameSync(dockerArchive("corrupt.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: damaged(GZ) }], [digest(TAR), digest(BIG)]), tar);
    expect((await refusal(again.verifyLayers!())).message).toBe(`${tar}: layer ${GZ_NAME} changed since the archive was read (it was ${digest(GZ)})`);
  });
});

describe("a base image (base.ts)", () => {
  it("refuses a base whose gzip layer is damaged, naming the base and the layer (it was an internal error)", async () => {
    const bad = damaged(GZ);
    dockerArchive("corrupt.tar", [{ name: TAR_NAME, data: TAR }, { name: GZ_NAME, data: bad }], [digest(TAR), digest(BIG)]);
    const err = await refusal(resolveBase("docker-archive:./corrupt.tar", { cwd: dir }));
    expect(err.message).toBe(`base docker-archive:./corrupt.tar: layer 2 (${digest(bad)}) is damaged: its gzip data is corrupt`);
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/^Z_/);
  });
});

describe("an archive that names an entry twice", () => {
  // A fake first copy of a layer, the real one after it: a streaming reader would upload the first, an indexing one
  // would check the last. Every reader refuses the archive instead.
  function twice(): string {
    const good = GOOD();
    const fake = archive([file(GZ_NAME, gzipSync(TAR))]);
    const tar = path.join(dir, "twice.tar");
    // Both archives end in two zero blocks: the fake's entries come first, then the good archive's.
    fs.writeFileSync(tar, Buffer.concat([fake.subarray(0, fake.length - 1024), fs.readFileSync(good)]));
    return tar;
  }

  it("is refused by push --from's reader, diff's reader and a base, naming the entry", async () => {
    const tar = twice();
    const said = `holds two entries named ${JSON.stringify(GZ_NAME)}; an image archive names each document and layer once`;
    expect((await refusal(open(tar, true))).message).toBe(`${tar}: ${said}`);
    expect((await refusal(open(tar))).message).toBe(`${tar}: ${said}`);
    expect((await refusal(readDockerArchive(tar, "twice.tar"))).message).toBe(`twice.tar: ${said}`);
    expect((await refusal(resolveBase("docker-archive:./twice.tar", { cwd: dir }))).message).toContain(said);
  });
});

describe("a docker archive's layer names", () => {
  it("do not decide the media type: a gzip layer named .tar is gzip, a plain one named .tar.gz is a tar", async () => {
    const tar = dockerArchive("renamed.tar", [{ name: "a.tar", data: GZ }, { name: "b.tar.gz", data: TAR }, { name: "blobs/sha256/c", data: GZ }], [digest(BIG), digest(TAR), digest(BIG)]);
    for (const verify of [true, false]) {
      const image = await open(tar, verify);
      expect(image.layers.map((l) => l.mediaType)).toEqual([
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
      ]);
    }
  });
});

describe("a layer that unpacks to much more than a tar (a decompression bomb)", () => {
  // 64 MiB of zeros after the tar's end: ~64 KiB of gzip. Every reader stops at the padding limit (tar-shape.ts).
  const BOMB = gzipSync(Buffer.concat([TAR, Buffer.alloc(64 << 20)]), { level: 1 });
  const diffId = digest(Buffer.concat([TAR, Buffer.alloc(64 << 20)]));
  const said = /is damaged: it is not a layer tar: more than 16 MiB of zeros after the tar's end marker \(at byte \d+\): not a layer, but what a decompression bomb unpacks to/;

  it("is refused by push --from's reader, diff's reader and a base", async () => {
    const tar = dockerArchive("bomb.tar", [{ name: GZ_NAME, data: BOMB }], [diffId]);
    expect((await refusal(open(tar, true))).message).toMatch(said);
    expect((await refusal(readDockerArchive(tar, "bomb.tar"))).message).toMatch(said);
    expect((await refusal(resolveBase("docker-archive:./bomb.tar", { cwd: dir }))).message).toMatch(said);
  });
});

describe("a manifest listing more layers than any image has", () => {
  it("is refused before any layer is read, by every reader", async () => {
    const names = Array.from({ length: 1001 }, () => TAR_NAME);
    // One layer, listed 1001 times (dockerArchive writes an entry per layer it lists).
    const tar = path.join(dir, "many.tar");
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: names.map(() => digest(TAR)) } }));
    const configName = `${digest(config).slice(7)}.json`;
    const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ["x:1"], Layers: names }]));
    fs.writeFileSync(tar, archive([file(TAR_NAME, TAR), file(configName, config), file("manifest.json", manifest)]));
    const said = "manifest.json: Layers lists 1001 layers; an image has at most 1000 (runtimes stack about 128)";
    expect((await refusal(open(tar, true))).message).toBe(`${tar}: ${said}`);
    expect((await refusal(readDockerArchive(tar, "many.tar"))).message).toBe(`many.tar: ${said}`);
  });
});
