/**
 * An OCI 1.1 artifact attached to an image (an SBOM, layerpack's cache record): an image manifest whose config is
 * the empty descriptor, whose single layer is the artifact's blob, and whose `subject` is the image manifest, so registries list it in the
 * image's referrers (image-spec manifest.md "Guidelines for Artifact Usage", distribution-spec "Listing
 * Referrers"). Pure: the caller uploads the blobs and the manifest.
 */
import { OCI_MEDIA_TYPES, type Descriptor } from "./types.ts";
import { byBytes } from "../util/bytes.ts";

/** IANA-registered media types of the two formats' JSON serialisations. */
export const SBOM_MEDIA_TYPES = {
  spdx: "application/spdx+json",
  cyclonedx: "application/vnd.cyclonedx+json",
} as const;

/** image-spec's empty descriptor: the two bytes `{}`. */
export const OCI_EMPTY_DESCRIPTOR = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
} as const;

export interface ArtifactManifest {
  schemaVersion: 2;
  mediaType: typeof OCI_MEDIA_TYPES.manifest;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject: Descriptor;
  annotations?: Record<string, string>;
}

export interface ArtifactInput {
  /** The image manifest (or index) the SBOM describes. */
  subject: Pick<Descriptor, "mediaType" | "digest" | "size">;
  /** The artifact's blob, e.g. `sbomBytes(doc)` with one of SBOM_MEDIA_TYPES; its annotations are kept. */
  blob: Descriptor;
  /** The artifact's type; default the SBOM's media type without parameters (`; version=1.6`). */
  artifactType?: string;
  /** Manifest annotations, e.g. org.opencontainers.image.created; copied into the referrers list by registries. */
  annotations?: Record<string, string>;
}

const sortedRecord = (r: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(r).sort(([a], [b]) => byBytes(a, b)));

function descriptor(d: Descriptor, what: string): Descriptor {
  if (!/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d.digest)) throw new TypeError(`${what}: bad digest ${JSON.stringify(d.digest)}`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new TypeError(`${what}: bad size ${d.size}`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.annotations !== undefined && Object.keys(d.annotations).length > 0 ? { annotations: sortedRecord(d.annotations) } : {}),
  };
}

/** The artifact manifest attaching `blob` to `subject`. Serialise it with sbomBytes or JSON.stringify. */
export function artifactManifest(input: ArtifactInput): ArtifactManifest {
  const artifactType = input.artifactType ?? input.blob.mediaType.split(";")[0]!.trim();
  // image-spec: artifactType MUST be set when config is the empty descriptor, and comply with RFC 6838.
  if (!/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/.test(artifactType)) {
    throw new TypeError(`artifactType ${JSON.stringify(artifactType)} is not a media type`);
  }
  return {
    schemaVersion: 2,
    mediaType: OCI_MEDIA_TYPES.manifest,
    artifactType,
    config: { ...OCI_EMPTY_DESCRIPTOR },
    layers: [descriptor(input.blob, "blob")],
    subject: descriptor(input.subject, "subject"),
    ...(input.annotations !== undefined && Object.keys(input.annotations).length > 0 ? { annotations: sortedRecord(input.annotations) } : {}),
  };
}

/**
 * The referrers tag schema's tag for a subject digest (distribution-spec, for registries without the referrers
 * API): the algorithm truncated to 32 characters, `-`, the encoded part truncated to 64, with every character
 * a tag may not hold replaced by `-`. `sha256:<hex>` becomes `sha256-<hex>`.
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(":");
  if (colon <= 0 || colon === digest.length - 1) throw new TypeError(`not a digest: ${JSON.stringify(digest)}`);
  const tag = `${digest.slice(0, colon).slice(0, 32)}-${digest.slice(colon + 1).slice(0, 64)}`;
  return tag.replace(/[^A-Za-z0-9_.-]/g, "-");
}
