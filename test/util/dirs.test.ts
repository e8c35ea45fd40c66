import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeDirs } from "../../src/util/dirs.ts";

describe("makeDirs", () => {
  it("makes every missing level, and accepts what exists", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-dirs-"));
    try {
      makeDirs(path.join(dir, "a/b/c"));
      makeDirs(path.join(dir, "a/b/c"));
      expect(fs.statSync(path.join(dir, "a/b/c")).isDirectory()).toBe(true);
      fs.writeFileSync(path.join(dir, "f"), "");
      expect(() => makeDirs(path.join(dir, "f/x"))).toThrow(/ENOTDIR/);
      expect(() => makeDirs(path.join(dir, "f"))).toThrow(/ENOTDIR/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(fs.existsSync("/proc/self"))("fails under /proc instead of looping for ever, as Node's recursive mkdir does", () => {
    expect(() => makeDirs("/proc/layerpack-nope/a")).toThrow(/ENOENT/);
  });
});
