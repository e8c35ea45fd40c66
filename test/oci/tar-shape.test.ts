/**
 * TarShape (src/oci/tar-shape.ts): real layer tars pass in any chunking — ours, GNU tar's in every format, PAX
 * sizes, long names — and what a decompression bomb unpacks to is refused within MAX_TRAILING of the tar's end.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_TRAILING, TarShape, TarShapeError } from "../../src/oci/tar-shape.ts";
import { encodeHeader } from "../../src/image/tar.ts";
import { archive } from "../image/tar-archive.ts";

const file = (name: string, data: Buffer) => ({ h: { name, type: "file" as const, mode: 0o644, mtime: 1 }, data });

/** Feeds `tar` in chunks of the sizes given, cycling; returns the error, if any. */
function shapeOf(tar: Buffer, chunks: number[] = [tar.length]): TarShapeError | undefined {
  const shape = new TarShape();
  try {
    let k = 0;
    for (let i = 0; i < tar.length; k++) {
      const n = Math.max(1, chunks[k % chunks.length]!);
      shape.feed(tar.subarray(i, i + n));
      i += n;
    }
    shape.end();
  } catch (err) {
    expect(err).toBeInstanceOf(TarShapeError);
    return err as TarShapeError;
  }
  return undefined;
}

/** A header changed by `edit`, its checksum made right again. */
function withChecksum(header: Buffer, edit: (h: Buffer) => void): Buffer {
  const h = Buffer.from(header);
  edit(h);
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return h;
}

const CHUNKINGS = [[1 << 20], [1], [7, 513, 3], [511], [512], [4096, 1]];
const OURS = archive([file("a", Buffer.from("hello\n")), file("b/c", Buffer.alloc(1000, 7)), { h: { name: "d", type: "directory", mode: 0o755, mtime: 1 } }]);

describe("layer tars that are sound", () => {
  it("ours, with and without record padding, in any chunking", () => {
    for (const chunks of CHUNKINGS) {
      expect(shapeOf(OURS, chunks)).toBeUndefined();
      expect(shapeOf(Buffer.concat([OURS, Buffer.alloc(10240 - (OURS.length % 10240))]), chunks)).toBeUndefined();
      expect(shapeOf(Buffer.concat([OURS, Buffer.alloc(MAX_TRAILING - 1024)]), [1 << 20])).toBeUndefined();
    }
    // An empty stream, a stream of one zero block, a tar without an end marker: runtimes read them all.
    expect(shapeOf(Buffer.alloc(0))).toBeUndefined();
    expect(shapeOf(Buffer.alloc(512))).toBeUndefined();
    expect(shapeOf(OURS.subarray(0, OURS.length - 1024))).toBeUndefined();
  });

  it("GNU tar's in its gnu, pax, ustar and v7 formats, with a long name and a symlink", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-shape-"));
    try {
      const deep = path.join(dir, "src", "x".repeat(90), "y".repeat(90));
      fs.mkdirSync(deep, { recursive: true });
      fs.writeFileSync(path.join(deep, "file"), "z".repeat(3000));
      fs.writeFileSync(path.join(dir, "src", "small"), "s");
      fs.symlinkSync("small", path.join(dir, "src", "link"));
      for (const format of ["gnu", "pax", "ustar", "v7"]) {
        // v7 and ustar cannot hold the long name: those archives get the short files only.
        const names = format === "gnu" || format === "pax" ? ["."] : ["small", "link"];
        const tar = execFileSync("tar", ["-c", `--format=${format}`, "-C", path.join(dir, "src"), ...names], { maxBuffer: 64 << 20 });
        for (const chunks of CHUNKINGS) expect(shapeOf(tar, chunks), `${format} ${String(chunks)}`).toBeUndefined();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("GNU tar's old sparse format, whose map goes on in extension blocks before the data", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-shape-"));
    try {
      // 30 data runs between holes: 4 fit the header's map, the rest take two extension blocks.
      const sparse = path.join(dir, "sparse");
      const fd = fs.openSync(sparse, "w");
      for (let i = 0; i < 30; i++) fs.writeSync(fd, Buffer.alloc(100, i + 1), 0, 100, i * 65536);
      fs.ftruncateSync(fd, 31 * 65536);
      fs.closeSync(fd);
      fs.writeFileSync(path.join(dir, "after"), "after the sparse file");
      const tar = execFileSync("tar", ["-c", "--format=gnu", "--sparse", "-C", dir, "sparse", "after"], { maxBuffer: 64 << 20 });
      expect(String.fromCharCode(tar[156]!)).toBe("S");
      expect(tar[482]).not.toBe(0);
      for (const chunks of CHUNKINGS) expect(shapeOf(tar, chunks), String(chunks)).toBeUndefined();
      // Cut between the map's extension blocks, before the data: cut short.
      expect(shapeOf(tar.subarray(0, 1024))?.message).toMatch(/cut short/);
      // What follows the sparse entry is still followed: zeros past MAX_TRAILING after its end marker are refused.
      const bomb = Buffer.concat([tar, Buffer.alloc(MAX_TRAILING + 2048)]);
      expect(shapeOf(bomb, [1 << 20])?.message).toMatch(/zeros after the tar's end marker/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an entry whose PAX header sets its size (the ustar field saying 0), and a base-256 size field", () => {
    const data = Buffer.alloc(1500, 1);
    const record = "size=1500\n";
    const line = `${record.length + 3} ${record}`;
    const paxHeader = withChecksum(encodeHeader({ name: "PaxHeader/big", type: "file", mode: 0o644, mtime: 1, size: line.length }), (h) => (h[156] = 0x78)); // 'x'
    const header = encodeHeader({ name: "big", type: "file", mode: 0o644, mtime: 1, size: 0 });
    const tar = Buffer.concat([paxHeader, Buffer.from(line), Buffer.alloc(512 - line.length), header, data, Buffer.alloc(548), Buffer.alloc(1024)]);
    expect(shapeOf(tar)).toBeUndefined();
    // The same bytes read by the ustar field alone would be garbage where the next header should be.
    const noPax = Buffer.concat([header, data, Buffer.alloc(548), Buffer.alloc(1024)]);
    expect(shapeOf(noPax)?.message).toMatch(/no valid tar header at byte 512/);
    // Base-256: the size's first byte with its high bit set, as GNU tar writes sizes from 8 GiB.
    const b256 = withChecksum(encodeHeader({ name: "c", type: "file", mode: 0o644, mtime: 1, size: 0 }), (h) => {
      h.fill(0, 124, 136);
      h[124] = 0x80;
      h.writeUInt16BE(1500, 134);
    });
    expect(shapeOf(Buffer.concat([b256, data, Buffer.alloc(548), Buffer.alloc(1024)]))).toBeUndefined();
  });

  it("a header whose checksum sums signed bytes (old tars with non-ASCII names), as Go's reader takes it", () => {
    const h = Buffer.from(encodeHeader({ name: "caf\u00e9", type: "file", mode: 0o644, mtime: 1, size: 0 }));
    let signed = 8 * 0x20;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) signed += h[i]! < 0x80 ? h[i]! : h[i]! - 0x100;
    h.write(`${signed.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    expect(shapeOf(Buffer.concat([h, Buffer.alloc(1024)]))).toBeUndefined();
  });
});

describe("what a layer tar cannot be", () => {
  it("zeros going on past MAX_TRAILING after the end marker (a bomb), whatever the chunking", () => {
    const bomb = Buffer.concat([OURS, Buffer.alloc(MAX_TRAILING + 512)]);
    for (const chunks of [[1 << 20], [65536], [4096, 7]]) {
      expect(shapeOf(bomb, chunks)?.message).toMatch(/^more than 16 MiB of zeros after the tar's end marker \(at byte \d+\): not a layer, but what a decompression bomb unpacks to$/);
    }
    // All zeros from the start: refused within MAX_TRAILING, not after the whole stream.
    const shape = new TarShape();
    const mib = Buffer.alloc(1 << 20);
    let fed = 0;
    expect(() => {
      for (; fed < 1 << 30; fed += mib.length) shape.feed(mib);
    }).toThrow(TarShapeError);
    expect(fed).toBeLessThanOrEqual(MAX_TRAILING);
  });

  it("bytes after the end marker, a lone zero block inside, a bad header, a stream cut inside an entry", () => {
    expect(shapeOf(Buffer.concat([OURS, OURS]))?.message).toMatch(/^bytes after the tar's end marker \(at byte \d+\), which runtimes do not read$/);
    const lone = Buffer.concat([OURS.subarray(0, 1024), Buffer.alloc(512), OURS.subarray(1024)]);
    expect(shapeOf(lone)?.message).toMatch(/^a single zero block at byte 1024 inside the tar/);
    const bad = Buffer.from(OURS);
    bad[1100] = 0x41; // inside the second entry's header (its name): its checksum no longer adds up
    expect(shapeOf(bad, [100])?.message).toMatch(/^no valid tar header at byte 1024/);
    expect(shapeOf(OURS.subarray(0, 700))?.message).toMatch(/^the tar is cut short \(it ends at byte 700, inside an entry\)$/);
  });
});
