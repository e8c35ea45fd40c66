/**
 * Sinks: an image (src/oci/image.ts) from any source or from a build, written to any image name — a docker
 * archive, an OCI layout or archive, or a registry — without building it again. A layer already in a file of its
 * own is used in place (hard-linked into a layout where it can be); any other is read once through its digest
 * check into a private temporary directory, removed afterwards.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { BuildError } from "../errors.ts";
import type { Image } from "../oci/image.ts";
import { parseImageName, type ImageName } from "../oci/name.ts";
import { OCI_MEDIA_TYPES, type BuiltImage } from "../oci/types.ts";
import { pushImage, type PushEvent, type PushResult } from "../registry/push.ts";
import { mountHintsFor } from "../registry/output.ts";
import { writeAtomically } from "./atomic.ts";
import { DockerArchiveWriter } from "./docker-archive.ts";
import { isFileLayer } from "./image-value.ts";
import { epochSeconds } from "./jobs.ts";
import { ociManifest, writeOciArchive, writeOciLayout, type ImageBlobs } from "./oci-layout.ts";

export interface WriteImageOptions {
  /** Relative paths in a name are relative to this; default the current directory. */
  cwd?: string;
  /** `name:tag` references to give the image (docker archive RepoTags, layout ref names); registry: the tags pushed. Default: the image's own names. */
  repoTags?: string[];
  /** Registry: the tags to push when the name has none; default the tags of repoTags. */
  tags?: string[];
  env?: Record<string, string | undefined>;
  insecure?: boolean;
  onEvent?: (e: PushEvent) => void;
  /** Registry: the layer cache directory whose mount hints (registry/output.ts) a push uses and keeps. */
  cacheDir?: string;
  /** Registry: ends the push (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

export interface WriteImageResult {
  /** The path written or the references pushed. */
  written: string[];
  push?: PushResult;
}

function blobsOf(image: Image, repoTags: string[], spool: string): ImageBlobs {
  const layers = image.layers.map((l, i) => {
    if (l.diffId === undefined) throw new BuildError(`${image.source}: layer ${i + 1} has no diff_id in the config, so it cannot be written into another image`);
    return { digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType };
  });
  const manifest = image.manifest as { annotations?: unknown } | undefined;
  const fromManifest = typeof manifest?.annotations === "object" && manifest.annotations !== null ? (manifest.annotations as Record<string, string>) : undefined;
  const annotations = image.annotations ?? fromManifest;
  return {
    config: image.configBytes(),
    configDigest: image.configDigest,
    layers,
    repoTags,
    ...(annotations ? { annotations } : {}),
    async layerFile(i) {
      const layer = image.layers[i]!;
      if (isFileLayer(layer) && layer.offset === 0 && fs.existsSync(layer.file) && fs.statSync(layer.file).size === layer.size) return layer.file;
      const file = path.join(spool, `${i}-${layer.digest.slice("sha256:".length)}`);
      if (!fs.existsSync(file)) await pipeline(await layer.open(), fs.createWriteStream(file, { flags: "wx", mode: 0o600 }));
      return file;
    },
  };
}

/** The image's own `name:tag` names (docker RepoTags and layerpack's layout ref names are both of that form). */
const ownTags = (image: Image) => image.names.filter((n) => /^[^:/@]+(?:\/[^:/@]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(n));

async function writeTo(name: ImageName, blobs: ImageBlobs, opts: WriteImageOptions & { mtime: number }): Promise<WriteImageResult> {
  const { mtime } = opts;
  switch (name.transport) {
    case "registry": {
      const tags = name.reference.tag !== undefined ? [name.reference.tag] : (opts.tags ?? blobs.repoTags.map((t) => t.slice(t.lastIndexOf(":") + 1)));
      if (tags.length === 0) throw new BuildError(`push to ${name.text}: no tag; give one in the name (REGISTRY/NAME:TAG)`);
      // With a cache: blobs pushed before to another repository of this registry are mounted, as a build's push does.
      const hints = mountHintsFor(opts.cacheDir, name.reference.registry);
      try {
        const push = await pushImage(
          { ...blobs, manifest: ociManifest(blobs), manifestMediaType: OCI_MEDIA_TYPES.manifest },
          { ref: name.reference, tags, hints, ...(opts.env ? { env: opts.env } : {}), ...(opts.insecure ? { insecure: true } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) },
        );
        return { written: push.references, push };
      } finally {
        hints.save();
      }
    }
    case "oci":
      await writeOciLayout(blobs, name.path);
      return { written: [name.path] };
    case "oci-archive":
      await writeOciArchive(blobs, name.path, mtime);
      return { written: [name.path] };
    case "docker-archive":
    case "path": {
      if (name.transport === "path" && fs.existsSync(name.path) && fs.statSync(name.path).isDirectory()) {
        throw new BuildError(`${name.path} is a directory: name the output docker-archive:FILE, oci:DIR or oci-archive:FILE`);
      }
      await writeAtomically(name.path, async (temp) => {
        const archive = new DockerArchiveWriter(temp, mtime);
        try {
          for (let i = 0; i < blobs.layers.length; i++) {
            if (!archive.addLayerFile({ ...blobs.layers[i]!, file: await blobs.layerFile(i) })) throw new BuildError(`layer ${i + 1} (${blobs.layers[i]!.digest}) does not match its digest`);
          }
          archive.finish(blobs as BuiltImage);
        } finally {
          archive.close();
        }
      });
      return { written: [name.path] };
    }
  }
}

/** Writes `image` to `target` (an image name, src/oci/name.ts; a plain path is a docker archive). */
export async function writeImage(image: Image, target: string | ImageName, opts: WriteImageOptions = {}): Promise<WriteImageResult> {
  const name = typeof target === "string" ? parseImageName(target, { cwd: opts.cwd ?? process.cwd() }) : target;
  const repoTags = opts.repoTags ?? ownTags(image);
  // Before anything is written: a registry already holding a damaged layer is never asked for its bytes.
  await image.verifyLayers?.();
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-write-"));
  try {
    const mtime = epochSeconds(typeof image.config.created === "string" ? image.config.created : "1970-01-01T00:00:01Z");
    return await writeTo(name, blobsOf(image, repoTags, spool), { ...opts, mtime });
  } finally {
    fs.rmSync(spool, { recursive: true, force: true });
  }
}
