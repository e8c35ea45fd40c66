/**
 * `push --from SOURCE --to REF`: pushes an existing image (any name src/oci/name.ts reads) without building it.
 * Layer blobs are read only for the uploads the registry needs (the push HEADs first), each checked against its
 * digest (src/image/write.ts). A docker archive's layers are all checked against the config's diff_ids first, in the
 * pass that reads the archive: its digests are only what its bytes hash to, so a damaged layer would pass the rest.
 */
import { LayerpackError } from "../errors.ts";
import type { Image } from "../oci/image.ts";
import { parseImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import type { PushEvent, PushResult } from "../registry/push.ts";
import type { Reference } from "../registry/reference.ts";
import { writeImage } from "../image/write.ts";

export interface PushFromOptions {
  from: string;
  to: Reference;
  /** Tags to push; default: the reference's tag, else the source's own tags. */
  tags: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  insecure: boolean;
  onEvent?: (e: PushEvent) => void;
  /** The layer cache directory, for mount hints; none: every blob the registry lacks in the target is uploaded. */
  cacheDir?: string;
  signal?: AbortSignal | undefined;
}

/** The tags an image carries: `name:tag` RepoTags of a docker archive, ref names of a layout. */
function ownTags(image: Image): string[] {
  return image.names.map((n) => (image.kind === "docker-archive" ? n.slice(n.lastIndexOf(":") + 1) : n)).filter((t) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(t));
}

export async function pushFrom(opts: PushFromOptions): Promise<PushResult> {
  const source = parseImageName(opts.from, { cwd: opts.cwd });
  // --insecure is for the --to registry: a source elsewhere keeps HTTPS, and with it its credentials' privacy.
  const insecure = opts.insecure && source.transport === "registry" && source.reference.registry === opts.to.registry;
  // Layers checked in the pass that reads the archive: writeImage then need not read it again for that.
  const image = await openImage(source, { env: opts.env, verifyLayers: true, ...(insecure ? { insecure } : {}), signal: opts.signal });
  const tags = opts.to.tag !== undefined ? [opts.to.tag] : opts.tags.length > 0 ? opts.tags : ownTags(image);
  if (tags.length === 0) throw new LayerpackError(`push --from ${opts.from}: the image has no tag of its own; give one in --to (REGISTRY/NAME:TAG) or with --tag`);
  const text = `docker://${opts.to.registry}/${opts.to.repository}`;
  const result = await writeImage(image, { transport: "registry", reference: opts.to, text }, { tags, env: opts.env, insecure: opts.insecure, ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), signal: opts.signal });
  return result.push!;
}
