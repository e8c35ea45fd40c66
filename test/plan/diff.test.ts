import { describe, expect, it } from "vitest";
import { LayerpackError } from "../../src/errors.ts";
import { diffPlans, diffSides, imageSide, type ImageLike, type PlanDiff } from "../../src/plan/diff.ts";
import { bytesText, diffToMarkdown, diffToText, renderDiff } from "../../src/plan/diff-format.ts";
import type { LayerPlan } from "../../src/plan/types.ts";
import { storePath } from "./fixtures.ts";

/** A plan from layers of `name:size` items; a customisation layer with one entry on top. */
function planOf(layers: string[][], custom = "/tmp"): LayerPlan {
  const store = layers.map((names) => {
    const items = names
      .map((n) => {
        const [name, size] = n.split(":");
        return { path: storePath(name!), size: Number(size) };
      })
      .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    return { kind: "store" as const, size: items.reduce((s, it) => s + it.size, 0), items };
  });
  const bytes = store.reduce((s, l) => s + l.size, 0);
  return {
    version: 1,
    name: "t",
    storeDir: "/gnu/store",
    strategy: "size",
    max: 100,
    layers: [...store, { kind: "customisation", entries: [{ path: custom, type: "directory", mode: "1777" }] }],
    totals: { items: store.reduce((s, l) => s + l.items.length, 0), bytes, layers: store.length + 1 },
  };
}

const OLD = planOf([["glibc:1000"], ["app:500"], ["lib:400"], ["tzdata:50", "locales:40", "profile:10"]]);

describe("diffPlans on crafted pairs", () => {
  it("identical plans: nothing to pull", () => {
    const d = diffPlans(OLD, structuredClone(OLD));
    expect(d.pull).toEqual({ layers: 0, bytes: 0 });
    expect(d.changed).toEqual({ items: 0, bytes: 0 });
    expect(d.layers.map((l) => l.status)).toEqual(["unchanged", "unchanged", "unchanged", "unchanged", "unchanged"]);
    expect(d.moved).toEqual([]);
  });

  it("move: an item moves from one layer to another; nothing changed, but two layers are pulled", () => {
    const NEW = planOf([["glibc:1000"], ["app:500", "tzdata:50"], ["lib:400"], ["locales:40", "profile:10"]]);
    const d = diffPlans(OLD, NEW);
    expect(d.layers.map((l) => `${l.status} ${l.old}->${l.new}`)).toEqual([
      "unchanged 1->1",
      "changed 2->2",
      "unchanged 3->3",
      "changed 4->4",
      "unchanged 5->5",
    ]);
    expect(d.moved).toEqual([{ path: storePath("tzdata"), size: 50, from: 4, to: 2 }]);
    expect(d.pull).toEqual({ layers: 2, bytes: 550 + 50 });
    expect(d.changed).toEqual({ items: 0, bytes: 0 });
    expect(d.layers[1]!.itemsIn).toEqual([{ path: storePath("tzdata"), size: 50 }]);
    expect(d.layers[3]!.itemsOut).toEqual([{ path: storePath("tzdata"), size: 50 }]);
  });

  it("add: a new item in a layer of its own", () => {
    const NEW = planOf([["glibc:1000"], ["app:500"], ["lib:400"], ["tzdata:50", "locales:40", "profile:10"], ["extra:123"]]);
    const d = diffPlans(OLD, NEW);
    expect(d.layers.map((l) => l.status)).toEqual(["unchanged", "unchanged", "unchanged", "unchanged", "added", "unchanged"]);
    // The customisation layer moved up, with identical entries: the same blob, not pulled again.
    expect(d.layers[5]).toMatchObject({ status: "unchanged", old: 5, new: 6 });
    expect(d.pull).toEqual({ layers: 1, bytes: 123 });
    expect(d.changed).toEqual({ items: 1, bytes: 123 });
    expect(d.added).toEqual([{ path: storePath("extra"), size: 123 }]);
  });

  it("remove: a layer goes away with its item", () => {
    const NEW = planOf([["glibc:1000"], ["app:500"], ["tzdata:50", "locales:40", "profile:10"]]);
    const d = diffPlans(OLD, NEW);
    expect(d.layers.map((l) => `${l.status} ${l.old}->${l.new}`)).toEqual([
      "unchanged 1->1",
      "unchanged 2->2",
      "unchanged 4->3",
      "unchanged 5->4",
      "removed 3->undefined",
    ]);
    expect(d.pull).toEqual({ layers: 0, bytes: 0 });
    expect(d.removed).toEqual([{ path: storePath("lib"), size: 400 }]);
    expect(d.old.bytes - d.new.bytes).toBe(400);
  });

  it("resize: the same path with another size is a changed item", () => {
    const NEW = planOf([["glibc:1000"], ["app:700"], ["lib:400"], ["tzdata:50", "locales:40", "profile:10"]]);
    const d = diffPlans(OLD, NEW);
    expect(d.layers[1]).toMatchObject({ status: "changed", bytes: 700, oldBytes: 500 });
    expect(d.pull).toEqual({ layers: 1, bytes: 700 });
    expect(d.changed).toEqual({ items: 1, bytes: 700 });
    expect(d.added).toEqual([{ path: storePath("app"), size: 700 }]);
    expect(d.removed).toEqual([{ path: storePath("app"), size: 500 }]);
  });

  it("update: a new version lands in the shared layer; layer positions shift", () => {
    const NEW = planOf([["glibc:1000"], ["lib:400"], ["app-2:450", "tzdata:50", "locales:40", "profile-2:10"]], "/var/tmp");
    const d = diffPlans(OLD, NEW);
    expect(d.layers.map((l) => `${l.status} ${l.old}->${l.new}`)).toEqual([
      "unchanged 1->1",
      "unchanged 3->2",
      "changed 4->3",
      "changed 5->4",
      "removed 2->undefined",
    ]);
    expect(d.pull).toEqual({ layers: 2, bytes: 550 });
    expect(d.changed).toEqual({ items: 2, bytes: 460 });
    expect(d.moved).toEqual([]);
  });
});

describe("rendering", () => {
  const NEW = planOf([["glibc:1000"], ["app:500", "tzdata:50"], ["lib:400"], ["locales:40", "profile:10"], ["extra:2048"]]);
  const d = diffPlans(OLD, NEW, { old: "old.yaml", new: "new.yaml" });

  it("text: headline, layers, moves, additions", () => {
    expect(diffToText(d)).toBe(
      [
        "layerpack diff: old.yaml -> new.yaml (plans)",
        "A host that has old.yaml pulls 3 of 6 layers to get new.yaml: 2648 bytes (2.6 KiB) of store items; 1 store item changed or added: 2048 bytes (2.0 KiB).",
        "",
        "Layers of new.yaml, bottom first:",
        "  1  unchanged  glibc  [1 item, 1000 bytes]",
        "  2  changed    app, tzdata  [2 items, 500 -> 550 bytes]",
        "       +tzdata (50)",
        "  3  unchanged  lib  [1 item, 400 bytes]",
        "  4  changed    locales, profile  [2 items, 100 -> 50 bytes]",
        "       -tzdata (50)",
        "  5  added      extra  [1 item, 2048 bytes]",
        "  6  unchanged  (was 5)  customisation  [0 items, 0 bytes]",
        "",
        "Moved between layers (1):",
        "  tzdata (50 bytes): old layer 4 -> new layer 2",
        "",
        "Added items (1):",
        `  + ${storePath("extra")} (2048 bytes)`,
        "",
      ].join("\n"),
    );
  });

  it("markdown: a table ready for a pull request", () => {
    const md = diffToMarkdown(d);
    expect(md).toContain("### Layer plan diff: old.yaml → new.yaml");
    expect(md).toContain("**A host that has old.yaml pulls 3 of 6 layers to get new.yaml: 2648 bytes (2.6 KiB) of store items; 1 store item changed or added: 2048 bytes (2.0 KiB).**");
    expect(md).toContain("| 2 | changed | app, tzdata | 2 | 500 → 550 | +tzdata (50) |");
    expect(md).toContain("| 5 | added | extra | 1 | 2048 |  |");
    expect(md).toContain(`| ${storePath("tzdata")} | 50 | 4 | 2 |`);
    expect(md.split("\n").filter((l) => l.startsWith("|---")).length).toBe(3);
  });

  it("names from a hostile image or plan forge no line, link, image or markup", () => {
    const evil = "x` [Click](https:evil.example) ![p](https:evil.example?p.png) **APPROVED** <b>\u001b[31m\n  9  unchanged  FORGED";
    const hostile: PlanDiff = {
      ...d,
      old: { ...d.old, label: evil },
      notes: [evil],
      layers: d.layers.map((l, i) => (i === 0 ? { ...l, status: "changed" as const, label: evil, entriesIn: [evil], entriesOut: [evil] } : l)),
      moved: d.moved.map((m) => ({ ...m, path: `/gnu/store/${"a".repeat(32)}-${evil}` })),
    };
    const text = renderDiff(hostile, "text");
    expect(text).not.toMatch(/\u001b/);
    expect(text).not.toMatch(/^\s*9\s+unchanged/m);
    const md = renderDiff(hostile, "markdown");
    expect(md).not.toMatch(/\u001b/);
    expect(md).not.toMatch(/^\s*9\s+unchanged/m);
    for (const markup of ["[Click]", "![p]", "**APPROVED**", "<b>", "x`"]) expect(md).not.toContain(markup);
    expect(md).toContain("\\[Click\\](https:evil.example) !\\[p\\]");
    // What GitHub links by itself is broken up; text that reorders itself is shown escaped.
    const linky: PlanDiff = { ...d, layers: d.layers.map((l, i) => (i === 0 ? { ...l, label: "www.evil.example me@evil.example @org/team #12 https://x \u202eabc" } : l)) };
    const cells = renderDiff(linky, "markdown");
    expect(cells).toContain("www\u200b.evil.example me@\u200bevil.example @\u200borg/team #\u200b12 https:\u200b//x \\\\u202eabc");
    // Every table row keeps its column count.
    for (const row of md.split("\n").filter((l) => l.startsWith("| "))) expect(row.replace(/\\\|/g, "").split("|").length).toBeLessThanOrEqual(8);
  });

  it("lists 200 000 added and removed items as text and markdown (no argument list that large)", () => {
    const many = (tag: string) => Array.from({ length: 200_000 }, (_, i) => ({ path: storePath(`${tag}${i}`), size: 1 }));
    const huge: PlanDiff = { ...d, added: many("a"), removed: many("r"), moved: many("m").map((it) => ({ ...it, from: 1, to: 2 })) };
    const text = diffToText(huge);
    expect(text).toContain(`Added items (200000):\n  + ${storePath("a0")} (1 bytes)\n`);
    expect(text.split("\n").filter((l) => l.startsWith("  - ")).length).toBe(200_000);
    expect(diffToMarkdown(huge).split("\n").filter((l) => l.endsWith("| removed |")).length).toBe(200_000);
  });

  it("json: the diff as data", () => {
    expect(JSON.parse(renderDiff(d, "json"))).toEqual(JSON.parse(JSON.stringify(d)));
  });

  it("bytesText is exact, with a unit from 1 KiB", () => {
    expect(bytesText(1023)).toBe("1023 bytes");
    expect(bytesText(1536)).toBe("1536 bytes (1.5 KiB)");
    expect(bytesText(3 * 1024 ** 3)).toBe("3221225472 bytes (3.0 GiB)");
  });
});

describe("images", () => {
  const layer = (digest: string, size: number, items: [string, number][], diffId = digest) => ({
    digest: `sha256:${digest.repeat(64)}`,
    diffId: `sha256:${diffId.repeat(64)}`,
    size,
    uncompressedSize: size * 2,
    items: items.map(([n, s]) => ({ path: storePath(n), size: s })),
    otherEntries: 2,
  });
  const img = (arch: string, layers: ImageLike["layers"]): ImageLike => ({ architecture: arch, os: "linux", layers });

  it("counts pulled layers by digest and compressed size", () => {
    const o = img("amd64", [layer("a", 300, [["glibc", 1000]]), layer("b", 100, [["app", 500]]), layer("c", 10, [])]);
    const n = img("amd64", [layer("a", 300, [["glibc", 1000]]), layer("d", 120, [["app-2", 600]]), layer("c", 10, [])]);
    const d = diffSides(imageSide(o, "old.tar"), imageSide(n, "new.tar"));
    expect(d.pull).toEqual({ layers: 1, bytes: 120, uncompressedBytes: 240 });
    expect(d.changed).toEqual({ items: 1, bytes: 600 });
    expect(d.layers.map((l) => l.status)).toEqual(["unchanged", "added", "unchanged", "removed"]);
  });

  it("compares layers by diff_id: the same tar compressed elsewhere is not pulled again", () => {
    const o = img("amd64", [layer("a", 300, [["glibc", 1000]]), layer("b", 100, [["app", 500]])]);
    const n = img("amd64", [layer("e", 280, [["glibc", 1000]], "a"), layer("b", 100, [["app", 500]])]);
    const d = diffSides(imageSide(o, "old.tar"), imageSide(n, "new.tar"));
    expect(d.pull.layers).toBe(0);
    expect(d.layers.map((l) => l.status)).toEqual(["unchanged", "unchanged"]);
  });

  it("explains images of different architectures instead of comparing them", () => {
    const o = imageSide(img("amd64", [layer("a", 1, [])]), "old.tar");
    const n = imageSide(img("arm64", [layer("a", 1, [])]), "new.tar");
    expect(() => diffSides(o, n)).toThrow(LayerpackError);
    expect(() => diffSides(o, n)).toThrow(/^old\.tar is an image for linux\/amd64 and new\.tar one for linux\/arm64: a host runs one platform/);
  });
});
