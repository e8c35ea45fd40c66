/**
 * Artifacts attached to a manifest (OCI 1.1 `subject`): found through the referrers API, or the referrers tag
 * schema (`sha256-<hex>`, an image index) on registries without it, such as Debian's docker-registry; attached
 * by pushing the artifact's blobs and manifest, then, when the registry did not index it itself (no
 * `OCI-Subject` header), adding it to that tag's index. Everything read is bounded and checked: a registry is
 * an outside source.
 */
import { RegistryError } from "../errors.ts";
import { artifactManifest, OCI_EMPTY_DESCRIPTOR, referrersTag } from "./artifact.ts";
import { OCI_MEDIA_TYPES, type Descriptor } from "./types.ts";
import { SHA256_DIGEST, sha256Digest } from "../util/digest.ts";
import type { RegistryClient } from "../registry/client.ts";
import { parseShallowJson } from "../util/json.ts";

/** Manifests and indexes read here: referrer lists of a few artifacts are far below this. */
const MAX_LIST = 4 << 20;
/** Artifacts of one type looked at per subject (newest pushes first where the registry orders them). */
const MAX_ARTIFACTS = 16;

async function getJson(client: RegistryClient, suffix: string, accept: string): Promise<{ data: Buffer; json: Record<string, unknown> } | undefined> {
  const res = await client.request("GET", client.repoUrl(suffix), { headers: { accept }, expect: [200, 404, 400, 405], maxBytes: MAX_LIST });
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  const data = Buffer.from(await res.arrayBuffer());
  try {
    const json = parseShallowJson(data.toString("utf8")) as unknown;
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not an object");
    return { data, json: json as Record<string, unknown> };
  } catch (cause) {
    throw new RegistryError(`${client.registry}/${client.repository}: ${suffix} is not a JSON object (${(cause as Error).message})`);
  }
}

/** The descriptors of an index's `manifests` that are well formed; others are skipped. */
function descriptorsOf(index: Record<string, unknown>): (Descriptor & { artifactType?: string })[] {
  const list = Array.isArray(index.manifests) ? index.manifests : [];
  return list.filter(
    (d): d is Descriptor & { artifactType?: string } =>
      typeof d === "object" && d !== null && typeof d.digest === "string" && SHA256_DIGEST.test(d.digest) && Number.isSafeInteger(d.size) && d.size >= 0 && typeof d.mediaType === "string",
  );
}

/** The manifests of artifacts of `artifactType` whose subject is `subject` (a manifest digest). */
export async function findReferrers(client: RegistryClient, subject: string, artifactType: string): Promise<Descriptor[]> {
  const accept = OCI_MEDIA_TYPES.index;
  const api = await getJson(client, `referrers/${subject}?artifactType=${encodeURIComponent(artifactType)}`, accept);
  const index = api ?? (await getJson(client, `manifests/${referrersTag(subject)}`, accept));
  if (!index) return [];
  return descriptorsOf(index.json)
    .filter((d) => d.artifactType === artifactType)
    .slice(0, MAX_ARTIFACTS);
}

/** Reads an artifact manifest and its one blob, each checked against its digest; undefined when gone. */
export async function readArtifact(client: RegistryClient, manifest: Descriptor, expect: { subject: string; blobType: string; maxBytes: number }): Promise<Buffer | undefined> {
  const got = await getJson(client, `manifests/${manifest.digest}`, OCI_MEDIA_TYPES.manifest);
  if (!got) return undefined;
  const where = `${client.registry}/${client.repository}@${manifest.digest}`;
  if (sha256Digest(got.data) !== manifest.digest) throw new RegistryError(`${where}: the registry sent a manifest that does not match its digest`);
  const m = got.json as { subject?: { digest?: unknown }; layers?: unknown };
  if (m.subject?.digest !== expect.subject) throw new RegistryError(`${where}: its subject is not ${expect.subject}`);
  const blob = Array.isArray(m.layers) && m.layers.length === 1 ? (m.layers[0] as Partial<Descriptor>) : undefined;
  if (!blob || blob.mediaType !== expect.blobType || typeof blob.digest !== "string" || !SHA256_DIGEST.test(blob.digest) || !Number.isSafeInteger(blob.size)) {
    throw new RegistryError(`${where}: not an artifact of one ${expect.blobType} blob`);
  }
  if (blob.size! > expect.maxBytes) throw new RegistryError(`${where}: its blob is ${blob.size} bytes, over the ${expect.maxBytes} limit`);
  const res = await client.request("GET", client.repoUrl(`blobs/${blob.digest}`), { expect: [200, 404], maxBytes: expect.maxBytes });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const data = Buffer.from(await res.arrayBuffer());
  if (data.length !== blob.size || sha256Digest(data) !== blob.digest) throw new RegistryError(`${where}: its blob does not match ${blob.digest}`);
  return data;
}

async function putBlob(client: RegistryClient, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const head = await client.request("HEAD", client.repoUrl(`blobs/${digest}`), { expect: [200, 404] });
  await head.body?.cancel();
  if (head.status === 200) return digest;
  const start = await client.request("POST", client.repoUrl("blobs/uploads/"), { expect: [202], body: () => ({ body: new Uint8Array(0), length: 0 }) });
  await start.body?.cancel();
  const location = start.headers.get("location");
  if (!location) throw new RegistryError(`${client.registry}: no Location in the answer to starting an upload`);
  const url = new URL(location, client.repoUrl("blobs/uploads/"));
  url.searchParams.append("digest", digest);
  const put = await client.request("PUT", url.href, { headers: { "content-type": "application/octet-stream" }, body: () => ({ body: new Uint8Array(data), length: data.length }), expect: [201, 204] });
  await put.body?.cancel();
  return digest;
}

async function putManifest(client: RegistryClient, reference: string, doc: { data: Buffer; mediaType: string }): Promise<Response> {
  const { data, mediaType } = doc;
  const res = await client.request("PUT", client.repoUrl(`manifests/${reference}`), { headers: { "content-type": mediaType }, body: () => ({ body: new Uint8Array(data), length: data.length }), expect: [201, 200] });
  await res.body?.cancel();
  return res;
}

/**
 * Adds `entry` to the referrers tag's index of `subject`. Two pushers may update it at once (read, add, write):
 * the write is checked by reading the index back, and tried again while a concurrent write dropped our entry.
 */
async function addToFallbackIndex(client: RegistryClient, subject: string, entry: Descriptor & { artifactType: string }): Promise<void> {
  const tag = referrersTag(subject);
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await getJson(client, `manifests/${tag}`, OCI_MEDIA_TYPES.index);
    const others = current ? descriptorsOf(current.json).filter((d) => d.digest !== entry.digest) : [];
    const index = { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [...others, entry] };
    await putManifest(client, tag, { data: Buffer.from(JSON.stringify(index)), mediaType: OCI_MEDIA_TYPES.index });
    const back = await getJson(client, `manifests/${tag}`, OCI_MEDIA_TYPES.index);
    if (back && descriptorsOf(back.json).some((d) => d.digest === entry.digest)) return;
  }
  throw new RegistryError(`${client.registry}/${client.repository}: could not add an entry to the referrers tag ${tag}: other pushes kept replacing it`);
}

export interface AttachOptions {
  /** The image manifest the artifact is about. */
  subject: Pick<Descriptor, "mediaType" | "digest" | "size">;
  artifactType: string;
  blob: { data: Buffer; mediaType: string };
  annotations?: Record<string, string>;
}

/** Pushes an artifact whose subject is `opts.subject`; returns its manifest digest. */
export async function attachArtifact(client: RegistryClient, opts: AttachOptions): Promise<string> {
  const blobDigest = sha256Digest(opts.blob.data);
  const manifest = artifactManifest({
    subject: opts.subject,
    blob: { mediaType: opts.blob.mediaType, digest: blobDigest, size: opts.blob.data.length },
    artifactType: opts.artifactType,
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
  if (manifest.config.digest !== OCI_EMPTY_DESCRIPTOR.digest) throw new Error("artifact config is not the empty descriptor");
  const data = Buffer.from(JSON.stringify(manifest));
  const digest = sha256Digest(data);
  // Attached before (the same push again): only reads.
  if ((await findReferrers(client, opts.subject.digest, opts.artifactType)).some((d) => d.digest === digest)) return digest;
  await putBlob(client, Buffer.from("{}"));
  await putBlob(client, opts.blob.data);
  const res = await putManifest(client, digest, { data, mediaType: OCI_MEDIA_TYPES.manifest });
  // A registry with the referrers API indexes the artifact itself and says so.
  if (res.headers.get("oci-subject") !== opts.subject.digest) {
    await addToFallbackIndex(client, opts.subject.digest, { mediaType: OCI_MEDIA_TYPES.manifest, digest, size: data.length, artifactType: opts.artifactType, ...(opts.annotations ? { annotations: opts.annotations } : {}) });
  }
  return digest;
}
