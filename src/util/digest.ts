/** The one place one-shot SHA-256 digests are made (streams keep their own Hash objects). */
import { createHash } from "node:crypto";

/** Lowercase hex SHA-256 of `data` (strings as UTF-8). */
export const sha256Hex = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

/** What a sha256 OCI digest looks like (the only algorithm layerpack makes or accepts). */
export const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

/** An OCI digest, `sha256:<hex>`. */
export const sha256Digest = (data: Buffer | string): string => `sha256:${sha256Hex(data)}`;
