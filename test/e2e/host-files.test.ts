/**
 * Host files (`paths[].source`, root system files, store files) are hashed while streaming, must be regular files,
 * and are never cut short: a file whose bytes do not match its size fails the build.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";

const execFileAsync = promisify(execFile);
const LAYER_KEY = path.resolve(import.meta.dirname, "../../src/image/layer-key.ts");

let dir: string;
beforeAll(() => ({ dir } = setUpExample("layerpack-hostfiles-")));
afterAll(() => removeExample(dir));

function config(source: string): string {
  const file = path.join(dir, "image.yaml");
  fs.writeFileSync(
    file,
    `name: host\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n` +
      `paths: [{ path: /etc/data, type: file, mode: "644", source: ${JSON.stringify(source)} }]\noutput: { path: ./out.tar }\n`,
  );
  return file;
}

describe("host files", () => {
  it("a file over 2 GiB is hashed in chunks, to the digest sha256sum gives", async () => {
    const big = path.join(dir, "big.bin");
    fs.writeFileSync(big, "");
    fs.truncateSync(big, 2 ** 31 + 5); // sparse: no disk used; too large for one readFileSync
    fs.appendFileSync(big, "end");
    // In a child process: hashing 2 GiB takes seconds, and blocking this worker that long upsets vitest's RPC.
    const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", `import { fileDigest } from ${JSON.stringify(LAYER_KEY)}; console.log(fileDigest(${JSON.stringify(big)}));`]);
    // `truncate -s $((2**31+5)) f; printf end >> f; sha256sum f`, computed once (it takes seconds)
    expect(stdout.trim()).toBe("66fd029ff54852eec367d3ce36a010998ea3e20c45ebf9429057c27077e58bce");
    fs.rmSync(big);
  });

  it("a FIFO source fails the build with a clear error instead of hanging", () => {
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../bin/layerpack.js"), "build", config("./fifo")], {
      cwd: dir,
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") },
    });
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/^layerpack: image\.yaml:\d+:\d+: paths\[0\]\.source: .*fifo is not a regular file$/m);
    expect(r.status).toBe(1);
    fs.rmSync(fifo);
  });

  it("a file that holds more bytes than its size says (it grew) fails the build; nothing is cut short", () => {
    // /proc files report size 0 and yet have content: exactly a file that grew after it was measured.
    const r = layerpack(["build", config("/proc/self/status")], { cwd: dir });
    expect(r.stderr).toMatch(/reading \/proc\/self\/status: file grew while it was being archived \(expected 0 bytes\)/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(1);
    expect(fs.existsSync(path.join(dir, "out.tar"))).toBe(false);
  });

  it("an ordinary source still builds", () => {
    fs.writeFileSync(path.join(dir, "data"), "payload\n");
    const r = layerpack(["build", config("./data"), "-q"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
  });
});
