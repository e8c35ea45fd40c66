// The layer sink with parallel compression: the same blob whatever the jobs and the write pattern, digests of what
// is stored, and write errors (a full disk) surfacing as before, with abort() stopping cleanly.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { createCipheriv, createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobFile, LayerSink } from "../../src/image/sink.ts";
import { Limiter } from "../../src/compress/index.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const random = (n: number, seed: number) => createCipheriv("aes-256-ctr", Buffer.alloc(32, seed), Buffer.alloc(16)).update(Buffer.alloc(n));
/** Random stretches and runs of text: about 2:1 with gzip. */
function data(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0; off < n; off += 200_000) {
    const piece = off % 400_000 === 0 ? random(200_000, off & 0xff) : Buffer.from(`line ${off} of some text\n`.repeat(10_000));
    piece.copy(out, off, 0, Math.min(piece.length, n - off));
  }
  return out;
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sink-test-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Feeds `input` through a sink: plain writes of `step` bytes, or (step 0) filling the batch view as layer.ts does. */
async function sinkBlob(input: Buffer, compression: "gzip" | "zstd", jobs: number, step: number, name: string) {
  const file = path.join(dir, name);
  const target = createBlobFile(file);
  const sink = new LayerSink(target, compression, { jobs, limiter: new Limiter(jobs) });
  let tarBytes = 0;
  sink.onBytes = (n) => (tarBytes += n);
  for (let off = 0; off < input.length; ) {
    if (step > 0) {
      const n = Math.min(step, input.length - off);
      await sink.write(input.subarray(off, off + n));
      off += n;
    } else {
      if (sink.free === 0) await sink.flush();
      const view = sink.batchView();
      const n = Math.min(view.length, input.length - off, 777_777);
      input.copy(view, 0, off, off + n);
      sink.commit(n);
      off += n;
    }
  }
  const result = await sink.finish();
  fs.closeSync(target.fd);
  return { result, bytes: fs.readFileSync(file), tarBytes };
}

describe.each(["gzip", "zstd"] as const)("LayerSink with %s", (compression) => {
  it("stores the same blob for 1, 3 and 8 jobs and any write pattern; digests match what is stored", async () => {
    const input = data(13 * 1024 * 1024 + 333);
    const a = await sinkBlob(input, compression, 1, 0, "a");
    const b = await sinkBlob(input, compression, 3, 65_537, "b");
    const c = await sinkBlob(input, compression, 8, 5 << 20, "c");
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(c.bytes.equals(a.bytes)).toBe(true);
    const back = compression === "gzip" ? zlib.gunzipSync(a.bytes) : zlib.zstdDecompressSync(a.bytes);
    expect(back.equals(input)).toBe(true);
    expect(a.result).toEqual({ diffId: sha(input), digest: sha(a.bytes), size: a.bytes.length, tarSize: input.length });
    expect(a.tarBytes).toBe(input.length);
  });

  it("a full disk fails the layer with 'no space left on device', and abort() stops cleanly", async () => {
    const fd = fs.openSync("/dev/full", "w");
    try {
      const sink = new LayerSink({ fd, label: "/dev/full", position: 0 }, compression, { jobs: 2 });
      const input = random(20 << 20, 3);
      const run = async () => {
        for (let off = 0; off < input.length; off += 1 << 20) await sink.write(input.subarray(off, off + (1 << 20)));
        await sink.finish();
      };
      await expect(run()).rejects.toThrow(/writing \/dev\/full: no space left on device/);
      await sink.abort();
      await expect(sink.finish()).rejects.toThrow(/no space left on device|aborted/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("abort() in the middle of a layer resolves and leaves no block running", async () => {
    const file = path.join(dir, "x");
    const target = createBlobFile(file);
    const sink = new LayerSink(target, compression, { jobs: 4 });
    await sink.write(random(10 << 20, 1));
    await sink.flush();
    await sink.abort();
    const size = fs.statSync(file).size;
    await new Promise((r) => setTimeout(r, 100));
    expect(fs.statSync(file).size).toBe(size);
    fs.closeSync(target.fd);
  });
});
