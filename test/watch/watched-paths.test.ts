/** watchedPaths: every host file whose change can change the image, the closure's own source included. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { imageSpecSchema } from "../../src/config/schema.ts";
import { watchedPaths } from "../../src/watch/watch.ts";

const spec = (extra: Record<string, unknown>) => imageSpecSchema.parse({ name: "w", roots: ["/gnu/store/00000000000000000000000000000000-x"], ...extra });

describe("watchedPaths", () => {
  it("adds closure.file: a graph or database file, a closureInfo directory's two files", () => {
    expect(watchedPaths(spec({ closure: { from: "guix-graph", file: "./graph" } }), "/c", { files: ["/c/image.yaml"] })).toEqual(["/c/graph", "/c/image.yaml"]);
    expect(watchedPaths(spec({ closure: { from: "database", file: "/var/guix/db/db.sqlite" } }), "/c", { files: [] })).toEqual(["/var/guix/db/db.sqlite"]);
    expect(watchedPaths(spec({ closure: { from: "nix-closure-info", file: "info" } }), "/c", { files: [] })).toEqual(["/c/info/registration", "/c/info/store-paths"]);
    expect(watchedPaths(spec({ closure: { from: "scan" } }), "/c", { files: [] })).toEqual([]);
  });

  it("adds every link of a profile chain (guix package retargets profiles/default, a middle one), absolute targets under the root", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-chain-"));
    try {
      const item = "/gnu/store/00000000000000000000000000000000-profile";
      fs.mkdirSync(path.join(dir, "root", item), { recursive: true });
      fs.mkdirSync(path.join(dir, "profiles"));
      fs.symlinkSync(item, path.join(dir, "profiles", "default-1-link"));
      fs.symlinkSync("default-1-link", path.join(dir, "profiles", "default"));
      fs.symlinkSync("profiles/default", path.join(dir, "result"));
      const store = { dir: "/gnu/store", root: path.join(dir, "root") };
      const closure = { store, profile: item, items: [] } as unknown as Parameters<typeof watchedPaths>[2]["closure"];
      const s = imageSpecSchema.parse({ name: "w", profile: "./result", store });
      expect(watchedPaths(s, dir, { files: [], closure })).toEqual(
        [path.join(dir, "profiles/default"), path.join(dir, "profiles/default-1-link"), path.join(dir, "result"), path.join(dir, "root", item)].sort(),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
