// Deterministic parallel compression: the bytes depend only on the input (never on jobs or write chunking), they
// are what a one-block-at-a-time reference gives, and GNU gzip, zstd and node's decoders read them back.
import { spawnSync } from "node:child_process";
import { createCipheriv } from "node:crypto";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, compressBuffer, GZIP_HEADER, Limiter, ParallelCompressor, type Codec } from "../../src/compress/index.ts";
import { zstdFrameEnd } from "../../src/compress/codecs.ts";

/** Seeded PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible bytes (an AES-CTR keystream). */
function randomData(n: number, seed: number): Buffer {
  const key = Buffer.alloc(32, seed);
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

/** Text-like bytes that compress about 3:1, with repeats further apart than one block. */
function textData(n: number, seed: number): Buffer {
  const r = rng(seed);
  const words = ["the", "buffer", "stream", "config", "value", "return", "struct", "error", "module", "/gnu/store/", "lib", "\n", "  ", "0x7f"];
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const w = r() < 0.2 ? Math.floor(r() * 1e6).toString(36) : words[Math.floor(r() * words.length)]!;
    parts.push(w, " ");
    len += w.length + 1;
  }
  return Buffer.from(parts.join("")).subarray(0, n);
}

/** Mixed: text with random stretches, like a tar of a store. */
function mixedData(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  const r = rng(seed);
  for (let off = 0; off < n; ) {
    const len = Math.min(n - off, Math.floor(r() * 300_000) + 1);
    (r() < 0.5 ? randomData(len, off & 0xff) : textData(len, off)).copy(out, off);
    off += len;
  }
  return out;
}

/** Writes `data` in chunks of random sizes (1 byte to `max`), some of them empty. */
async function compressChunked(data: Buffer, codec: Codec, jobs: number, seed: number, max: number, limiter = new Limiter(jobs)): Promise<Buffer> {
  const out: Buffer[] = [];
  const c = new ParallelCompressor({ codec, jobs, limiter, onData: (b) => out.push(b) });
  const r = rng(seed);
  for (let off = 0; off < data.length; ) {
    const n = r() < 0.05 ? 0 : Math.min(data.length - off, 1 + Math.floor(r() * r() * max));
    // A copy, released when the compressor says so: it must not depend on the caller's buffer afterwards.
    await c.write(Buffer.from(data.subarray(off, off + n)));
    off += n;
  }
  await c.end();
  return Buffer.concat(out);
}

/** The definition, one block at a time with node's synchronous calls. */
function reference(data: Buffer, codec: Codec): Buffer {
  const B = BLOCK_SIZE[codec];
  const blocks: Buffer[] = [];
  const count = Math.max(1, Math.ceil(data.length / B));
  for (let k = 0; k < count; k++) {
    const block = data.subarray(k * B, (k + 1) * B);
    const last = k === count - 1;
    if (codec === "zstd") {
      // With room for the whole frame in one output buffer, zstd compresses it in a single pass.
      const params = { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 0 };
      blocks.push(zlib.zstdCompressSync(block, { params, chunkSize: 2 * block.length + 1024 }));
    } else {
      const dictionary = k > 0 ? data.subarray(k * B - 32768, k * B) : undefined;
      blocks.push(
        zlib.deflateRawSync(block, {
          level: 6,
          memLevel: 9,
          finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
          ...(dictionary ? { dictionary } : {}),
        }),
      );
    }
  }
  if (codec === "zstd") return Buffer.concat(blocks);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length % 2 ** 32, 4);
  return Buffer.concat([GZIP_HEADER, ...blocks, trailer]);
}

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}

function decompressAll(out: Buffer, codec: Codec, data: Buffer): void {
  if (codec === "gzip") {
    expect(zlib.gunzipSync(out).equals(data)).toBe(true);
    expect(tool("gzip", ["-dc"], out).equals(data)).toBe(true);
    tool("gzip", ["-t"], out);
  } else {
    expect(zlib.zstdDecompressSync(out).equals(data)).toBe(true);
    expect(tool("zstd", ["-dc"], out).equals(data)).toBe(true);
    tool("zstd", ["-t", "-q"], out);
  }
}

describe.each(["gzip", "zstd"] as const)("parallel %s", (codec) => {
  const B = BLOCK_SIZE[codec];
  const sizes = [0, 1, B - 1, B, B + 1, 3 * B + 12345];
  const kinds = { random: randomData, text: textData, mixed: mixedData } as const;

  for (const size of sizes) {
    for (const [kind, make] of Object.entries(kinds)) {
      if (size <= 1 && kind !== "text") continue;
      it(`${kind} input of ${size} bytes: the same bytes for jobs 1, 4, 16 and any chunking, read back by every decoder`, async () => {
        const data = make(size, size + kind.length);
        const one = await compressBuffer(data, { codec, jobs: 1, limiter: new Limiter(1) });
        expect(one.equals(reference(data, codec))).toBe(true);
        const four = await compressChunked(data, codec, 4, size + 1, 300_000);
        const sixteen = await compressChunked(data, codec, 16, size + 2, 70_000);
        expect(four.equals(one)).toBe(true);
        expect(sixteen.equals(one)).toBe(true);
        decompressAll(one, codec, data);
      });
    }
  }

  it("tiny writes (1 to 50 bytes) give the same bytes as one write", async () => {
    const data = mixedData(B + 5000, 7);
    const whole = await compressBuffer(data, { codec, jobs: 2, limiter: new Limiter(2) });
    expect((await compressChunked(data, codec, 3, 9, 50)).equals(whole)).toBe(true);
  });

  it("streams sharing a small process-wide limit give the same bytes as alone", async () => {
    const inputs = [mixedData(3 * B + 1, 1), textData(2 * B, 2), randomData(B + 7, 3)];
    const alone = await Promise.all(inputs.map((d) => compressBuffer(d, { codec, jobs: 1, limiter: new Limiter(1) })));
    const limiter = new Limiter(2);
    const shared = await Promise.all(inputs.map((d, i) => compressChunked(d, codec, 8, i, 1 << 20, limiter)));
    shared.forEach((s, i) => expect(s.equals(alone[i]!)).toBe(true));
  });

  it("keeps the ratio of single-stream zlib within a few percent", async () => {
    const data = mixedData(6 * B, 11);
    const ours = await compressBuffer(data, { codec, jobs: 4 });
    const single =
      codec === "gzip"
        ? zlib.gzipSync(data, { level: 6, memLevel: 9 })
        : zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 0 } });
    expect(ours.length / single.length).toBeLessThan(1.03);
  });

  it("with onDataCopies, frees each block's output once emitted, and the copies are the same bytes", async () => {
    const data = mixedData(3 * B + 999, 13);
    const whole = await compressBuffer(data, { codec, jobs: 2, limiter: new Limiter(2) });
    const copies: Buffer[] = [];
    const seen: Buffer[] = [];
    const c = new ParallelCompressor({
      codec,
      jobs: 2,
      limiter: new Limiter(2),
      onDataCopies: true,
      onData: (chunk) => {
        copies.push(Buffer.from(chunk));
        seen.push(chunk);
      },
    });
    await c.write(data);
    await c.end();
    expect(Buffer.concat(copies).equals(whole)).toBe(true);
    // The three full blocks' outputs were detached after onData returned (their views are empty now); the small
    // last block's output came from Node's buffer pool, which other buffers share, and was left alone.
    expect(seen.filter((s) => s.length === 0).length).toBe(3);
  });

  it("bounds the blocks in flight and releases every chunk it was given", async () => {
    const data = randomData(10 * B, 5);
    let released = 0;
    let written = 0;
    const limiter = new Limiter(2);
    const c = new ParallelCompressor({ codec, jobs: 2, limiter, onData: () => undefined });
    const chunk = B / 2;
    for (let off = 0; off < data.length; off += chunk) {
      await c.write(data.subarray(off, off + chunk), () => released++);
      written++;
      // Taken but not yet released: the block being filled and at most jobs + 1 dispatched blocks (two chunks each).
      expect(written - released).toBeLessThanOrEqual(2 * (2 + 2));
    }
    await c.end();
    expect(released).toBe(written);
  });

  it("fails the stream when onData throws, and rejects later writes", async () => {
    const c = new ParallelCompressor({
      codec,
      jobs: 2,
      onData: () => {
        throw new Error("disk full");
      },
    });
    const data = randomData(3 * B, 1);
    await expect(
      (async () => {
        for (let off = 0; off < data.length; off += B / 4) await c.write(data.subarray(off, off + B / 4));
        await c.end();
      })(),
    ).rejects.toThrow("disk full");
    await expect(c.write(Buffer.from("x"))).rejects.toThrow("disk full");
  });

  it("abort waits for running blocks, emits nothing more, and rejects later writes", async () => {
    const out: Buffer[] = [];
    const c = new ParallelCompressor({ codec, jobs: 4, onData: (b) => out.push(b) });
    await c.write(randomData(4 * B + 1, 2));
    await c.abort();
    const emitted = out.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(out.length).toBe(emitted);
    await expect(c.write(Buffer.from("x"))).rejects.toThrow(/aborted/);
  });
});

describe("zstd frames", () => {
  it("are one per block, each with its content size", async () => {
    const B = BLOCK_SIZE.zstd;
    const data = textData(2 * B + 3, 4);
    const out = await compressBuffer(data, { codec: "zstd", jobs: 2 });
    const ends: number[] = [];
    for (let at = 0; at < out.length; at = ends.at(-1)!) ends.push(zstdFrameEnd(out, at)!);
    expect(ends).toHaveLength(3);
    expect(ends.at(-1)).toBe(out.length);
  });
});

describe("gzip member", () => {
  it("is one member with mtime 0 and no name, like gzip -n", async () => {
    const out = await compressBuffer(textData(1000, 1), { codec: "gzip" });
    expect(out.subarray(0, 10)).toEqual(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
    const listed = tool("gzip", ["-lv"], out).toString();
    expect(listed).toContain("1000");
  });
});
