/**
 * What changes between two plans or two images, for a reviewer: per layer unchanged / changed / added / removed,
 * the items that moved between layers, and the headline: the bytes a host that has OLD pulls to get NEW (NEW's
 * layers whose identity OLD lacks) against the bytes that actually changed (items in NEW that OLD lacks).
 *
 * Layer identity: for images, the blob digest; for plans, the exact item set with sizes (and the customisation
 * entries), since builds are reproducible: the same items give the same blob. Pure; rendering is in diff-format.ts.
 */
import { LayerpackError } from "../errors.ts";
import type { CustomEntry, LayerPlan } from "./types.ts";
import { byBytes } from "../util/bytes.ts";
import { sha256Hex } from "../util/digest.ts";

export interface DiffItem {
  path: string;
  size: number;
}

/** One layer of either side, in a shape shared by plans and images. */
export interface DiffLayer {
  id: string;
  /** Bytes a host pulls for it: NAR bytes for plans, the stored (compressed) blob for images. */
  bytes: number;
  /** Uncompressed tar bytes (images only). */
  uncompressedBytes?: number;
  items: DiffItem[];
  /** Entries outside the store: customisation entries (plans) or other tar entries (images). */
  otherEntries: number;
  /** Plans: the customisation entries, described in one line each, so changes to them can be shown. */
  entries?: string[];
  /** Layers without store items pair only with layers of the same kind (plans: customisation, root-system). */
  kind?: string;
}

export interface DiffSide {
  label: string;
  kind: "plan" | "image";
  layers: DiffLayer[];
  /** `os/architecture[/variant]`, images only. */
  platform?: string;
  storeDir?: string;
}

export type LayerStatus = "unchanged" | "changed" | "added" | "removed";

export interface LayerChange {
  status: LayerStatus;
  /** 1-based positions, bottom first; absent on the side the layer is not on. */
  old?: number;
  new?: number;
  /** NEW's bytes for it (OLD's for removed layers). */
  bytes: number;
  oldBytes?: number;
  items: number;
  /** Items in this layer that its OLD counterpart lacks, and the other way round (changed layers). */
  itemsIn: DiffItem[];
  itemsOut: DiffItem[];
  /** Customisation entries added to and gone from this layer (plans, changed layers). */
  entriesIn?: string[];
  entriesOut?: string[];
  /** A short description: the item names, or "customisation". */
  label: string;
}

export interface MovedItem extends DiffItem {
  from: number;
  to: number;
}

export interface PlanDiff {
  kind: "plan" | "image";
  old: { label: string; layers: number; bytes: number };
  new: { label: string; layers: number; bytes: number };
  /** NEW's layers that OLD lacks: what a host that has OLD pulls. */
  pull: { layers: number; bytes: number; uncompressedBytes?: number };
  /** Items in NEW that OLD lacks (by path and size). */
  changed: { items: number; bytes: number };
  layers: LayerChange[];
  moved: MovedItem[];
  added: DiffItem[];
  removed: DiffItem[];
  notes: string[];
}

const sum = (xs: readonly { size: number }[]): number => xs.reduce((n, x) => n + x.size, 0);
const key = (it: DiffItem): string => `${it.path}\0${it.size}`;

/** The package name of a store path (after the hash), for short labels. */
export function itemName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
}

function label(layer: DiffLayer): string {
  if (layer.items.length === 0) return layer.kind ?? (layer.otherEntries > 0 ? "customisation" : "empty");
  const names = layer.items.map((it) => itemName(it.path));
  const shown = names.length > 3 ? `${names.slice(0, 3).join(", ")} +${names.length - 3} more` : names.join(", ");
  return layer.otherEntries > 0 && layer.items.length > 0 && names.length <= 3 ? `${shown} + customisation` : shown;
}

function describeEntry(e: CustomEntry): string {
  if (e.type === "symlink") return `${e.path} -> ${e.target}`;
  if (e.type === "directory") return `${e.path}/ (mode ${e.mode})`;
  const from = "generated" in e && e.generated !== undefined ? `generated: ${e.generated}` : e.source !== undefined ? `from ${e.source}` : `${Buffer.byteLength(e.content ?? "")} bytes inline, sha256 ${sha256Hex(e.content ?? "").slice(0, 12)}`;
  return `${e.path} (file, mode ${e.mode}, ${from})`;
}

export function planSide(plan: LayerPlan, labelText: string): DiffSide {
  const layers = plan.layers.map((l): DiffLayer => {
    if (l.kind === "root-system") {
      const id = sha256Hex(JSON.stringify({ rootSystem: l.source, files: l.files, size: l.size }));
      return { id, bytes: l.size, items: [], otherEntries: l.files, entries: [`${l.source} (${l.files} entries, ${l.size} bytes)`], kind: l.kind };
    }
    const items = l.kind === "store" ? l.items.map((it) => ({ path: it.path, size: it.size })) : [];
    const entries = l.kind === "customisation" ? l.entries : (l.entries ?? []);
    const id = sha256Hex(JSON.stringify({ items, entries }));
    return { id, bytes: sum(items), items, otherEntries: entries.length, entries: entries.map(describeEntry), kind: l.kind };
  });
  return { label: labelText, kind: "plan", layers, storeDir: plan.storeDir };
}

/** What diff needs of an image (src/oci/list.ts, src/oci/read-archive.ts). */
export interface ImageLike {
  architecture: string;
  os: string;
  variant?: string;
  layers: { digest: string; diffId: string; size: number; uncompressedSize: number; items: DiffItem[]; otherEntries: number }[];
}

export function imageSide(image: ImageLike, labelText: string): DiffSide {
  const platform = [image.os, image.architecture, ...(image.variant ? [image.variant] : [])].join("/");
  // Identity by diff_id: the same tar compressed elsewhere (podman re-saving an image) is the same layer to a host.
  const layers = image.layers.map((l) => ({ id: l.diffId, bytes: l.size, uncompressedBytes: l.uncompressedSize, items: l.items, otherEntries: l.otherEntries }));
  return { label: labelText, kind: "image", layers, platform };
}

/** Pairs NEW layers with OLD ones: identical first, then the pairs sharing the most item bytes (then items). */
function pairLayers(o: DiffLayer[], n: DiffLayer[]): { oldOf: (number | undefined)[]; unchanged: boolean[] } {
  const oldOf: (number | undefined)[] = n.map(() => undefined);
  const unchanged = n.map(() => false);
  const taken = new Set<number>();
  n.forEach((l, j) => {
    const i = o.findIndex((ol, idx) => !taken.has(idx) && ol.id === l.id);
    if (i >= 0) {
      oldOf[j] = i;
      unchanged[j] = true;
      taken.add(i);
    }
  });
  const layerOfOld = new Map<string, number>();
  o.forEach((l, i) => {
    if (!taken.has(i)) for (const it of l.items) layerOfOld.set(it.path, i);
  });
  const candidates: { i: number; j: number; bytes: number; count: number }[] = [];
  n.forEach((l, j) => {
    if (oldOf[j] !== undefined) return;
    const overlap = new Map<number, { bytes: number; count: number }>();
    for (const it of l.items) {
      const i = layerOfOld.get(it.path);
      if (i === undefined) continue;
      const c = overlap.get(i) ?? { bytes: 0, count: 0 };
      c.bytes += it.size;
      c.count++;
      overlap.set(i, c);
    }
    for (const [i, c] of overlap) candidates.push({ i, j, ...c });
  });
  // Layers without store items (customisation) pair with each other.
  const bare = (l: DiffLayer) => l.items.length === 0;
  n.forEach((l, j) => {
    if (oldOf[j] !== undefined || !bare(l)) return;
    o.forEach((ol, i) => !taken.has(i) && bare(ol) && ol.kind === l.kind && candidates.push({ i, j, bytes: 0, count: 0 }));
  });
  candidates.sort((a, b) => b.bytes - a.bytes || b.count - a.count || a.j - b.j || a.i - b.i);
  for (const c of candidates) {
    if (oldOf[c.j] !== undefined || taken.has(c.i)) continue;
    oldOf[c.j] = c.i;
    taken.add(c.i);
  }
  return { oldOf, unchanged };
}

function minus(a: DiffItem[], b: DiffItem[]): DiffItem[] {
  const keys = new Set(b.map(key));
  return a.filter((it) => !keys.has(key(it)));
}

function entryChanges(o: string[], n: string[]): { entriesIn?: string[]; entriesOut?: string[] } {
  const entriesIn = n.filter((e) => !o.includes(e));
  const entriesOut = o.filter((e) => !n.includes(e));
  return { ...(entriesIn.length > 0 ? { entriesIn } : {}), ...(entriesOut.length > 0 ? { entriesOut } : {}) };
}

const bySize = (a: DiffItem, b: DiffItem) => b.size - a.size || byBytes(a.path, b.path);

/** Compares two sides of one kind. Images for different platforms are refused with an explanation. */
export function diffSides(o: DiffSide, n: DiffSide): PlanDiff {
  if (o.kind !== n.kind) {
    throw new LayerpackError(`${o.label} is ${o.kind === "plan" ? "a plan file" : "an image"} and ${n.label} is ${n.kind === "plan" ? "a plan file" : "an image"}: diff compares two plans or two images`);
  }
  if (o.platform !== undefined && n.platform !== undefined && o.platform !== n.platform) {
    throw new LayerpackError(
      `${o.label} is an image for ${o.platform} and ${n.label} one for ${n.platform}: a host runs one platform, so it never updates from one to the other and no layer diff between them means anything. Compare two builds for the same architecture (the spec's architecture and os).`,
    );
  }
  const notes: string[] = [];
  if (o.storeDir !== undefined && n.storeDir !== undefined && o.storeDir !== n.storeDir) {
    notes.push(`the store directory changed (${o.storeDir} -> ${n.storeDir}): no item can be shared`);
  }
  const { oldOf, unchanged } = pairLayers(o.layers, n.layers);
  const layers: LayerChange[] = n.layers.map((l, j) => {
    const i = oldOf[j];
    const ol = i === undefined ? undefined : o.layers[i]!;
    const status: LayerStatus = unchanged[j] ? "unchanged" : ol ? "changed" : "added";
    return {
      status,
      ...(i !== undefined ? { old: i + 1 } : {}),
      new: j + 1,
      bytes: l.bytes,
      ...(ol && status === "changed" ? { oldBytes: ol.bytes } : {}),
      items: l.items.length,
      itemsIn: status === "unchanged" ? [] : minus(l.items, ol?.items ?? []),
      itemsOut: status === "changed" ? minus(ol!.items, l.items) : [],
      ...(status === "changed" && l.entries && ol?.entries ? entryChanges(ol.entries, l.entries) : {}),
      label: label(l),
    };
  });
  const paired = new Set(oldOf.filter((i) => i !== undefined));
  o.layers.forEach((l, i) => {
    if (!paired.has(i)) layers.push({ status: "removed", old: i + 1, bytes: l.bytes, items: l.items.length, itemsIn: [], itemsOut: l.items, label: label(l) });
  });

  const oldLayerOf = new Map<string, number>();
  o.layers.forEach((l, i) => l.items.forEach((it) => oldLayerOf.set(key(it), i)));
  const moved: MovedItem[] = [];
  n.layers.forEach((l, j) => {
    for (const it of l.items) {
      const i = oldLayerOf.get(key(it));
      if (i !== undefined && i !== oldOf[j]) moved.push({ ...it, from: i + 1, to: j + 1 });
    }
  });
  moved.sort((a, b) => a.to - b.to || bySize(a, b));

  const oldItems = o.layers.flatMap((l) => l.items);
  const newItems = n.layers.flatMap((l) => l.items);
  const added = minus(newItems, oldItems).sort(bySize);
  const removed = minus(oldItems, newItems).sort(bySize);
  const oldIds = new Set(o.layers.map((l) => l.id));
  const pulled = n.layers.filter((l) => !oldIds.has(l.id));
  const pull: PlanDiff["pull"] = { layers: pulled.length, bytes: pulled.reduce((s, l) => s + l.bytes, 0) };
  if (n.kind === "image") pull.uncompressedBytes = pulled.reduce((s, l) => s + (l.uncompressedBytes ?? 0), 0);
  const total = (s: DiffSide) => s.layers.reduce((x, l) => x + l.bytes, 0);
  return {
    kind: n.kind,
    old: { label: o.label, layers: o.layers.length, bytes: total(o) },
    new: { label: n.label, layers: n.layers.length, bytes: total(n) },
    pull,
    changed: { items: added.length, bytes: sum(added) },
    layers,
    moved,
    added,
    removed,
    notes,
  };
}

/** The diff of two plans. */
export function diffPlans(old: LayerPlan, neu: LayerPlan, labels: { old: string; new: string } = { old: "OLD", new: "NEW" }): PlanDiff {
  const d = diffSides(planSide(old, labels.old), planSide(neu, labels.new));
  if (old.max !== neu.max) d.notes.push(`layers.max changed: ${old.max} -> ${neu.max}`);
  if (old.strategy !== neu.strategy) d.notes.push(`layers.strategy changed: ${old.strategy} -> ${neu.strategy}`);
  const base = (p: LayerPlan) => (p.base ? `${p.base.image} (${p.base.id.slice(0, 19)}..., ${p.base.layers.length} layers)` : "none");
  if (old.base?.id !== neu.base?.id || old.base?.image !== neu.base?.image) {
    const pulled = neu.base ? neu.base.layers.filter((l) => !old.base?.layers.some((o) => o.diffId === l.diffId)) : [];
    d.notes.push(`the base image changed: ${base(old)} -> ${base(neu)}; ${pulled.length} of its layers new to a host that has OLD (${pulled.reduce((n, l) => n + l.size, 0)} bytes)`);
  }
  return d;
}
