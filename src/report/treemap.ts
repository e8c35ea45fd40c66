/**
 * The report's treemap, laid out at report time (so the page only draws rectangles): each layer a rectangle of
 * area proportional to its bytes, its store items tiled inside it by their sizes. Squarified (Bruls, Huizing and
 * van Wijk, 2000): rows of tiles along the shorter side, a row grown while that keeps its worst aspect ratio down.
 * Linear after one sort, so 4000 items take a millisecond. Pure and deterministic: same weights, same rectangles.
 */

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Rectangles for `weights` filling `rect`, in input order; undefined for weights that are not positive. */
export function squarify(weights: readonly number[], rect: Rect): (Rect | undefined)[] {
  const out: (Rect | undefined)[] = weights.map(() => undefined);
  const order = weights.map((_, i) => i).filter((i) => weights[i]! > 0);
  // Largest first; equal weights in input order, so the layout does not depend on the sort's stability.
  order.sort((a, b) => weights[b]! - weights[a]! || a - b);
  const total = order.reduce((s, i) => s + weights[i]!, 0);
  if (order.length === 0 || !(rect.w > 0) || !(rect.h > 0)) return out;
  const scale = (rect.w * rect.h) / total;
  const area = (i: number) => weights[i]! * scale;
  let { x, y, w, h } = rect;
  // The worst aspect ratio of a row of total area s, largest tile max, smallest min, along a side of length side.
  const worst = (s: number, max: number, min: number, side: number) => Math.max((side * side * max) / (s * s), (s * s) / (side * side * min));
  let i = 0;
  while (i < order.length) {
    const side = Math.min(w, h);
    let sum = area(order[i]!);
    const max = sum;
    let min = sum;
    let j = i + 1;
    if (side > 0) {
      let ratio = worst(sum, max, min, side);
      for (; j < order.length; j++) {
        const a = area(order[j]!);
        const next = worst(sum + a, max, Math.min(min, a), side);
        if (next > ratio) break;
        sum += a;
        min = Math.min(min, a);
        ratio = next;
      }
    }
    // The last row takes what is left exactly, so rounding never leaves a gap or spills over.
    if (j >= order.length) sum = w * h;
    const thick = side > 0 ? Math.min(sum / side, Math.max(w, h)) : 0;
    const vertical = w >= h; // the row is a column at the left, else a row at the top
    const length = vertical ? h : w;
    let at = 0;
    for (let k = i; k < j; k++) {
      const share = k === j - 1 ? length - at : sum > 0 ? (area(order[k]!) / sum) * length : 0;
      out[order[k]!] = vertical ? { x, y: y + at, w: thick, h: share } : { x: x + at, y, w: share, h: thick };
      at += share;
    }
    if (vertical) {
      x += thick;
      w = Math.max(0, w - thick);
    } else {
      y += thick;
      h = Math.max(0, h - thick);
    }
    i = j;
  }
  return out;
}

/** What the treemap is drawn from: per layer its bytes (the rectangle's area) and its items' sizes. */
export interface TreemapLayer {
  bytes: number;
  /** Shown in the layer's header band when it fits. */
  title: string;
  items: { name: string; size: number }[];
}

export interface LayerBox extends Rect {
  layer: number;
  /** The header text, when the box is large enough for one (already shortened to fit). */
  title?: string;
}

export interface Tile extends Rect {
  layer: number;
  /** Index into the layer's items; -1 for a layer drawn as one tile (no items, or items of no size). */
  item: number;
  /** The label, when the tile is large enough (already shortened to fit); tiny tiles have none. */
  label?: string;
}

export interface Treemap {
  width: number;
  height: number;
  layers: LayerBox[];
  tiles: Tile[];
}

/** Approximate width of a character of the 10px label font: labels are cut to what fits. */
export const CHAR_WIDTH = 6.2;
const HEADER = 14;
const PAD = 1.5;

/** `text` cut (with an ellipsis) to fit `width` pixels; undefined when that would leave fewer than 4 characters. */
export function fitLabel(text: string, width: number): string | undefined {
  const room = Math.floor((width - 4) / CHAR_WIDTH);
  const chars = [...text];
  if (chars.length === 0 || room < Math.min(chars.length, 5)) return undefined;
  return chars.length <= room ? text : `${chars.slice(0, room - 1).join("")}…`;
}

/** Two decimals: enough for a screen, and the page stays small. */
const r2 = (n: number) => Math.round(n * 100) / 100;
const rounded = <T extends Rect>(b: T): T => ({ ...b, x: r2(b.x), y: r2(b.y), w: r2(b.w), h: r2(b.h) });

export function layoutTreemap(layers: readonly TreemapLayer[], width: number, height: number): Treemap {
  const boxes = squarify(
    layers.map((l) => l.bytes),
    { x: 0, y: 0, w: width, h: height },
  );
  const out: Treemap = { width, height, layers: [], tiles: [] };
  layers.forEach((layer, n) => {
    const box = boxes[n];
    if (!box) return;
    const title = box.h >= 2 * HEADER + 6 && box.w >= 40 ? fitLabel(layer.title, box.w - 2) : undefined;
    out.layers.push(rounded({ ...box, layer: n, ...(title !== undefined ? { title } : {}) }));
    const top = title !== undefined ? HEADER : PAD;
    const inner = { x: box.x + PAD, y: box.y + top, w: Math.max(0, box.w - 2 * PAD), h: Math.max(0, box.h - top - PAD) };
    const rects = squarify(
      layer.items.map((it) => it.size),
      inner,
    );
    if (rects.every((r) => r === undefined)) {
      out.tiles.push(rounded({ ...inner, layer: n, item: -1 }));
      return;
    }
    rects.forEach((r, i) => {
      if (!r) return;
      const label = r.h >= 12 ? fitLabel(layer.items[i]!.name, r.w) : undefined;
      out.tiles.push(rounded({ ...r, layer: n, item: i, ...(label !== undefined ? { label } : {}) }));
    });
  });
  return out;
}
