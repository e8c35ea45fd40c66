/** watchedPaths: every host file whose change can change the image, the closure's own source included. */
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
});
