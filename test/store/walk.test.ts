/** The walk's lazy mode (the layer writer's): the same entries as a stating walk, and files that change type between
 * reading the directory and opening them are errors, never read through a symlink or waited on as a FIFO. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import { openEntry, walkTree, type WalkEntry } from "../../src/store/walk.ts";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-walk-"));
  const tree = path.join(dir, "tree");
  fs.mkdirSync(path.join(tree, "bin"), { recursive: true });
  fs.writeFileSync(path.join(tree, "bin/tool"), "#!/bin/sh\n", { mode: 0o755 });
  fs.writeFileSync(path.join(tree, "data"), "x".repeat(1000), { mode: 0o444 });
  fs.symlinkSync("bin/tool", path.join(tree, "link"));
  fs.chmodSync(tree, 0o755);
  fs.chmodSync(path.join(tree, "bin"), 0o555);
});
afterAll(() => {
  fs.chmodSync(path.join(dir, "tree/bin"), 0o755);
  fs.rmSync(dir, { recursive: true, force: true });
});

const complete = (e: WalkEntry): WalkEntry => {
  if (e.size >= 0) return e;
  const { fd, entry } = openEntry(e, "t");
  fs.closeSync(fd);
  return entry;
};

describe("walkTree lazyFiles", () => {
  it("gives, once each file is opened, the entries a stating walk gives", () => {
    const root = path.join(dir, "tree");
    const eager = [...walkTree(root, { label: "t" })];
    const lazy = [...walkTree(root, { label: "t", lazyFiles: true })];
    expect(lazy.filter((e) => e.type === "file").every((e) => e.size === -1)).toBe(true);
    expect(lazy.map(complete)).toEqual(eager);
    expect(eager.map((e) => `${e.rel}:${e.type}:${e.mode.toString(8)}:${e.size}`)).toEqual([":directory:755:0", "bin:directory:555:0", "bin/tool:file:755:10", "data:file:444:1000", "link:symlink:777:0"]);
  });

  it("refuses a file that became a symlink or a FIFO before it was opened, naming it", () => {
    const root = path.join(dir, "changing");
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, "a"), "a");
    fs.writeFileSync(path.join(root, "b"), "b");
    fs.writeFileSync(path.join(dir, "secret"), "not in the tree");
    const [, a, b] = [...walkTree(root, { label: "/gnu/store/x-changing", lazyFiles: true })];
    fs.rmSync(path.join(root, "a"));
    fs.symlinkSync(path.join(dir, "secret"), path.join(root, "a"));
    fs.rmSync(path.join(root, "b"));
    execFileSync("mkfifo", [path.join(root, "b")]);
    for (const e of [a!, b!]) {
      expect(() => openEntry(e, "/gnu/store/x-changing")).toThrow(StoreError);
      expect(() => openEntry(e, "/gnu/store/x-changing")).toThrow(`/gnu/store/x-changing/${e.rel} is no longer a regular file`);
    }
  });
});

describe("names that are not UTF-8", () => {
  it("are named as such, not as missing files (NAR allows any bytes; layerpack reads names as UTF-8)", () => {
    const root = path.join(dir, "latin1");
    fs.mkdirSync(root);
    fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/bad`), Buffer.from([0xff, 0xfe])]), "x");
    for (const lazyFiles of [false, true]) {
      const walk = () => [...walkTree(root, { label: "/gnu/store/x-app", lazyFiles })].map((e) => (lazyFiles ? complete(e) : e));
      expect(walk).toThrow(/\/bad\uFFFD\uFFFD: the file name is not valid UTF-8 \(shown with U\+FFFD\); layerpack cannot archive such names yet$/);
    }
  });
});
