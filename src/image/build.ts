/**
 * The execute stage: plan + closure -> layer blobs -> output. Each layer is streamed once through LayerSink into a
 * work directory beside the output (same file system, removed afterwards); then the output is written atomically.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import type { ImageSpec } from "../spec/schema.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan, PlannedLayer } from "../plan/types.ts";
import { resolveEntrypoint } from "../plan/custom.ts";
import { canonicalJson, imageConfig, type HistoryEntry } from "./config.ts";
import { LayerSink, type BlobResult } from "./sink.ts";
import { writeLayer, type LayerContent } from "./layer.ts";
import { checkOutputDir } from "./atomic.ts";
import { writeDockerArchive } from "./docker-archive.ts";
import { ImageView } from "./view.ts";
import { MEDIA_TYPES, type BuiltImage, type LayerBlob } from "./types.ts";

export type BuildEvent =
  | { type: "layer-start"; index: number; count: number; items: number }
  | { type: "layer-done"; index: number; count: number; blob: BlobResult }
  | { type: "output"; path: string };

export interface BuildInput {
  spec: ImageSpec;
  closure: Closure;
  plan: LayerPlan;
  /** Directory relative `paths[].source` files are read from. */
  configDir: string;
  onEvent?: (event: BuildEvent) => void;
}

export interface BuildResult {
  output: string;
  /** `sha256:<hex>` of the config: the image ID. */
  imageId: string;
  repoTag: string;
  layers: Omit<LayerBlob, "file">[];
}

/** Seconds since the epoch of an RFC 3339 time. */
export function epochSeconds(created: string): number {
  return Math.floor(Date.parse(created) / 1000);
}

/** The default tag: a digest of the plan, so it changes exactly when the layer contents' description does. */
export function planTag(plan: LayerPlan): string {
  return createHash("sha256").update(canonicalJson(plan)).digest("hex").slice(0, 32);
}

export function layerContent(layer: PlannedLayer): LayerContent {
  if (layer.kind === "customisation") return { items: [], entries: layer.entries };
  return { items: layer.items.map((i) => i.path), entries: "entries" in layer && Array.isArray(layer.entries) ? layer.entries : [] };
}

function historyComment(layer: PlannedLayer): string {
  if (layer.kind === "customisation") return `customisation: ${layer.entries.length} entries`;
  const names = layer.items.map((i) => path.posix.basename(i.path).slice(33));
  const shown = names.length > 8 ? `${names.slice(0, 8).join(", ")}, ... (${names.length} items)` : names.join(", ");
  return `store: ${shown}`;
}

function customEntries(plan: LayerPlan) {
  return plan.layers.flatMap((l) => layerContent(l).entries);
}

export async function buildImage(input: BuildInput): Promise<BuildResult> {
  const { spec, closure, plan } = input;
  const output = path.resolve(spec.output.path);
  checkOutputDir(output);
  const created = spec.created ?? "1970-01-01T00:00:01Z";
  const mtime = epochSeconds(created);
  const entrypoint = resolveEntrypoint(spec, closure);
  if (entrypoint) new ImageView(closure, customEntries(plan)).checkEntrypoint(entrypoint);

  const work = fs.mkdtempSync(path.join(path.dirname(output), `.layerpack-build-`));
  try {
    const layers: LayerBlob[] = [];
    const history: HistoryEntry[] = [];
    for (const [index, layer] of plan.layers.entries()) {
      const content = layerContent(layer);
      input.onEvent?.({ type: "layer-start", index, count: plan.layers.length, items: content.items.length });
      const file = path.join(work, `layer-${index}`);
      const sink = new LayerSink(file, spec.compression);
      let blob: BlobResult;
      try {
        await writeLayer(sink, content, { store: closure.store, mtime, sourceDir: input.configDir });
        blob = await sink.finish();
      } catch (err) {
        sink.abort();
        throw err;
      }
      input.onEvent?.({ type: "layer-done", index, count: plan.layers.length, blob });
      layers.push({ digest: blob.digest, diffId: blob.diffId, size: blob.size, mediaType: MEDIA_TYPES[spec.compression], file });
      history.push({ created, created_by: "layerpack", comment: historyComment(layer) });
    }
    const config = Buffer.from(
      canonicalJson(imageConfig({ spec, entrypoint, created, diffIds: layers.map((l) => l.diffId), history })),
    );
    const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
    const repoTag = `${spec.name}:${spec.tag ?? planTag(plan)}`;
    const image: BuiltImage = { config, configDigest, layers, repoTags: [repoTag], mtime };
    await writeDockerArchive(image, output);
    input.onEvent?.({ type: "output", path: output });
    return { output, imageId: configDigest, repoTag, layers: layers.map(({ file: _file, ...l }) => l) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
