/**
 * Family plans: several images from one store planned together, so that the bytes they have in common sit in
 * layers that are the same blob in every one of them.
 *
 * Planned one by one, sibling images group their shared libraries differently (each planner sees a different
 * closure), and a layer is shared only when its item set is identical. A family plan first splits the union of the
 * closures by membership (which images hold an item), so every layer holds items that exactly the same images
 * contain, then places each class with the configured strategy in a share of the layer budget. Each image then uses
 * the family plan as its previous plan (`layers.previous`): sticky planning keeps exactly the layers whose items
 * it holds, all of them, in every image. Pure and deterministic.
 */
import { aboutConfigKey, PlanError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure, StoreItem } from "../store/types.ts";
import { checkClosure, placeItems } from "./index.ts";
import type { LayerPlan, StoreLayer } from "./types.ts";
import { byBytes } from "../util/bytes.ts";

export interface FamilyImage {
  spec: ImageSpec;
  closure: Closure;
}

interface Class {
  /** Indexes of the images holding every item of the class, ascending. */
  images: number[];
  items: StoreItem[];
  bytes: number;
  /** Whether smaller classes were folded in (their items are then missing from some of these images). */
  folded: boolean;
}

const key = (images: readonly number[]): string => images.join(",");
const isSubset = (a: readonly number[], b: readonly number[]): boolean => a.every((x) => b.includes(x));

/** Store layers an image may use: max minus the customisation layer and the root-system layer. */
const budgetOf = (spec: ImageSpec): number => spec.layers.max - 1 - (spec.rootSystem !== undefined ? 1 : 0);

/** A failure about a key of one image's config: `image` is its index, so that the caller can locate the key there. */
export class FamilyKeyError extends PlanError {
  readonly image: number;
  constructor(message: string, image: number, key: readonly string[]) {
    super(message);
    this.image = image;
    aboutConfigKey(this, key);
  }
}

function checkFamily(images: readonly FamilyImage[]): void {
  if (images.length < 2) throw new PlanError("a family plan needs at least two images");
  const names = images.map((im) => im.spec.name);
  const twice = names.findIndex((n, i) => names.indexOf(n) !== i);
  if (twice >= 0) throw new FamilyKeyError(`name: two images of the family are named "${names[twice]}": give each config its own name`, twice, ["name"]);
  const first = images[0]!;
  const size = new Map<string, { size: number; image: string }>();
  for (const [i, im] of images.entries()) {
    checkClosure(im.closure);
    if (!Number.isInteger(im.spec.layers.max) || budgetOf(im.spec) < 1) {
      throw new FamilyKeyError(`layers.max: ${im.spec.layers.max} (image "${im.spec.name}") leaves no store layer for a family plan`, i, ["layers", "max"]);
    }
    if (im.closure.store.dir !== first.closure.store.dir) {
      throw new FamilyKeyError(`store: image "${im.spec.name}" uses store ${im.closure.store.dir} and "${first.spec.name}" uses ${first.closure.store.dir}: a family shares one store`, i, ["store"]);
    }
    if (im.spec.layers.strategy !== first.spec.layers.strategy) {
      throw new FamilyKeyError(`layers.strategy: image "${im.spec.name}" uses ${im.spec.layers.strategy} and "${first.spec.name}" uses ${first.spec.layers.strategy}: a family is planned with one strategy`, i, ["layers", "strategy"]);
    }
    for (const it of im.closure.items) {
      const seen = size.get(it.path);
      if (seen && seen.size !== it.narSize) {
        throw new PlanError(`${it.path} is ${seen.size} bytes in image "${seen.image}" but ${it.narSize} in "${im.spec.name}": the images read different stores`);
      }
      size.set(it.path, { size: it.narSize, image: im.spec.name });
    }
  }
}

/** Items of the union closure grouped by which images hold them; references outside a class are dropped. */
function membershipClasses(images: readonly FamilyImage[]): Class[] {
  const holders = new Map<string, { item: StoreItem; images: number[] }>();
  images.forEach((im, i) => {
    for (const it of im.closure.items) {
      const h = holders.get(it.path);
      if (h) h.images.push(i);
      else holders.set(it.path, { item: it, images: [i] });
    }
  });
  const classes = new Map<string, Class>();
  for (const { item, images: held } of holders.values()) {
    const k = key(held);
    const c = classes.get(k) ?? { images: held, items: [], bytes: 0, folded: false };
    c.items.push(item);
    c.bytes += item.narSize;
    classes.set(k, c);
  }
  return [...classes.values()];
}

/**
 * While an image has more classes than layers, folds its smallest class into the smallest class holding a
 * superset of its images (or, when there is none, into its next smallest class, under the union of both sets).
 * Each fold lowers the number of classes, so this ends.
 */
function fitClassCount(classes: Class[], budgets: readonly number[]): Class[] {
  let out = [...classes];
  const of = (i: number): Class[] => out.filter((c) => c.images.includes(i));
  const bySize = (a: Class, b: Class): number => a.bytes - b.bytes || byBytes(key(a.images), key(b.images));
  for (let i = 0; i < budgets.length; i++) {
    while (of(i).length > budgets[i]!) {
      const mine = of(i).sort(bySize);
      const small = mine[0]!;
      const supersets = out.filter((c) => c !== small && isSubset(small.images, c.images)).sort((a, b) => a.images.length - b.images.length || bySize(a, b));
      const into = supersets[0] ?? mine[1]!;
      const images = [...new Set([...small.images, ...into.images])].sort((a, b) => a - b);
      const existing = out.find((c) => c !== small && c !== into && key(c.images) === key(images));
      const parts = [into, small, ...(existing ? [existing] : [])];
      out = out.filter((c) => !parts.includes(c));
      out.push({ images, items: parts.flatMap((c) => c.items), bytes: parts.reduce((n, c) => n + c.bytes, 0), folded: true });
    }
  }
  return out;
}

/**
 * Layers per class: each image splits its budget over its classes by item count, a class gets what the most
 * constrained of its images can give (at least 1), and layers left over go to the classes with the most items per
 * layer whose images all have room.
 */
function allot(classes: readonly Class[], budgets: readonly number[]): number[] {
  const weight = classes.map((c) => c.items.length);
  const share = (i: number): number => classes.reduce((s, c, k) => (c.images.includes(i) ? s + weight[k]! : s), 0);
  const shares = budgets.map((_, i) => share(i));
  // Never more layers than items; at least one.
  const layers = classes.map((c, k) => Math.min(c.items.length, Math.max(1, Math.min(...c.images.map((i) => Math.floor((budgets[i]! * weight[k]!) / shares[i]!))))));
  const used = (i: number): number => classes.reduce((s, c, k) => (c.images.includes(i) ? s + layers[k]! : s), 0);
  // The floor of 1 can overdraw an image (there are never more classes than layers): take from its largest.
  budgets.forEach((budget, i) => {
    while (used(i) > budget) {
      let k = -1;
      classes.forEach((c, j) => {
        if (c.images.includes(i) && layers[j]! > 1 && (k < 0 || layers[j]! > layers[k]!)) k = j;
      });
      layers[k]!--;
    }
  });
  for (;;) {
    let best = -1;
    for (let k = 0; k < classes.length; k++) {
      if (layers[k]! >= classes[k]!.items.length || classes[k]!.images.some((i) => used(i) >= budgets[i]!)) continue;
      if (best < 0 || weight[k]! / layers[k]! > weight[best]! / layers[best]!) best = k;
    }
    if (best < 0) return layers;
    layers[best]!++;
  }
}

/**
 * The family plan of `images` (at least two, one store, one strategy): store layers only, the classes held by the
 * most images lowest. Each image's own plan with this one as `previous` keeps all the layers of its classes.
 */
export function planFamily(images: readonly FamilyImage[]): LayerPlan {
  checkFamily(images);
  const names = images.map((im) => im.spec.name);
  const budgets = images.map((im) => budgetOf(im.spec));
  const classes = fitClassCount(membershipClasses(images), budgets);
  classes.sort((a, b) => b.images.length - a.images.length || byBytes(key(a.images), key(b.images)));
  const counts = allot(classes, budgets);
  const spec = images[0]!.spec;
  const layers: StoreLayer[] = [];
  classes.forEach((c, k) => {
    const paths = new Set(c.items.map((it) => it.path));
    const own = [...c.items].sort((a, b) => byBytes(a.path, b.path)).map((it) => ({ ...it, references: it.references.filter((r) => paths.has(r)) }));
    const held = c.images.length === images.length ? "every image of the family" : c.images.length === 1 ? `image ${names[c.images[0]!]} only` : `images ${c.images.map((i) => names[i]).join(", ")}`;
    const note = c.folded ? `items of ${held} (some only in a few of them: too many image combinations for the layer budget)` : `items of ${held}`;
    for (const l of placeItems(spec, own, counts[k]!)) layers.push({ ...l, reason: `${note}; ${l.reason ?? ""}`.replace(/; $/, "") });
  });
  const union = new Map(images.flatMap((im) => im.closure.items.map((it) => [it.path, it.narSize] as const)));
  return {
    version: 1,
    name: `family of ${names.join(", ")}`,
    storeDir: images[0]!.closure.store.dir,
    strategy: spec.layers.strategy,
    max: Math.min(...images.map((im) => im.spec.layers.max)),
    family: [...names],
    layers,
    totals: { items: union.size, bytes: [...union.values()].reduce((a, b) => a + b, 0), layers: layers.length },
  };
}
