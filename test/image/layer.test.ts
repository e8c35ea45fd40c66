import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createBlobFile, LayerSink, type Compression } from "../../src/image/sink.ts";
import { writeLayer, type LayerContent } from "../../src/image/layer.ts";
import { StoreError } from "../../src/errors.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const H1 = "/gnu/store/0123456789abcdfghijklmnpqrsvwxy-a";
const H2 = "/gnu/store/1123456789abcdfghijklmnpqrsvwxy-b";

let dir: string;
let root: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layer-test-"));
  root = path.join(dir, "root");
  const a = path.join(root, H1);
  fs.mkdirSync(path.join(a, "bin"), { recursive: true });
  fs.writeFileSync(path.join(a, "bin", "tool"), "#!/bin/sh\necho hi\n", { mode: 0o555 });
  fs.writeFileSync(path.join(a, "big"), Buffer.alloc(5 << 20, 7), { mode: 0o444 });
  fs.symlinkSync(`${H2}/lib`, path.join(a, "lib"));
  const b = path.join(root, H2);
  fs.mkdirSync(path.join(b, "lib"), { recursive: true });
  fs.writeFileSync(path.join(b, "lib", "Zeta"), "z", { mode: 0o444 });
  fs.writeFileSync(path.join(b, "lib", "alpha"), "a", { mode: 0o444 });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function build(content: LayerContent, compression: Compression, name = "blob") {
  const file = path.join(dir, name);
  const target = createBlobFile(file);
  const sink = new LayerSink(target, compression);
  await writeLayer(sink, content, { store: { dir: "/gnu/store", root }, mtime: 1, sourceDir: dir });
  const result = await sink.finish();
  fs.closeSync(target.fd);
  return { ...result, file, bytes: fs.readFileSync(file) };
}

const content: LayerContent = {
  items: [H1, H2],
  entries: [
    { path: "/bin", type: "symlink", target: `${H1}/bin` },
    { path: "/tmp", type: "directory", mode: "1777" },
    { path: "/etc", type: "directory", mode: "755" },
    { path: "/etc/motd", type: "file", mode: "644", content: "hello\n" },
  ].sort((x, y) => (x.path < y.path ? -1 : 1)) as LayerContent["entries"],
};

describe("writeLayer", () => {
  it.each(["none", "gzip", "zstd"] as const)("hashes the tar (diff_id) and the stored blob (digest) with %s", async (compression) => {
    const r = await build(content, compression);
    const tar = compression === "none" ? r.bytes : compression === "gzip" ? zlib.gunzipSync(r.bytes) : zlib.zstdDecompressSync(r.bytes);
    expect(r.diffId).toBe(sha(tar));
    expect(r.digest).toBe(sha(r.bytes));
    expect(r.size).toBe(r.bytes.length);
    expect(r.tarSize).toBe(tar.length);
    expect(tar.length % 512).toBe(0);
  });

  it("gives identical bytes on every run", async () => {
    for (const c of ["none", "gzip", "zstd"] as const) {
      const a = await build(content, c, `a-${c}`);
      const b = await build(content, c, `b-${c}`);
      expect(b.bytes.equals(a.bytes)).toBe(true);
    }
  });

  it("writes entries sorted by name, parents first, owned by root with the given mtime", async () => {
    const r = await build(content, "none");
    const listing = execFileSync("tar", ["--numeric-owner", "--full-time", "-tvf", r.file], { encoding: "utf8" }).trim().split("\n");
    const names = listing.map((l) => l.split(/\s+/).slice(5).join(" "));
    expect(names).toEqual([
      `bin -> ${H1}/bin`,
      "etc/",
      "etc/motd",
      "gnu/",
      "gnu/store/",
      `${H1.slice(1)}/`,
      `${H1.slice(1)}/big`,
      `${H1.slice(1)}/bin/`,
      `${H1.slice(1)}/bin/tool`,
      `${H1.slice(1)}/lib -> ${H2}/lib`,
      `${H2.slice(1)}/`,
      `${H2.slice(1)}/lib/`,
      `${H2.slice(1)}/lib/Zeta`,
      `${H2.slice(1)}/lib/alpha`,
      "tmp/",
    ]);
    for (const line of listing) expect(line).toMatch(/^\S+ 0\/0 .* 1970-01-01 00:00:01 /);
    expect(listing.find((l) => l.endsWith("tmp/"))).toMatch(/^drwxrwxrwt/);
    expect(listing.find((l) => l.endsWith("bin/tool"))).toMatch(/^-r-xr-xr-x/);
  });

  it("puts entries beside the store dir's parents in name order (a store parent before what is under it)", async () => {
    const beside: LayerContent = {
      items: [H1],
      entries: [
        { path: "/a", type: "directory", mode: "755" },
        { path: "/gnu", type: "directory", mode: "755" },
        { path: "/gnu/aa", type: "directory", mode: "755" },
        { path: "/gnu/aa/f", type: "file", mode: "644", content: "f\n" },
        { path: "/gnu/zz", type: "directory", mode: "755" },
        { path: "/gnu/zz/conf", type: "file", mode: "644", content: "c\n" },
        { path: "/z", type: "directory", mode: "755" },
      ] as LayerContent["entries"],
    };
    const r = await build(beside, "none");
    const names = execFileSync("tar", ["-tf", r.file], { encoding: "utf8" }).trim().split("\n");
    const store = names.filter((n) => n.startsWith(`${H1.slice(1)}/`));
    expect(names).toEqual(["a/", "gnu/", "gnu/aa/", "gnu/aa/f", "gnu/store/", ...store, "gnu/zz/", "gnu/zz/conf", "z/"]);
  });

  it("reproduces the store items byte for byte when extracted with GNU tar", async () => {
    const r = await build({ items: [H1, H2], entries: [] }, "gzip");
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    execFileSync("tar", ["-xzf", r.file, "-C", out]);
    execFileSync("diff", ["-r", "--no-dereference", path.join(root, "gnu"), path.join(out, "gnu")]);
    expect(fs.statSync(path.join(out, H1, "bin/tool")).mode & 0o777).toBe(0o555);
  });

  it("fails with a StoreError naming the item when a file cannot be read, and the compressor can be aborted", async () => {
    fs.mkdirSync(path.join(root, H1, "sock"), { recursive: true });
    const file = path.join(dir, "x");
    const target = createBlobFile(file);
    const sink = new LayerSink(target, "gzip");
    const server = (await import("node:net")).createServer();
    await new Promise<void>((res) => server.listen(path.join(root, H1, "sock", "s"), res));
    try {
      await expect(writeLayer(sink, { items: [H1], entries: [] }, { store: { dir: "/gnu/store", root }, mtime: 1, sourceDir: dir })).rejects.toThrow(
        new StoreError(`${H1}/sock/s is a socket; store items can hold only regular files, directories and symlinks`),
      );
    } finally {
      server.close();
      await sink.abort();
      fs.closeSync(target.fd);
    }
  });

  it.each([
    ["a small file", "bin/tool"],
    ["the last batch of a large file", "big"],
  ])("fails with a StoreError when %s grows after its size was taken", async (_what, rel) => {
    const file = path.join(dir, "x");
    const target = createBlobFile(file);
    const sink = new LayerSink(target, "none");
    // The file grows between the open (its size taken) and the read: onEntry is called in between.
    const onEntry = (e: { rel: string }) => e.rel === rel && fs.appendFileSync(path.join(root, H1, rel), "more");
    try {
      await expect(writeLayer(sink, { items: [H1], entries: [] }, { store: { dir: "/gnu/store", root }, mtime: 1, sourceDir: dir, onEntry })).rejects.toThrow(
        /^reading \/gnu\/store\/0123456789abcdfghijklmnpqrsvwxy-a\/(bin\/tool|big): file grew while it was being archived \(expected \d+ bytes\)/,
      );
    } finally {
      await sink.abort();
      fs.closeSync(target.fd);
    }
  });
});
