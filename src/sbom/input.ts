/**
 * What both SBOM formats are made from, checked and put in canonical order once, so that the documents depend
 * only on the closure's content: never on input order, the clock, or randomness.
 */
import { createHash } from "node:crypto";
import { LayerpackError } from "../errors.ts";
import { normaliseNarHash } from "../store/path.ts";
import { byBytes } from "../util/bytes.ts";
import { parseStoreName, storeHash, type ParsedStoreName } from "./names.ts";

/** A store item as the closure has it; `narHash` in any form the stores write (hex, nix32, SRI). */
export interface SbomItem {
  path: string;
  narSize: number;
  narHash?: string;
  references: readonly string[];
}

export interface SbomImage {
  /** The image's name as the user knows it, e.g. `registry.example/app:1.2` or `app`. */
  name: string;
  /** `<alg>:<hex>` of the image manifest (the SBOM's subject); the image ID when there is no manifest. */
  digest: string;
}

export interface SbomInput {
  /** Every item of the closure (`Closure.items`); any order. */
  items: readonly SbomItem[];
  /** Items the image depends on directly (`Closure.roots`); default: the items no other item refers to. */
  roots?: readonly string[];
  image: SbomImage;
  /** ISO 8601 creation time; default the epoch, so an SBOM is reproducible. See `sbomTimestamp`. */
  created?: string;
  /** layerpack's version, for the creator/tool fields. */
  toolVersion: string;
  /** Base URI of SPDX document namespaces (default https://layerpack.dev/spdx). */
  namespaceBase?: string;
}

/** An item, checked, with what the formats need from it precomputed. */
export interface NormalItem extends ParsedStoreName {
  path: string;
  narSize: number;
  /** Lowercase hex SHA-256 of the NAR, when known. */
  sha256?: string;
  /** Deduplicated, self reference dropped, bytewise sorted. */
  references: string[];
  /** Hash part of the store path (or a sanitized stand-in), unique within the closure. */
  id: string;
}

export interface NormalInput {
  items: NormalItem[];
  roots: string[];
  image: SbomImage & { algorithm: string; hex: string };
  created: string;
  toolVersion: string;
  namespace: string;
}

export const EPOCH = "1970-01-01T00:00:00Z";
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

function fail(why: string): never {
  throw new LayerpackError(`SBOM: ${why}`);
}

/** `created` for SPDX and CycloneDX: UTC, whole seconds (SPDX allows no fractions), `Z` suffix. */
export function normaliseTimestamp(text: string): string {
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) fail(`created must be an ISO 8601 date-time such as ${EPOCH}, got ${JSON.stringify(text)}`);
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The creation time SOURCE_DATE_EPOCH (seconds since the epoch) stands for; the epoch when it is unset. */
export function sbomTimestamp(sourceDateEpoch?: string | number): string {
  if (sourceDateEpoch === undefined || sourceDateEpoch === "") return EPOCH;
  const s = typeof sourceDateEpoch === "number" ? sourceDateEpoch : /^\d+$/.test(sourceDateEpoch) ? Number(sourceDateEpoch) : NaN;
  if (!Number.isSafeInteger(s) || s < 0) fail(`SOURCE_DATE_EPOCH must be a whole number of seconds, got ${JSON.stringify(sourceDateEpoch)}`);
  return normaliseTimestamp(new Date(s * 1000).toISOString());
}

/** Characters SPDX ids and namespace names allow; everything else becomes `-`. */
export const sanitize = (s: string): string => s.replace(/[^A-Za-z0-9.-]+/g, "-");

/** An item's id in both formats' identifiers: its hash part, or for a path that is no store path, the path sanitized. */
export const itemId = (path: string): string => storeHash(path) ?? sanitize(path.slice(1));

function normaliseItem(it: SbomItem): NormalItem {
  if (typeof it.path !== "string" || !it.path.startsWith("/")) fail(`item path ${JSON.stringify(it.path)} is not absolute`);
  if (!Number.isSafeInteger(it.narSize) || it.narSize < 0) fail(`${it.path}: narSize ${it.narSize} is not a byte count`);
  const item: NormalItem = {
    ...parseStoreName(it.path),
    path: it.path,
    narSize: it.narSize,
    references: [...new Set(it.references)].filter((r) => r !== it.path).sort(byBytes),
    id: itemId(it.path),
  };
  if (it.narHash !== undefined) {
    const hash = normaliseNarHash(it.narHash);
    if (hash === undefined) fail(`${it.path}: unreadable NAR hash ${JSON.stringify(it.narHash)} (expected sha256 hex, nix32 or SRI)`);
    item.sha256 = hash.slice("sha256:".length);
  }
  return item;
}

/** Checks the input and puts it in canonical order (items by path, bytewise). */
export function normaliseInput(input: SbomInput): NormalInput {
  const items = input.items.map(normaliseItem).sort((a, b) => byBytes(a.path, b.path));
  const paths = new Set<string>();
  const ids = new Set<string>();
  for (const it of items) {
    if (paths.has(it.path)) fail(`${it.path} is listed twice`);
    if (ids.has(it.id)) fail(`${it.path}: two items share the id ${it.id}`);
    paths.add(it.path);
    ids.add(it.id);
  }
  for (const it of items) {
    for (const r of it.references) if (!paths.has(r)) fail(`${it.path} refers to ${r}, which is not in the closure`);
  }
  let roots: string[];
  if (input.roots !== undefined) {
    roots = [...new Set(input.roots)].sort(byBytes);
    for (const r of roots) if (!paths.has(r)) fail(`root ${r} is not in the closure`);
  } else {
    const referenced = new Set(items.flatMap((it) => it.references));
    roots = items.map((it) => it.path).filter((p) => !referenced.has(p));
  }
  const digest = DIGEST_RE.exec(input.image.digest);
  if (!digest) fail(`image digest ${JSON.stringify(input.image.digest)} is not <algorithm>:<encoded>`);
  // The OCI registered algorithms: lowercase hex of the full length (image-spec descriptor.md).
  const hexLength = HEX_LENGTH[digest[1]!];
  if (hexLength !== undefined && !new RegExp(`^[a-f0-9]{${hexLength}}$`).test(digest[2]!)) {
    fail(`image digest ${JSON.stringify(input.image.digest)}: ${digest[1]} needs ${hexLength} lowercase hex digits`);
  }
  if (input.image.name === "") fail("the image needs a name");
  if (input.toolVersion === "") fail("toolVersion is empty");
  const base = (input.namespaceBase ?? "https://layerpack.dev/spdx").replace(/\/+$/, "");
  return {
    items,
    roots,
    image: { name: input.image.name, digest: input.image.digest, algorithm: digest[1]!, hex: digest[2]! },
    created: normaliseTimestamp(input.created ?? EPOCH),
    toolVersion: input.toolVersion,
    // Unique per image (the manifest digest pins every layer, hence every item) and free of randomness.
    namespace: `${base}/${sanitize(input.image.name)}-${digest[2]!}`,
  };
}

/** RFC 9562 UUID version 5 (SHA-1, name based): the same name always gives the same UUID. */
export function uuidV5(name: string, namespace = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"): string {
  const h = createHash("sha1").update(Buffer.from(namespace.replace(/-/g, ""), "hex")).update(name, "utf8").digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// Image names that are not registry references (src/oci/name.ts reads the same forms).
const TRANSPORT_RE = /^(?:docker-archive|oci|oci-archive|containers-storage|dir|docker-daemon|ostree|sif|tarball):(?!\d+\/)/;
const FILE_LIKE_RE = /\.(?:tar|tgz|gz|zst|json|ya?ml)$/;

/**
 * purl of the image (pkg:oci, package-url's type for OCI artifacts): the repository's last segment, lowercased,
 * at the digest; repository_url and tag when the name is a registry reference. Undefined for names that are
 * file paths or transports other than docker://.
 */
export function imagePurl(image: SbomImage): string | undefined {
  let ref = image.name.startsWith("docker://") ? image.name.slice("docker://".length) : image.name;
  if (!/^[A-Za-z0-9]/.test(ref) || TRANSPORT_RE.test(ref) || FILE_LIKE_RE.test(ref)) return undefined;
  ref = ref.replace(/@[^@]*$/, "");
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  const tag = colon > slash ? ref.slice(colon + 1) : undefined;
  const repo = colon > slash ? ref.slice(0, colon) : ref;
  const name = repo.slice(repo.lastIndexOf("/") + 1).toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) return undefined;
  const enc = (s: string) => encodeURIComponent(s).replace(/%2F/g, "/");
  const qualifiers = [
    ...(repo.includes("/") ? [`repository_url=${enc(repo.toLowerCase())}`] : []),
    ...(tag !== undefined ? [`tag=${enc(tag)}`] : []),
  ];
  return `pkg:oci/${name}@${enc(image.digest)}${qualifiers.length > 0 ? `?${qualifiers.join("&")}` : ""}`;
}

/** Canonical JSON bytes: keys sorted bytewise at every level, 2-space indent, trailing newline. */
export function sbomBytes(doc: unknown): Buffer {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort(byBytes)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  };
  return Buffer.from(`${JSON.stringify(sortKeys(doc), null, 2)}\n`, "utf8");
}
