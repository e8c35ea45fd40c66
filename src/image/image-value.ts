/**
 * A build's image as a value (src/oci/image.ts), its layers read from where the build left them: cache blobs, a
 * pack, the docker archive just written (each layer at its offset there) or the OCI layout's blobs. `writeImage`
 * (write.ts) takes it to any other output without building again.
 */
import * as fs from "node:fs";
import { Readable } from "node:stream";
import { LayerpackError } from "../errors.ts";
import type { Image, Layer } from "../oci/image.ts";
import { verifying } from "../oci/verify.ts";
import type { BuiltImage, LayerDescriptor } from "../oci/types.ts";

/** A layer whose blob lies in `file` from `offset` on. */
export interface FileLayer extends Layer {
  file: string;
  offset: number;
}

export function fileLayer(d: LayerDescriptor, file: string, offset = 0): FileLayer {
  return {
    digest: d.digest,
    diffId: d.diffId,
    size: d.size,
    mediaType: d.mediaType,
    file,
    offset,
    async open() {
      if (!fs.existsSync(file)) throw new LayerpackError(`layer ${d.digest}: ${file}, where the build left it, is gone (a build without a cache keeps no layers after a push)`);
      const stream = d.size === 0 ? Readable.from([]) : fs.createReadStream(file, { start: offset, end: offset + d.size - 1 });
      return stream.pipe(verifying(d, file));
    },
  };
}

export const isFileLayer = (l: Layer): l is FileLayer => typeof (l as FileLayer).file === "string";

export interface BuiltImageSource {
  /** The output the image was written to (Image.source). */
  source: string;
  kind: Image["kind"];
  /** Where layer `i`'s blob lies. */
  where: (i: number) => { file: string; offset?: number };
}

/** The Image of a built image whose layers lie where `at.where` says. */
export function builtImage(image: BuiltImage, at: BuiltImageSource): Image {
  const { source, kind, where } = at;
  const config = JSON.parse(image.config.toString("utf8")) as Record<string, unknown>;
  return {
    kind,
    source,
    names: image.repoTags,
    configDigest: image.configDigest,
    config,
    configBytes: () => image.config,
    manifest: undefined,
    ...(image.annotations ? { annotations: image.annotations } : {}),
    layers: image.layers.map((l, i) => {
      const at = where(i);
      return fileLayer(l, at.file, at.offset ?? 0);
    }),
  };
}
