import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GREETING, makeExampleStore, removeTree, storeHash, type ExampleStore } from "../../examples/make-store.ts";
import { storePathPattern } from "../../src/config/schema.ts";

const STORE_REF = /\/gnu\/store\/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+._?=-]+/g;

const tmpDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-example-"));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpDirs) removeTree(dir);
});

/** Store items an item refers to: store paths in its file contents and symlink targets, reduced to the item. */
function scanReferences(store: ExampleStore, item: string): string[] {
  const found = new Set<string>();
  const add = (text: string): void => {
    for (const m of text.matchAll(STORE_REF)) found.add(m[0].split("/").slice(0, 4).join("/"));
  };
  const walk = (host: string): void => {
    const st = fs.lstatSync(host);
    if (st.isSymbolicLink()) add(fs.readlinkSync(host));
    else if (st.isDirectory()) for (const name of fs.readdirSync(host)) walk(path.join(host, name));
    else add(fs.readFileSync(host).toString("latin1"));
  };
  walk(path.join(store.storeRoot, item));
  found.delete(item);
  return [...found].sort();
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const host = path.join(root, rel);
    const st = fs.lstatSync(host);
    const kind = st.isSymbolicLink() ? `-> ${fs.readlinkSync(host)}` : st.isDirectory() ? "dir" : createHash("sha256").update(fs.readFileSync(host)).digest("hex");
    out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${kind}`);
    if (st.isDirectory()) for (const name of fs.readdirSync(host).sort()) walk(path.join(rel, name));
  };
  walk("gnu");
  return out;
}

describe("store hashes", () => {
  it("gives 32-char store hashes that depend on the input", () => {
    expect(storeHash("a")).toMatch(/^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/);
    expect(storeHash("a")).not.toBe(storeHash("b"));
  });
});

describe("makeExampleStore", () => {
  const dir = tempDir();
  const store = makeExampleStore(dir);

  it("makes store items with valid store paths and a profile link", () => {
    expect(store.items.length).toBeGreaterThanOrEqual(4);
    for (const item of store.items) {
      expect(item).toMatch(storePathPattern);
      expect(fs.statSync(path.join(dir, item)).isDirectory()).toBe(true);
    }
    expect(fs.readlinkSync(store.profileLink)).toBe(store.profile);
    expect(store.items).toEqual(expect.arrayContaining([store.glibc, store.shell, store.hello, store.profile]));
  });

  it("embeds real references a scanner finds", () => {
    expect(scanReferences(store, store.glibc)).toEqual([]);
    expect(scanReferences(store, store.shell)).toContain(store.glibc);
    expect(scanReferences(store, store.hello)).toEqual([store.shell]);
    expect(scanReferences(store, store.profile)).toEqual(expect.arrayContaining([store.glibc, store.shell, store.hello]));
    const script = fs.readFileSync(path.join(dir, store.hello, "bin/hello"), "utf8");
    expect(script.startsWith(`#!${store.shell}/bin/sh\n`)).toBe(true);
  });

  it("puts the loader and libc in the profile's lib/ and leaves items read-only", () => {
    const lib = path.join(dir, store.profile, "lib");
    expect(fs.readlinkSync(path.join(lib, store.loaderName))).toBe(`${store.glibc}/lib/${store.loaderName}`);
    expect(fs.readlinkSync(path.join(lib, "libc.so.6"))).toBe(`${store.glibc}/lib/libc.so.6`);
    expect(fs.statSync(path.join(dir, store.hello, "bin/hello")).mode & 0o777).toBe(0o555);
    expect(fs.statSync(path.join(dir, store.hello)).mode & 0o777).toBe(0o555);
  });

  it("is idempotent and deterministic", () => {
    const before = listTree(dir);
    const again = makeExampleStore(dir);
    expect(again.items).toEqual(store.items);
    expect(listTree(dir)).toEqual(before);
    const elsewhere = tempDir();
    const other = makeExampleStore(elsewhere, { profileLink: path.join(elsewhere, "my-profile") });
    expect(other.items).toEqual(store.items);
    expect(listTree(elsewhere)).toEqual(before);
  });

  it("runs the shell and the hello script through the store's own loader", () => {
    const loader = path.join(dir, store.glibc, "lib", store.loaderName);
    const libPath = [...new Set(store.items.map((i) => path.join(dir, i, "lib")))].join(":");
    const shellBin = fs.realpathSync(path.join(dir, store.shell, "bin/sh"));
    const ok = spawnSync(loader, ["--library-path", libPath, shellBin, "-c", "echo ok"], { encoding: "utf8" });
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe("ok\n");
    const hello = spawnSync(loader, ["--library-path", libPath, shellBin, path.join(dir, store.hello, "bin/hello")], { encoding: "utf8" });
    expect(hello.stdout).toBe(`${GREETING}\n`);
  });
});
