// The sha256 worker never keeps a process alive on its own: a process whose layers failed before hashing anything
// must still exit (the CLI once hung after printing its error, the worker's port held open).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { OffloadedSha256, releaseShared, takeShared } from "../../src/compress/offload-hash.ts";

const run = promisify(execFile);
const MODULE = path.resolve(import.meta.dirname, "../../src/compress/offload-hash.ts");

/** Runs `body` (ES module code with OffloadedSha256 imported) in a fresh Node; resolves with its exit code. */
async function exitsWithin(body: string, ms: number): Promise<number | string> {
  const code = `import { OffloadedSha256, takeShared } from ${JSON.stringify(MODULE)};\n${body}\n`;
  try {
    await run(process.execPath, ["--input-type=module", "-e", code], { timeout: ms, killSignal: "SIGKILL" });
    return 0;
  } catch (err) {
    const e = err as { killed?: boolean; code?: number };
    return e.killed ? "still running" : (e.code ?? "failed");
  }
}

describe("OffloadedSha256", () => {
  it("gives the digest node:crypto gives, over several updates", async () => {
    const a = takeShared(1 << 16).fill(7);
    const b = takeShared(1000).fill(9);
    const h = new OffloadedSha256();
    await Promise.all([h.update(a), h.update(b.subarray(0, 500))]);
    expect(await h.digest()).toBe(createHash("sha256").update(a).update(b.subarray(0, 500)).digest("hex"));
    releaseShared(a);
    releaseShared(b);
  });

  it("lets the process exit: unused, disposed without a request, and after a digest", async () => {
    expect(await exitsWithin("new OffloadedSha256().dispose();", 10_000)).toBe(0);
    expect(await exitsWithin("new OffloadedSha256();", 10_000)).toBe(0);
    expect(await exitsWithin("const h = new OffloadedSha256(); await h.update(takeShared(64)); console.log(await h.digest());", 10_000)).toBe(0);
  });
});
