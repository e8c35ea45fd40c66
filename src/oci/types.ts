/** The OCI documents' shapes and media types (image-spec), shared by readers, writers and the registry code. */

export const MEDIA_TYPES = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;

/** OCI media types of the documents around the layers (image-spec media-types.md). */
export const OCI_MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layout: "application/vnd.oci.image.layout.v1+json",
} as const;

/** A content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

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
  /** The manifest's annotations (and the layout index entries'), sorted. */
  annotations?: Record<string, string>;
}

