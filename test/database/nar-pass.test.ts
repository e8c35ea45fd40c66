/**
 * The NAR facts a layer writes alongside its tar: for every kind of item (directory tree, a lone file, a lone
 * symlink, executables, empty files, odd names) they equal the standalone NAR hasher's, and the max-1 layer's
 * database is made from them.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createBlobFile, LayerSink } from "../../src/image/sink.ts";
import { writeLayer, type LayerContext } from "../../src/image/layer.ts";
import { narDigest } from "../../src/store/nar.ts";

const S = "/gnu/store";
const TREE = `${S}/0123456789abcdfghijklmnpqrsvwxy-tree`;
const FILE = `${S}/1123456789abcdfghijklmnpqrsvwxy-file`;
const LINK = `${S}/2123456789abcdfghijklmnpqrsvwxy-link`;

let dir: string;
let root: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nar-pass-"));
  root = path.join(dir, "root");
  const t = path.join(root, TREE);
  fs.mkdirSync(path.join(t, "bin"), { recursive: true });
  fs.mkdirSync(path.join(t, "empty-dir"));
  fs.mkdirSync(path.join(t, "share/deep/er"), { recursive: true });
  fs.writeFileSync(path.join(t, "bin/run"), "#!/bin/sh\n", { mode: 0o555 });
  fs.writeFileSync(path.join(t, "empty"), "");
  fs.writeFileSync(path.join(t, "share/deep/er/big"), Buffer.alloc(3 << 20, 9));
  fs.writeFileSync(path.join(t, "share/Zed"), "Z");
  fs.writeFileSync(path.join(t, "share/été"), "accent");
  fs.symlinkSync("../bin/run", path.join(t, "share/run"));
  fs.writeFileSync(path.join(root, FILE), "just a file, 7 bytes short of padding");
  fs.symlinkSync(TREE, path.join(root, LINK));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function layer(items: string[], ctx: Partial<LayerContext> = {}) {
  const file = path.join(dir, `blob-${items.length}`);
  const target = createBlobFile(file);
  const sink = new LayerSink(target, "none");
  const facts = await writeLayer(sink, { items, entries: [] }, { store: { dir: S, root }, mtime: 1, sourceDir: dir, ...ctx });
  await sink.finish();
  fs.closeSync(target.fd);
  return facts;
}

describe("NAR facts from the layer pass", () => {
  it("equal the standalone hasher's for trees, lone files and lone symlinks", async () => {
    const { nar } = await layer([TREE, FILE, LINK]);
    for (const item of [TREE, FILE, LINK]) expect(nar[item], item).toEqual(narDigest(path.join(root, item), { label: item }));
    expect(Object.keys(nar).sort()).toEqual([TREE, FILE, LINK].sort());
  });

  it("a max-1 layer makes its database from its own items' facts, after writing them", async () => {
    const seen: Record<string, unknown>[] = [];
    const ctx: Partial<LayerContext> = {
      generate: (_e, own) => {
        seen.push({ ...own });
        return Buffer.from("db");
      },
    };
    const file = path.join(dir, "single");
    const target = createBlobFile(file);
    const sink = new LayerSink(target, "none");
    await writeLayer(
      sink,
      { items: [FILE, TREE], entries: [{ path: "/var/guix/db/db.sqlite", type: "file", mode: "644", generated: "guix-database" }] },
      { store: { dir: S, root }, mtime: 1, sourceDir: dir, ...ctx },
    );
    await sink.finish();
    fs.closeSync(target.fd);
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0]!).sort()).toEqual([FILE, TREE].sort());
    const tar = fs.readFileSync(file);
    // The generated entry is the last one in the tar, after every store item.
    expect(tar.lastIndexOf("var/guix/db/db.sqlite")).toBeGreaterThan(tar.lastIndexOf("share/deep/er/big"));
  });
});
