/** The one place one-shot SHA-256 digests are made (streams keep their own Hash objects). */
import { createHash } from "node:crypto";

/** Lowercase hex SHA-256 of `data` (strings as UTF-8). */
export const sha256Hex = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

/** An OCI digest, `sha256:<hex>`. */
export const sha256Digest = (data: Buffer | string): string => `sha256:${sha256Hex(data)}`;
