/** The squarified treemap: exact tiling, areas proportional to weights, squarish tiles, deterministic, fast. */
import { describe, expect, it } from "vitest";
import { CHAR_WIDTH, fitLabel, layoutTreemap, squarify, type Rect } from "../../src/report/treemap.ts";
import { prng } from "../../bench/closures.ts";

const area = (r: Rect) => r.w * r.h;
const overlap = (a: Rect, b: Rect) => Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) * Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
const inside = (r: Rect, box: Rect, eps = 1e-6) => r.x >= box.x - eps && r.y >= box.y - eps && r.x + r.w <= box.x + box.w + eps && r.y + r.h <= box.y + box.h + eps;
/** Heavy-tailed sizes, like store items. */
const sizes = (n: number, seed = 1) => {
  const r = prng(seed);
  return Array.from({ length: n }, () => Math.round(64 + Math.exp(8 + 4 * r() * r() * 3)));
};

describe("squarify", () => {
  it("tiles the rectangle exactly: areas proportional to the weights, no overlaps, nothing outside", () => {
    const box = { x: 10, y: 20, w: 600, h: 400 };
    const weights = sizes(60);
    const rects = squarify(weights, box) as Rect[];
    const total = weights.reduce((a, b) => a + b, 0);
    expect(rects.every((r) => r !== undefined && inside(r, box))).toBe(true);
    rects.forEach((r, i) => expect(area(r)).toBeCloseTo((weights[i]! / total) * area(box), 6));
    expect(rects.reduce((s, r) => s + area(r), 0)).toBeCloseTo(area(box), 6);
    for (let i = 0; i < rects.length; i++) for (let j = i + 1; j < rects.length; j++) expect(overlap(rects[i]!, rects[j]!)).toBeLessThan(1e-6);
  });

  it("keeps tiles squarish: equal weights in a square give squares", () => {
    const rects = squarify(Array(16).fill(1), { x: 0, y: 0, w: 400, h: 400 }) as Rect[];
    for (const r of rects) expect(Math.max(r.w / r.h, r.h / r.w)).toBeLessThan(1.5);
    const mixed = squarify(sizes(500, 3), { x: 0, y: 0, w: 1200, h: 720 }) as Rect[];
    const ratios = mixed.map((r) => Math.max(r.w / r.h, r.h / r.w)).sort((a, b) => a - b);
    expect(ratios[Math.floor(ratios.length / 2)]!).toBeLessThan(3);
  });

  it("larger weights get larger tiles; zero and negative weights get none", () => {
    const rects = squarify([5, 0, 1, -3, 2], { x: 0, y: 0, w: 100, h: 50 });
    expect(rects[1]).toBeUndefined();
    expect(rects[3]).toBeUndefined();
    expect(area(rects[0]!)).toBeGreaterThan(area(rects[4]!));
    expect(area(rects[4]!)).toBeGreaterThan(area(rects[2]!));
    expect(squarify([1, 2], { x: 0, y: 0, w: 0, h: 10 })).toEqual([undefined, undefined]);
    expect(squarify([], { x: 0, y: 0, w: 10, h: 10 })).toEqual([]);
    expect(squarify([7], { x: 1, y: 2, w: 3, h: 4 })).toEqual([{ x: 1, y: 2, w: 3, h: 4 }]);
  });

  it("is deterministic, and equal weights keep their input order", () => {
    const w = sizes(300, 9);
    expect(squarify(w, { x: 0, y: 0, w: 800, h: 500 })).toEqual(squarify([...w], { x: 0, y: 0, w: 800, h: 500 }));
    const eq = squarify([1, 1, 1], { x: 0, y: 0, w: 300, h: 100 }) as Rect[];
    expect(eq.map((r) => r.x)).toEqual([0, 100, 200]);
  });
});

describe("layoutTreemap", () => {
  const layers = (n: number, perLayer: number) =>
    Array.from({ length: n }, (_, k) => {
      const items = sizes(perLayer, k + 1).map((size, i) => ({ name: `item${k}-${i}-1.0`, size }));
      return { bytes: items.reduce((s, it) => s + it.size, 0), title: `#${k + 1}`, items };
    });

  it("places every item of 4000 inside its layer's box, in milliseconds", () => {
    const input = layers(100, 40);
    const t0 = performance.now();
    const map = layoutTreemap(input, 1200, 720);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(200);
    const items = map.tiles.filter((t) => t.item >= 0);
    expect(items).toHaveLength(4000);
    const boxOf = new Map(map.layers.map((b) => [b.layer, b]));
    for (const t of items) expect(inside(t, boxOf.get(t.layer)!, 0.02)).toBe(true);
    // Box areas follow the layers' bytes.
    const total = input.reduce((s, l) => s + l.bytes, 0);
    for (const b of map.layers) expect(area(b) / (1200 * 720)).toBeCloseTo(input[b.layer]!.bytes / total, 3);
  });

  it("labels only tiles a label fits in, cut to their width; tiny tiles have none", () => {
    const map = layoutTreemap(layers(100, 40), 1200, 720);
    const labelled = map.tiles.filter((t) => t.label !== undefined);
    expect(labelled.length).toBeGreaterThan(20);
    expect(labelled.length).toBeLessThan(4000);
    for (const t of labelled) {
      expect(t.h).toBeGreaterThanOrEqual(12);
      expect([...t.label!].length * CHAR_WIDTH).toBeLessThanOrEqual(t.w - 4 + 1e-9);
    }
    for (const t of map.tiles) if (t.w < 4 * CHAR_WIDTH || t.h < 12) expect(t.label).toBeUndefined();
  });

  it("draws a layer without items (or with items of no size) as one tile; a layer of no bytes not at all", () => {
    const map = layoutTreemap(
      [
        { bytes: 100, title: "a", items: [] },
        { bytes: 0, title: "empty", items: [] },
        { bytes: 50, title: "b", items: [{ name: "x", size: 0 }] },
      ],
      300,
      200,
    );
    expect(map.layers.map((b) => b.layer)).toEqual([0, 2]);
    expect(map.tiles.map((t) => [t.layer, t.item])).toEqual([
      [0, -1],
      [2, -1],
    ]);
  });
});

describe("fitLabel", () => {
  it("keeps what fits, cuts with an ellipsis, and gives up below four characters", () => {
    expect(fitLabel("glibc-2.39", 200)).toBe("glibc-2.39");
    expect(fitLabel("glibc-2.39", 4 + 6 * CHAR_WIDTH)).toBe("glibc…");
    expect(fitLabel("glibc-2.39", 4 + 3 * CHAR_WIDTH)).toBeUndefined();
    expect(fitLabel("abc", 4 + 3 * CHAR_WIDTH)).toBe("abc");
    expect(fitLabel("", 500)).toBeUndefined();
  });
});
