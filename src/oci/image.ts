/**
 * The image as a value: what every reader returns (docker archive, OCI layout, OCI archive, registry) and what
 * `push --from`, `diff` and base images take. Metadata is read and checked up front; layer bytes only when a
 * layer is opened, and then checked against the layer's digest and size as they stream.
 */
import type { Readable } from "node:stream";

export type ImageKind = "oci-layout" | "oci-archive" | "docker-archive" | "registry";

export interface Layer {
  /** `sha256:<hex>` and bytes of the stored blob (what a registry serves). */
  digest: string;
  size: number;
  mediaType: string;
  /** `sha256:<hex>` of the uncompressed tar, from the config's rootfs.diff_ids. */
  diffId?: string;
  /** The config history entry of this layer (layerpack: the store items in it). */
  comment?: string;
  /** The stored blob's bytes; the stream fails when they do not match digest and size. */
  open(): Promise<Readable>;
}

export interface Image {
  kind: ImageKind;
  /** The path or reference read. */
  source: string;
  /** Names the image goes by there (ref names, RepoTags, or the reference). */
  names: string[];
  /** The platforms of the multi-platform index this image was chosen from (`os/arch[/variant]`). */
  platforms?: string[];
  manifestDigest?: string;
  manifest: unknown;
  /** The manifest's annotations (a build's own, or an OCI manifest's), kept when the image is written elsewhere. */
  annotations?: Record<string, string>;
  configDigest: string;
  config: Record<string, unknown>;
  /** The config blob exactly as stored (its sha256 is configDigest): a copy must keep these bytes. */
  configBytes(): Buffer;
  layers: Layer[];
  /**
   * Checks what reading the image left unchecked: a docker archive's layers against the config's diff_ids, in one
   * more pass over the archive (openImage's verifyLayers does it in its own pass instead). Absent when there is
   * nothing left to check. writeImage calls it before it writes or uploads anything.
   */
  verifyLayers?(): Promise<void>;
}
