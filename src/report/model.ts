/**
 * What a report shows, in one plain value that both renderers (HTML, Markdown) read: the layers of the image (from
 * a plan, or from a built image), each with its items, bytes and the reason the planner gave, and with --previous
 * the diff against the older plan or image. Every number about the update is the PlanDiff's, exactly as
 * `layerpack diff --json` prints it; the per-layer "must pull" flag is the predicate diffSides counts
 * (NEW's layers whose identity OLD lacks), so the highlighted layers add up to `pull`.
 */
import { itemName, type DiffItem, type DiffLayer, type DiffSide, type LayerStatus, type PlanDiff } from "../plan/diff.ts";
import type { LayerPlan } from "../plan/types.ts";

export interface ReportItem {
  path: string;
  /** The package name: the store path's last component without its hash. */
  name: string;
  size: number;
  /** With --previous: the item is one OLD lacks (counted in `changed`). */
  changed: boolean;
}

export interface ReportLayer {
  /** 1-based position, bottom first. */
  n: number;
  bytes: number;
  uncompressedBytes?: number;
  items: ReportItem[];
  /** Tar entries outside the store (customisation entries, a base image's files). */
  otherEntries: number;
  /** A short description: the first item names, or the layer's kind. */
  label: string;
  /** Why these items share a layer (the plan's reason), or what the layer is. */
  reason: string;
  /** With --previous: how the layer compares with OLD, and whether a host that has OLD pulls it. */
  status?: LayerStatus;
  pull?: boolean;
}

export interface Report {
  /** The image's name (the config's). */
  name: string;
  kind: "plan" | "image";
  /** What the layers were read from, as the user named it. */
  label: string;
  layers: ReportLayer[];
  totals: { layers: number; items: number; bytes: number };
  /** With --previous: the diff, as `diff --json` prints it. */
  diff?: PlanDiff;
}

/** The first three item names, or what a layer without items is. */
export function layerLabel(layer: Pick<DiffLayer, "items" | "kind" | "otherEntries">): string {
  if (layer.items.length === 0) return layer.kind ?? (layer.otherEntries > 0 ? "files outside the store" : "empty");
  const names = layer.items.map((it) => itemName(it.path));
  return names.length > 3 ? `${names.slice(0, 3).join(", ")} +${names.length - 3} more` : names.join(", ");
}

/** The plan's reason for each of its layers, in plan order (what planSide's layers are). */
export function planReasons(plan: LayerPlan): string[] {
  return plan.layers.map((l) => {
    if (l.kind === "store") return l.reason ?? "no reason recorded in the plan";
    if (l.kind === "root-system") return `the root file system from ${l.source}: ${l.files} entries`;
    return `customisation: ${l.entries.length === 1 ? "the config's one file, directory or symlink" : `the config's ${l.entries.length} files, directories and symlinks`} outside the store`;
  });
}

const itemSet = (items: readonly DiffItem[]) => items.map((it) => it.path).join("\0");

/**
 * Reasons for an image's layers from the plan it was built from: a base image layer by its diff_id, a store layer
 * by its exact item set, the others (customisation, root system) by position after the base layers when the layer
 * counts agree. Layers it cannot place get a neutral description; `stale` says the image is not this plan's.
 */
export function imageReasons(side: DiffSide, plan: LayerPlan): { reasons: string[]; stale: boolean } {
  const planned = planReasons(plan);
  const base = new Set(plan.base?.layers.map((l) => l.diffId) ?? []);
  const bySet = new Map<string, number>();
  plan.layers.forEach((l, i) => l.kind === "store" && bySet.set(itemSet(l.items), i));
  const offset = side.layers.length - plan.layers.length;
  let stale = offset < 0;
  const reasons = side.layers.map((l, j) => {
    // An image side's layer id is its diff_id.
    if (base.has(l.id)) return `a layer of the base image ${plan.base!.image}`;
    if (l.items.length > 0) {
      const i = bySet.get(itemSet(l.items));
      if (i !== undefined) return planned[i]!;
      stale = true;
      return "store items the current plan does not group this way";
    }
    const i = j - offset;
    if (offset >= 0 && i >= 0 && plan.layers[i]?.kind !== "store") return planned[i]!;
    return l.otherEntries > 0 ? "files outside the store" : "an empty layer";
  });
  return { reasons, stale };
}

const key = (it: DiffItem) => `${it.path}\0${it.size}`;

/**
 * The report of `side` (NEW). With `previous`, `diff` must be the diff of previous.side against `side` (diffPlans or
 * diffSides), whose numbers the report shows unchanged.
 */
export function buildReport(side: DiffSide, o: { name: string; reasons: readonly string[]; previous?: { side: DiffSide; diff: PlanDiff } }): Report {
  const diff = o.previous?.diff;
  const added = new Set(diff?.added.map(key) ?? []);
  // diffSides: `pulled = n.layers.filter((l) => !oldIds.has(l.id))`.
  const oldIds = o.previous ? new Set(o.previous.side.layers.map((l) => l.id)) : undefined;
  const changeOf = new Map((diff?.layers ?? []).filter((c) => c.new !== undefined).map((c) => [c.new!, c]));
  const layers = side.layers.map((l, j): ReportLayer => {
    const change = changeOf.get(j + 1);
    return {
      n: j + 1,
      bytes: l.bytes,
      ...(l.uncompressedBytes !== undefined ? { uncompressedBytes: l.uncompressedBytes } : {}),
      items: l.items.map((it) => ({ path: it.path, name: itemName(it.path), size: it.size, changed: added.has(key(it)) })),
      otherEntries: l.otherEntries,
      label: change?.label ?? layerLabel(l),
      reason: o.reasons[j] ?? "",
      ...(change ? { status: change.status } : {}),
      ...(oldIds ? { pull: !oldIds.has(l.id) } : {}),
    };
  });
  const totals = diff
    ? { layers: diff.new.layers, items: layers.reduce((n, l) => n + l.items.length, 0), bytes: diff.new.bytes }
    : { layers: layers.length, items: layers.reduce((n, l) => n + l.items.length, 0), bytes: side.layers.reduce((n, l) => n + l.bytes, 0) };
  return { name: o.name, kind: side.kind, label: side.label, layers, totals, ...(diff ? { diff } : {}) };
}
