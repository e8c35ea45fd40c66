/** What the executor hands to output writers. */

/** A layer as manifests describe it. */
export interface LayerDescriptor {
  /** `sha256:<hex>` of the stored blob. */
  digest: string;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  /** Bytes of the stored blob. */
  size: number;
  mediaType: string;
}

/** A layer whose stored blob is a file on disk. */
export interface LayerBlob extends LayerDescriptor {
  file: string;
}

export interface BuiltImage {
  /** Canonical config JSON bytes; its sha256 is the image ID. */
  config: Buffer;
  configDigest: string;
  layers: LayerDescriptor[];
  /** `name:tag` references. */
  repoTags: string[];
}

export { MEDIA_TYPES, OCI_MEDIA_TYPES, type Descriptor, type OciManifest, type OciIndex } from "../oci/types.ts";
