/**
 * `push --from SOURCE --to REF`: pushes an existing image (any name src/oci/name.ts reads) without building it.
 * Layer blobs are fetched only for the uploads the registry needs (the push HEADs first), each checked against
 * its digest as it is read: a layout's blob in place, anything else spooled into a private temporary directory
 * that is removed afterwards.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { LayerpackError } from "../errors.ts";
import type { Image } from "../oci/image.ts";
import { parseImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { pushImage, type PushEvent, type PushImage, type PushResult } from "../registry/push.ts";
import type { Reference } from "../registry/reference.ts";
import { ociManifest } from "../image/oci-layout.ts";
import { OCI_MEDIA_TYPES } from "../oci/types.ts";

export interface PushFromOptions {
  from: string;
  to: Reference;
  /** Tags to push; default: the reference's tag, else the source's own tags. */
  tags: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  insecure: boolean;
  onEvent?: (e: PushEvent) => void;
}

/** The tags an image carries: `name:tag` RepoTags of a docker archive, ref names of a layout. */
function ownTags(image: Image): string[] {
  return image.names.map((n) => (image.kind === "docker-archive" ? n.slice(n.lastIndexOf(":") + 1) : n)).filter((t) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(t));
}

function asPushImage(image: Image, spool: string): PushImage {
  const layers = image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId ?? l.digest, size: l.size, mediaType: l.mediaType }));
  return {
    config: image.configBytes(),
    configDigest: image.configDigest,
    layers,
    manifest: ociManifest({ config: image.configBytes(), configDigest: image.configDigest, layers }),
    manifestMediaType: OCI_MEDIA_TYPES.manifest,
    async layerFile(i) {
      const layer = image.layers[i]!;
      if (image.kind === "oci-layout") {
        // Read through once to check it; the push then reads the same file (it lives in the layout).
        await pipeline(await layer.open(), new Writable({ write: (_c, _e, done) => done() }));
        return path.join(image.source, "blobs", "sha256", layer.digest.slice("sha256:".length));
      }
      const file = path.join(spool, layer.digest.slice("sha256:".length));
      await pipeline(await layer.open(), fs.createWriteStream(file, { flags: "wx", mode: 0o600 }));
      return file;
    },
  };
}

export async function pushFrom(opts: PushFromOptions): Promise<PushResult> {
  const image = await openImage(parseImageName(opts.from, { cwd: opts.cwd }), { env: opts.env, ...(opts.insecure ? { insecure: true } : {}) });
  const tags = opts.to.tag !== undefined ? [opts.to.tag] : opts.tags.length > 0 ? opts.tags : ownTags(image);
  if (tags.length === 0) throw new LayerpackError(`push --from ${opts.from}: the image has no tag of its own; give one in --to (REGISTRY/NAME:TAG) or with --tag`);
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-push-"));
  try {
    return await pushImage(asPushImage(image, spool), {
      ref: opts.to,
      tags,
      env: opts.env,
      ...(opts.insecure ? { insecure: true } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    });
  } finally {
    fs.rmSync(spool, { recursive: true, force: true });
  }
}
