/**
 * perms: glob matching, rule order, which rules may touch a store layer (cache keys), the tar headers they produce
 * in a real layer (owner ids, empty owner names for non-root), and warnings for globs matching nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { compileGlob, literalPrefix, mayMatchUnder, PermsMatcher, unmatchedPermsWarnings } from "../../src/image/perms.ts";
import { createBlobFile, LayerSink } from "../../src/image/sink.ts";
import { writeLayer } from "../../src/image/layer.ts";
import { layerKey } from "../../src/image/layer-key.ts";
import { imageSpecSchema } from "../../src/config/schema.ts";
import { findTool } from "../fixtures/tools.ts";

const perm = (p: unknown) => imageSpecSchema.shape.perms.parse([p])[0]!;

describe("compileGlob", () => {
  const table: [string, string, boolean][] = [
    ["/data", "/data", true],
    ["/data/", "/data", true],
    ["/data", "/data/x", false],
    ["/data/*", "/data/x", true],
    ["/data/*", "/data/x/y", false],
    ["/data/**", "/data/x/y", true],
    ["/data/**", "/data", false],
    ["/a/**/b", "/a/b", true],
    ["/a/**/b", "/a/x/y/b", true],
    ["/a/**/b", "/a/xb", false],
    ["/a/?", "/a/b", true],
    ["/a/?", "/a/bc", false],
    ["/a/[bc]", "/a/c", true],
    ["/a/[!bc]", "/a/c", false],
    ["/a/[!bc]", "/a/d", true],
    ["/a.b", "/aXb", false],
    ["/a\\*", "/a*", true],
    ["/a\\*", "/ab", false],
    ["/nix/store/*-hello/bin/*", "/nix/store/abc-hello/bin/hello", true],
    ["/nix/store/*-hello/bin/*", "/nix/store/abc-hello2/bin/hello", false],
  ];
  for (const [glob, p, want] of table) it(`${glob} ${want ? "matches" : "does not match"} ${p}`, () => expect(compileGlob(glob).test(p)).toBe(want));

  it("literal prefixes and reach", () => {
    expect(literalPrefix("/data/**")).toBe("/data/");
    expect(literalPrefix("/data")).toBe("/data");
    expect(literalPrefix("/nix/store/*-x")).toBe("/nix/store/");
    expect(mayMatchUnder("/nix/store/*-x/**", "/nix/store/abc-y")).toBe(true);
    expect(mayMatchUnder("/data/**", "/nix/store/abc-y")).toBe(false);
    expect(mayMatchUnder("/nix", "/nix/store/abc-y")).toBe(true);
    expect(mayMatchUnder("/nix/store/abc-y/bin", "/nix/store/abc-y")).toBe(true);
    expect(mayMatchUnder("/nix/store/abc-z/bin", "/nix/store/abc-y")).toBe(false);
  });
});

describe("PermsMatcher", () => {
  it("applies rules in order, later fields overriding, and records what matched", () => {
    const m = new PermsMatcher([perm({ path: "/data/**", uid: 5, mode: "700" }), perm({ path: "/data/pub/*", mode: "755" }), perm({ path: "/none", gid: 1 })]);
    expect(m.apply("/data/pub/x", { mode: 0o644, uid: 0, gid: 0 })).toEqual({ mode: 0o755, uid: 5, gid: 0 });
    expect(m.apply("/etc", { mode: 0o755, uid: 0, gid: 0 })).toEqual({ mode: 0o755, uid: 0, gid: 0 });
    expect([...m.matched].sort()).toEqual(["/data/**", "/data/pub/*"]);
    expect(unmatchedPermsWarnings([perm({ path: "/data/**", uid: 1 }), perm({ path: "/none", gid: 1 })], m.matched)).toEqual([
      { key: ["perms", 1], text: "/none matches nothing in the image; check the path (globs: * ? ** [...])" },
    ]);
  });

  it("the schema wants something to set and ids in range", () => {
    expect(() => perm({ path: "/x" })).toThrow(/at least one of uid, gid or mode/);
    expect(() => perm({ path: "x", uid: 1 })).toThrow(/absolute glob/);
    expect(() => perm({ path: "/x", uid: -1 })).toThrow(/at least 0/);
    expect(() => perm({ path: "/x", mode: "9" })).toThrow(/octal/);
  });
});

describe("perms in a layer", () => {
  let dir: string;
  let root: string;
  const ITEM = "/gnu/store/0123456789abcdfghijklmnpqrsvwxy-app";
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "perms-test-"));
    root = path.join(dir, "root");
    fs.mkdirSync(path.join(root, ITEM, "bin"), { recursive: true });
    fs.writeFileSync(path.join(root, ITEM, "bin/app"), "x", { mode: 0o555 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("sets owners and modes in the headers of store and custom entries; keys change only where a rule reaches", async () => {
    const perms = [perm({ path: "/gnu/store/*-app/bin/*", uid: 1000, gid: 100, mode: "0750" }), perm({ path: "/data", uid: 1000 })];
    const ctx = { store: { dir: "/gnu/store", root }, mtime: 1, sourceDir: dir, perms };
    const file = path.join(dir, "layer.tar");
    const target = createBlobFile(file);
    const sink = new LayerSink(target, "none");
    const content = { items: [ITEM], entries: [{ path: "/data", type: "directory" as const, mode: "755" }, { path: "/etc", type: "directory" as const, mode: "755" }] };
    const facts = await writeLayer(sink, content, ctx);
    await sink.finish();
    fs.closeSync(target.fd);
    expect(facts.permsMatched).toEqual(["/data", "/gnu/store/*-app/bin/*"]);
    if (findTool("tar")) {
      const listing = execFileSync("tar", ["-tvf", file], { encoding: "utf8" });
      expect(listing).toMatch(/^-rwxr-x--- 1000\/100 .*-app\/bin\/app$/m);
      expect(listing).toMatch(/^drwxr-xr-x 1000\/root .* data\/$/m);
      expect(listing).toMatch(/^drwxr-xr-x root\/root .* etc\/$/m);
    }
    const storeOnly = { items: [ITEM], entries: [] };
    const base = { store: ctx.store, mtime: 1, sourceDir: dir };
    // A rule that cannot reach the store leaves store layers' keys (and cached blobs) alone; one that can changes them.
    expect(layerKey(storeOnly, { ...base, perms: [perm({ path: "/data", uid: 1 })] }, "gzip")).toBe(layerKey(storeOnly, base, "gzip"));
    expect(layerKey(storeOnly, { ...base, perms: [perms[0]!] }, "gzip")).not.toBe(layerKey(storeOnly, base, "gzip"));
  });

  it("a store item's modes are what its NAR says (0555 or 0444), whatever the copy has; a perms rule sets any on purpose", async () => {
    // Odd modes as a copied store may have them: setuid, world-writable, sticky; and a store copied under umask
    // 077, or made writable to be deleted: the same items, so the same bytes.
    const odd: [string, "file" | "dir", number][] = [
      ["bin/su", "file", 0o6755], ["open", "file", 0o666], ["tmp", "dir", 0o1777],
      ["private", "file", 0o700], ["owner-only", "file", 0o600], ["closed", "dir", 0o700],
    ];
    for (const [rel, kind, mode] of odd) {
      const at = path.join(root, ITEM, rel);
      if (kind === "dir") fs.mkdirSync(at);
      else fs.writeFileSync(at, "x");
      fs.chmodSync(at, mode);
    }
    const layer = async (perms: ReturnType<typeof perm>[]) => {
      const file = path.join(dir, `layer-${perms.length}.tar`);
      const target = createBlobFile(file);
      const sink = new LayerSink(target, "none");
      await writeLayer(sink, { items: [ITEM], entries: [] }, { store: { dir: "/gnu/store", root }, mtime: 1, sourceDir: dir, perms });
      await sink.finish();
      fs.closeSync(target.fd);
      return execFileSync("tar", ["-tvf", file], { encoding: "utf8" });
    };
    const plain = await layer([]);
    expect(plain).toMatch(/^-r-xr-xr-x root\/root .*-app\/bin\/su$/m);
    expect(plain).toMatch(/^-r--r--r-- root\/root .*-app\/open$/m);
    expect(plain).toMatch(/^dr-xr-xr-x root\/root .*-app\/tmp\/$/m);
    expect(plain).toMatch(/^-r-xr-xr-x root\/root .*-app\/private$/m);
    expect(plain).toMatch(/^-r--r--r-- root\/root .*-app\/owner-only$/m);
    expect(plain).toMatch(/^dr-xr-xr-x root\/root .*-app\/closed\/$/m);
    expect(plain).toMatch(/^-r-xr-xr-x root\/root .*-app\/bin\/app$/m); // the rest as in the store
    const chosen = await layer([perm({ path: "/gnu/store/*-app/bin/su", mode: "4755" })]);
    expect(chosen).toMatch(/^-rwsr-xr-x root\/root .*-app\/bin\/su$/m);
  });
});
