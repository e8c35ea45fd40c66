/** What the executor hands to output writers: an image whose blobs are files on disk. */

export interface LayerBlob {
  /** `sha256:<hex>` of the stored blob. */
  digest: string;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  /** Bytes of the stored blob. */
  size: number;
  mediaType: string;
  /** Host file holding the blob. */
  file: string;
}

export interface BuiltImage {
  /** Canonical config JSON bytes; its sha256 is the image ID. */
  config: Buffer;
  configDigest: string;
  layers: LayerBlob[];
  /** `name:tag` references. */
  repoTags: string[];
  /** Seconds since the epoch, for the output archive's own entries. */
  mtime: number;
}

export const MEDIA_TYPES = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;
