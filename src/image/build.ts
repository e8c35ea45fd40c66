/**
 * The execute stage: plan + closure -> image. Each layer is streamed once through LayerSink (tar -> diff_id ->
 * compressor -> digest) straight into the output archive, which is written under a temp name and renamed at the end.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import type { ImageSpec } from "../spec/schema.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan, PlannedLayer } from "../plan/types.ts";
import { resolveEntrypoint } from "../plan/custom.ts";
import { canonicalJson, imageConfig, type HistoryEntry } from "./config.ts";
import { createBlobFile, LayerSink, type BlobResult, type BlobTarget } from "./sink.ts";
import { writeLayer, type LayerContent, type LayerContext } from "./layer.ts";
import { checkOutputDir, writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import { ImageView } from "./view.ts";
import { MEDIA_TYPES, type LayerDescriptor } from "./types.ts";

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
  layers: LayerDescriptor[];
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

/** Layers whose NAR size suggests a tar near the 8 GiB ustar limit are written to a file first (see docker-archive). */
const STREAM_LIMIT = 6 * 1024 ** 3;

async function produceLayer(target: BlobTarget, content: LayerContent, spec: ImageSpec, ctx: LayerContext): Promise<BlobResult> {
  const sink = new LayerSink(target, spec.compression);
  try {
    await writeLayer(sink, content, ctx);
    return await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

export async function buildImage(input: BuildInput): Promise<BuildResult> {
  const { spec, closure, plan } = input;
  const output = path.resolve(spec.output.path);
  checkOutputDir(output);
  const created = spec.created ?? "1970-01-01T00:00:01Z";
  const mtime = epochSeconds(created);
  const entrypoint = resolveEntrypoint(spec, closure);
  if (entrypoint) new ImageView(closure, customEntries(plan)).checkEntrypoint(entrypoint);
  const ctx: LayerContext = { store: closure.store, mtime, sourceDir: input.configDir };
  const mediaType = MEDIA_TYPES[spec.compression];
  const count = plan.layers.length;

  return writeAtomically(output, async (temp) => {
    const archive = new DockerArchiveWriter(temp, mtime);
    try {
      const layers: LayerDescriptor[] = [];
      const history: HistoryEntry[] = [];
      for (const [index, layer] of plan.layers.entries()) {
        const content = layerContent(layer);
        input.onEvent?.({ type: "layer-start", index, count, items: content.items.length });
        let blob: BlobResult;
        if (layer.kind === "store" && layer.size > STREAM_LIMIT) {
          const file = `${temp}.layer-${index}`;
          const target = createBlobFile(file);
          try {
            blob = await produceLayer(target, content, spec, ctx);
            archive.addLayerFile({ ...blob, mediaType, file });
          } finally {
            fs.closeSync(target.fd);
            fs.rmSync(file, { force: true });
          }
        } else {
          blob = await archive.addLayer(mediaType, (target) => produceLayer(target, content, spec, ctx));
        }
        input.onEvent?.({ type: "layer-done", index, count, blob });
        layers.push({ digest: blob.digest, diffId: blob.diffId, size: blob.size, mediaType });
        history.push({ created, created_by: "layerpack", comment: historyComment(layer) });
      }
      const config = Buffer.from(
        canonicalJson(imageConfig({ spec, entrypoint, created, diffIds: layers.map((l) => l.diffId), history })),
      );
      const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
      const repoTag = `${spec.name}:${spec.tag ?? planTag(plan)}`;
      archive.finish({ config, configDigest, repoTags: [repoTag], layers });
      input.onEvent?.({ type: "output", path: output });
      return { output, imageId: configDigest, repoTag, layers };
    } finally {
      archive.close();
    }
  });
}
