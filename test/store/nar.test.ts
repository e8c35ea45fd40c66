import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import { NarHasher, narDigest, narHash, narSize } from "../../src/store/nar.ts";
import { walkTree } from "../../src/store/walk.ts";
import { requireTool } from "../fixtures/tools.ts";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-nar-"));
  const t = path.join(dir, "tree");
  const files: Record<string, string | Buffer> = {
    "a/b/c/deep": "deep",
    "a/b/after": "12345678",
    "a/z": "",
    "b-dir/x": Buffer.alloc(3 << 20, 1), // several read chunks
    "b.txt": "dot sorts before dash? no: '-' < '.' bytewise",
    "\u00e9t\u00e9": "utf-8 name",
    "Zupper": "uppercase sorts first",
  };
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(t, rel)), { recursive: true });
    fs.writeFileSync(path.join(t, rel), content);
  }
  fs.mkdirSync(path.join(t, "empty-dir"));
  fs.chmodSync(path.join(t, "a/z"), 0o755);
  fs.symlinkSync("a/b/c/deep", path.join(t, "link"));
  fs.symlinkSync("x".repeat(200), path.join(t, "long-dangling"));
  fs.writeFileSync(path.join(dir, "single"), "single file\n");
  fs.symlinkSync("/somewhere/else", path.join(dir, "single-link"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cases = ["tree", "single", "single-link", "tree/empty-dir", "tree/a"];

describe("NAR", () => {
  it("gives the same size from metadata as from hashing", () => {
    for (const c of cases) expect(narSize(path.join(dir, c)), c).toBe(narDigest(path.join(dir, c)).size);
    // a lone symlink: magic 24 + "(" "type" "symlink" "target" 4*16 + str("/somewhere/else") 8+16 + ")" 16
    expect(narSize(path.join(dir, "single-link"))).toBe(24 + 64 + 24 + 16);
  });

  it.skipIf(!requireTool("nix-store", "nix-bin"))("matches nix-store --dump", () => {
    for (const c of cases) {
      const nar = execFileSync("nix-store", ["--dump", path.join(dir, c)], { maxBuffer: 1 << 30 });
      expect(narHash(path.join(dir, c)), c).toBe(`sha256:${createHash("sha256").update(nar).digest("hex")}`);
      expect(narSize(path.join(dir, c)), c).toBe(nar.length);
    }
  });

  it("hashes pushed entries and data in any chunking", () => {
    const want = narDigest(path.join(dir, "tree"));
    const h = new NarHasher("tree");
    for (const e of walkTree(path.join(dir, "tree"))) {
      h.entry(e);
      if (e.type === "file") {
        const data = fs.readFileSync(e.hostPath);
        for (let i = 0; i < data.length; i += 5) h.data(data.subarray(i, i + 5));
      }
    }
    expect(h.end()).toEqual(want);
  });

  it("fails when a file's data does not match its size", () => {
    const entries = [...walkTree(path.join(dir, "single"), { label: "/gnu/store/x-single" })];
    const short = new NarHasher("/gnu/store/x-single");
    short.entry(entries[0]!);
    short.data(Buffer.from("single"));
    expect(() => short.end()).toThrow(new StoreError("/gnu/store/x-single changed while being read: 6 bytes fewer than its size 12"));
    const long = new NarHasher("/gnu/store/x-single");
    long.entry(entries[0]!);
    expect(() => long.data(Buffer.alloc(13))).toThrow(/grew past its size 12/);
  });
});
