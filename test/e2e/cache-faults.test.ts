/**
 * Cache faults and interrupted builds: an unusable cache directory is one warning and a build without it;
 * `cache info` creates nothing; SIGINT/SIGTERM remove the build's temp files and keep the previous output; temp
 * files a killed (SIGKILL) build left are collected by the next build.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { requireTool } from "../fixtures/tools.ts";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
let dir: string;

beforeAll(() => {
  ({ dir } = setUpExample("layerpack-cachefaults-"));
  // Random bytes compress slowly: a build of this takes long enough to be interrupted.
  const big = fs.openSync(path.join(dir, "big.bin"), "w");
  for (let i = 0; i < 128; i++) fs.writeSync(big, randomBytes(1 << 20));
  fs.closeSync(big);
  fs.mkdirSync(path.join(dir, "out"));
});
afterAll(() => removeExample(dir));

function config(name: string, source?: string): string {
  const file = path.join(dir, `${name}.yaml`);
  const paths = source ? `paths: [{ path: /data/big.bin, type: file, mode: "644", source: ${source} }]\n` : "";
  fs.writeFileSync(file, `name: ${name}\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n${paths}output: { path: ./out/image.tar }\n`);
  return file;
}

const temps = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).filter((n) => n !== "image.tar") : []);

/** Starts a build, waits until it has a temp file in `watchDir`, then sends `signal`; resolves with its exit. */
function interrupt(args: string[], watchDir: string, signal: NodeJS.Signals, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; sawTemp: boolean }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, ...env } });
    let stderr = "";
    let sawTemp = false;
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      // a layer being written (not a small memo file renamed at once)
      if (temps(watchDir).some((n) => n.startsWith("layer-") || n.startsWith(".image.tar.tmp-")) && !sawTemp) {
        sawTemp = true;
        setTimeout(() => child.kill(signal), 100);
      }
    }, 10);
    child.on("exit", (code, sig) => {
      clearInterval(poll);
      resolve({ code, signal: sig, stderr, sawTemp });
    });
  });
}

describe("cache faults", () => {
  it("a cache directory that cannot be made is one warning, and the build goes on without it", () => {
    fs.writeFileSync(path.join(dir, "a-file"), "");
    const r = layerpack(["build", config("small"), "--cache-dir", "./a-file/cache"], { cwd: dir });
    expect(r.stderr.match(/warning/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/^layerpack: warning: cannot use the cache directory .*a-file\/cache: .*; building without a cache/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(dir, "out/image.tar"))).toBe(true);
  });

  it.runIf(process.getuid?.() !== 0 || requireTool("setpriv", "util-linux"))("an existing cache directory this user cannot write is one warning, before any work", () => {
    const cache = path.join(dir, "root-cache");
    fs.mkdirSync(path.join(cache, "tmp"), { recursive: true });
    execFileSync("chmod", ["-R", "a+rX", dir]);
    execFileSync("chmod", ["0777", path.join(dir, "out")]);
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) execFileSync("chmod", ["-R", "a-w", cache]);
    const cmd = [...(asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []), process.execPath, BIN, "build", config("small"), "--cache-dir", cache];
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: dir, encoding: "utf8", env: { ...process.env, HOME: dir } });
    execFileSync("chmod", ["-R", "u+w", cache]);
    expect(r.stderr).toMatch(/^layerpack: warning: cannot use the cache directory .*root-cache: it is not writable; building without a cache/);
    expect(r.stderr.match(/warning/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
  });

  it("cache info creates nothing: a default cache that does not exist yet is shown empty", () => {
    const missing = path.join(dir, "no-cache-here");
    // (A --cache-dir that does not exist is an error: test/e2e/cli-conventions.test.ts.)
    const r = layerpack(["cache", "info"], { cwd: dir, env: { LAYERPACK_CACHE_DIR: missing } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/layers 0, blobs 0/);
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe("hostile cache files", () => {
  /** A build (or cache command) that cannot hang the test: a sync open of a FIFO ignores SIGTERM, so SIGKILL. */
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8", timeout: 30_000, killSignal: "SIGKILL" });
  const sha = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");
  const fifo = (f: string) => {
    fs.rmSync(f, { recursive: true, force: true });
    execFileSync("mkfifo", [f]);
  };
  const each = (d: string, f: (file: string) => void) => fs.readdirSync(d).forEach((n) => f(path.join(d, n)));

  // gzip: layers built in parallel, cached as loose blobs; none: streamed into the archive, cached as a pack of it.
  it.each(["gzip", "none"])("FIFOs and directories in place of cache files (%s): no hang, no crash, a miss, the same image", (compression) => {
    const out = path.join(dir, `fifo-${compression}`);
    fs.mkdirSync(out);
    const conf = path.join(dir, `fifo-${compression}.yaml`);
    fs.writeFileSync(conf, `name: fifo\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\ncompression: ${compression}\noutput: { path: ${out}/image.tar }\n`);
    const clean = run(["build", conf, "--no-cache"]);
    expect(clean.status, clean.stderr).toBe(0);
    const want = sha(path.join(out, "image.tar"));
    const cache = path.join(dir, `cache-fifo-${compression}`);
    expect(run(["build", conf, "--cache-dir", cache]).status).toBe(0);

    const [entry, ...entries] = fs.readdirSync(path.join(cache, "layers"));
    fifo(path.join(cache, "layers", entry!));
    for (const sub of ["scan", "plans", "outputs"]) each(path.join(cache, sub), fifo);
    if (compression === "gzip") {
      const [b1, b2] = fs.readdirSync(path.join(cache, "blobs", "sha256"));
      fifo(path.join(cache, "blobs", "sha256", b1!));
      fs.rmSync(path.join(cache, "blobs", "sha256", b2!));
      fs.mkdirSync(path.join(cache, "blobs", "sha256", b2!));
    } else {
      // Entries that claim 0 bytes at offset 0, so that the blob's size cannot give the FIFO away.
      for (const e of entries) {
        const file = path.join(cache, "layers", e);
        fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), size: 0, offset: 0 }));
      }
      each(path.join(cache, "packs"), fifo);
    }
    const info = run(["cache", "info", "--cache-dir", cache]);
    expect([info.status, info.signal], info.stderr).toEqual([0, null]);

    const again = run(["build", conf, "--cache-dir", cache]);
    expect([again.status, again.signal], again.stderr).toEqual([0, null]);
    expect(again.stderr).not.toMatch(/internal error/);
    expect(sha(path.join(out, "image.tar"))).toBe(want);
    // What was rebuilt is cached again: the next build reuses every layer.
    fs.rmSync(path.join(out, "image.tar"));
    const third = run(["build", conf, "--cache-dir", cache]);
    expect(third.stderr).toMatch(/: 0 layers built/);
    expect(sha(path.join(out, "image.tar"))).toBe(want);
    const prune = run(["cache", "prune", "--all", "--cache-dir", cache, "--json"]);
    expect([prune.status, prune.signal], prune.stderr).toEqual([0, null]);
    expect(JSON.parse(prune.stdout)).toMatchObject({ dir: cache, layersRemoved: expect.any(Number), blobsRemoved: expect.any(Number), bytesFreed: expect.any(Number) });
    // An option of prune given to info is refused, not ignored.
    expect([run(["cache", "info", "--all", "--cache-dir", cache]).status, run(["cache", "info", "--older-than", "1d", "--cache-dir", cache]).stderr.split("\n")[0]]).toEqual([2, "layerpack cache: --older-than is an option of cache prune; cache info only shows the cache"]);
    // One of the cache's own directories replaced by a link: prune refuses (exit 1: the directory is wrong, not
    // the command line), and what the link points to is left alone.
    const elsewhere = fs.mkdtempSync(path.join(dir, "elsewhere-"));
    fs.writeFileSync(path.join(elsewhere, "keep"), "x");
    fs.rmSync(path.join(cache, "tmp"), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(cache, "tmp"));
    const linked = run(["cache", "prune", "--all", "--cache-dir", cache]);
    expect([linked.status, linked.stderr]).toEqual([1, `layerpack: cannot prune the cache directory ${cache}: ${path.join(cache, "tmp")} is a symbolic link, not a directory; the cache's directories are never used through links (remove it)\n`]);
    expect(fs.readdirSync(elsewhere)).toEqual(["keep"]);
  });
});

describe("interrupted builds", () => {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig} removes the temp files (cache and beside the output) and keeps the previous output`, async () => {
      fs.writeFileSync(path.join(dir, "out/image.tar"), "previous");
      const cache = path.join(dir, `cache-${sig}`);
      const cached = await interrupt(["build", config("big", "./big.bin"), "--cache-dir", cache], path.join(cache, "tmp"), sig);
      expect(cached.sawTemp).toBe(true);
      expect(cached.stderr).toMatch(/layerpack build: interrupted; temp files removed, any previous output kept/);
      expect(cached.code).toBe(130);
      expect(temps(path.join(cache, "tmp"))).toEqual([]);
      const uncached = await interrupt(["build", config("big", "./big.bin"), "--no-cache"], path.join(dir, "out"), sig);
      expect(uncached.sawTemp).toBe(true);
      expect(uncached.code).toBe(130);
      expect(temps(path.join(dir, "out"))).toEqual([]);
      expect(fs.readFileSync(path.join(dir, "out/image.tar"), "utf8")).toBe("previous");
    });
  }

  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig} stops a TS config that loops without ever yielding, at once`, async () => {
      const file = path.join(dir, "loop.config.ts");
      const started = path.join(dir, `loop-${sig}.started`);
      // The marker says the config runs (so the command is up and handles signals): a fixed wait flaked on a busy machine.
      fs.writeFileSync(file, `import * as fs from "node:fs";\nfs.writeFileSync(${JSON.stringify(started)}, "");\nlet n: number = 0;\nwhile (true) n++;\nexport default {};\n`);
      const child = spawn(process.execPath, [BIN, "build", file], { cwd: dir });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      while (!fs.existsSync(started)) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      // Without its own thread the loop would hold the one that handles signals, and this would wait for ever.
      child.kill(sig);
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect([code, stderr]).toEqual([130, "layerpack build: interrupted; temp files removed, any previous output kept\n"]);
    });
  }

  it("SIGINT ends a command that waits on a registry which never answers", { timeout: 15_000 }, async () => {
    const http = await import("node:http");
    let asked!: () => void;
    const request = new Promise<void>((r) => (asked = r));
    const server = http.createServer(() => asked()); // accepts, never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as import("node:net").AddressInfo).port;
    try {
      const child = spawn(process.execPath, [BIN, "inspect", `127.0.0.1:${port}/x:1`], { cwd: dir, env: { ...process.env, LAYERPACK_REGISTRY_TIMEOUT: "600" } });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      await request; // the command is up and waiting (a fixed wait flaked on a busy machine)
      child.kill("SIGINT");
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect([code, stderr]).toEqual([130, "layerpack inspect: interrupted\n"]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("SIGINT while -o - waits on a reader that does not read removes the archive's temp file; one a killed stream left is collected", { timeout: 30_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(dir, "tmpdir-"));
    const child = spawn(process.execPath, [BIN, "build", config("big", "./big.bin"), "-o", "-", "--no-cache"], { cwd: dir, env: { ...process.env, TMPDIR: tmp }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // Nobody reads stdout: once the archive is written, the copy to it blocks on the full pipe.
    let last = -1;
    for (let stable = 0; stable < 5; ) {
      await new Promise((r) => setTimeout(r, 100));
      const names = fs.readdirSync(tmp).filter((n) => n.startsWith("layerpack-stdout-"));
      const size = names.length === 1 ? fs.statSync(path.join(tmp, names[0]!)).size : -1;
      stable = size > 128 << 20 && size === last ? stable + 1 : 0;
      last = size;
    }
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect([code, stderr.split("\n").filter(Boolean).at(-1)]).toEqual([130, "layerpack build: interrupted; temp files removed, any previous output kept"]);
    // (Node keeps its compile cache in TMPDIR too.)
    const ours = () => fs.readdirSync(tmp).filter((n) => n !== "node-compile-cache");
    expect(ours()).toEqual([]);
    // A temp file whose owner is gone (a stream killed with SIGKILL) is removed by the next -o -.
    const owner = execFileSync(process.execPath, ["--input-type=module", "-e", `import { tempName } from ${JSON.stringify(path.resolve("src/util/temp.ts"))}; console.log(tempName("layerpack-stdout"));`], { encoding: "utf8" }).trim();
    fs.writeFileSync(path.join(tmp, `${owner}.tar`), "left by a killed build");
    fs.writeFileSync(path.join(tmp, `.${owner}.tar.tmp-${owner.slice("layerpack-stdout-".length)}`), "killed while the archive was written");
    fs.writeFileSync(path.join(tmp, "someone-elses.tar"), "kept");
    const next = spawnSync(process.execPath, [BIN, "build", config("small"), "-o", "-", "--no-cache"], { cwd: dir, env: { ...process.env, TMPDIR: tmp }, maxBuffer: 64 << 20 });
    expect(next.status, next.stderr.toString()).toBe(0);
    expect(ours()).toEqual(["someone-elses.tar"]);
  });

  it("SIGINT during a push's upload ends it at once, said once", { timeout: 20_000 }, async () => {
    const http = await import("node:http");
    let uploading!: () => void;
    const upload = new Promise<void>((r) => (uploading = r));
    // A registry that takes uploads and never finishes reading one.
    const server = http.createServer((q, res) => {
      if (q.url === "/v2/") return res.writeHead(200).end("{}");
      if (q.method === "HEAD" || q.method === "GET") return res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "no" }] }));
      if (q.method === "POST") return res.writeHead(202, { location: `/v2/x/y/blobs/uploads/u${Math.random()}` }).end();
      uploading();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as import("node:net").AddressInfo).port;
    try {
      const child = spawn(process.execPath, [BIN, "push", config("big", "./big.bin"), "--to", `127.0.0.1:${port}/x/y:1`, "--no-cache"], { cwd: dir, env: { ...process.env, LAYERPACK_REGISTRY_TIMEOUT: "600" } });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      await upload;
      child.kill("SIGINT");
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      // Once, with the cleanup said: the grace timer's forced exit (after 3 s) would have said "interrupted" again.
      expect([code, stderr.split("\n").filter((l) => /interrupted/.test(l))]).toEqual([130, ["layerpack push: interrupted; temp files removed, any previous output kept"]]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("temp files of a build killed with SIGKILL are collected by the next build", async () => {
    const cache = path.join(dir, "cache-kill");
    const killed = await interrupt(["build", config("big", "./big.bin"), "--cache-dir", cache], path.join(cache, "tmp"), "SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    expect(temps(path.join(cache, "tmp")).length).toBeGreaterThan(0);
    const killedBeside = await interrupt(["build", config("big", "./big.bin"), "--no-cache"], path.join(dir, "out"), "SIGKILL");
    expect(killedBeside.signal).toBe("SIGKILL");
    expect(temps(path.join(dir, "out")).length).toBeGreaterThan(0);
    const next = layerpack(["build", config("small"), "--cache-dir", cache], { cwd: dir });
    expect(next.status, next.stderr).toBe(0);
    expect(temps(path.join(cache, "tmp"))).toEqual([]);
    expect(temps(path.join(dir, "out"))).toEqual([]);
  });
});
