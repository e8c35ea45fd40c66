/**
 * Pushes an image (config, layers, manifest) to a registry, sending only what it lacks:
 * - each blob is HEADed first and skipped when present;
 * - a blob this machine pushed before to another repository of the same registry is mounted from there;
 * - otherwise uploaded: monolithic (POST, then PUT with the bytes) up to `chunkSize`, chunked (PATCH with
 *   Content-Range, following the newest Location each time, then PUT) above it. A failed upload is started over
 *   with backoff, then reported with the registry's answer;
 * - at most `concurrency` blobs at once; the manifest last, once per tag, its digest checked against the answer;
 *   refused because the registry lacks a blob it names, it is sent again after the blobs, up to MANIFEST_REPAIRS times.
 */
import { runPool } from "../util/pool.ts";
import * as fs from "node:fs";
import { Readable } from "node:stream";
import { RegistryError } from "../errors.ts";
import { RegistryClient, RequestError, resolveLocation, type BodyInit, type ClientOptions } from "./client.ts";
import type { Reference } from "./reference.ts";
import { sha256Digest } from "../util/digest.ts";

export type PushEvent =
  | { type: "blob"; digest: string; size: number; status: "exists" | "mounted" | "uploading" | "uploaded" }
  | { type: "manifest"; reference: string; digest: string; unchanged: boolean };

/** Where a blob was pushed before, per registry, so another repository can mount it instead of uploading. */
export interface MountHints {
  get(digest: string): string | undefined;
  put(digest: string, repository: string): void;
}

export interface PushOptions extends Omit<ClientOptions, "registry" | "repository"> {
  ref: Reference;
  /** Tags to push the manifest under (the reference's own tag wins when it has one). */
  tags: string[];
  /** Blobs sent at once; default 4. */
  concurrency?: number;
  /** Blobs larger than this are uploaded in chunks of this size; default 64 MiB. */
  chunkSize?: number;
  hints?: MountHints;
  onEvent?: (e: PushEvent) => void;
}

export interface PushResult {
  /** `sha256:<hex>` of the manifest. */
  digest: string;
  /** `registry/repository:tag` for each tag pushed. */
  references: string[];
  uploaded: number;
  uploadedBytes: number;
  mounted: number;
  existing: number;
}

/**
 * What a push sends: blobs and the manifest's bytes. The registry code knows the distribution protocol, not
 * image formats: the caller makes the manifest (src/image/oci-layout.ts: ociManifest).
 */
export interface PushImage {
  layers: { digest: string; size: number }[];
  /** The config blob's bytes and digest. */
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestMediaType: string;
  /** The blob file of `layers[index]`, checked against its digest. */
  layerFile(index: number): Promise<string>;
}

interface Blob {
  digest: string;
  size: number;
  /** Resolves the blob's file; call before open. */
  ready(): Promise<void>;
  /** Makes the body of bytes [start, end) (afresh on each call, so a request can be sent again). */
  open(start: number, end: number): BodyInit;
}

const sha256 = sha256Digest;

function fileBlob(digest: string, size: number, file: () => Promise<string>): Blob {
  let path: string | undefined;
  return {
    digest,
    size,
    async ready() {
      path ??= await file();
    },
    open(start, end) {
      if (end <= start) return new Uint8Array(0);
      if (path === undefined) throw new Error("blob file not resolved");
      return Readable.toWeb(fs.createReadStream(path, { start, end: end - 1 })) as unknown as BodyInit;
    },
  };
}

function dataBlob(data: Buffer): Blob {
  return { digest: sha256(data), size: data.length, ready: async () => {}, open: (start, end) => new Uint8Array(data.subarray(start, end)) };
}

class Pusher {
  readonly client: RegistryClient;
  readonly opts: PushOptions;
  readonly result: Omit<PushResult, "digest" | "references"> = { uploaded: 0, uploadedBytes: 0, mounted: 0, existing: 0 };

  constructor(opts: PushOptions, client: RegistryClient) {
    this.opts = opts;
    this.client = client;
  }

  get #where(): string {
    return `${this.opts.ref.registry}/${this.opts.ref.repository}`;
  }

  async exists(digest: string): Promise<boolean> {
    const res = await this.client.request("HEAD", this.client.repoUrl(`blobs/${digest}`), { expect: [200, 404] });
    await res.body?.cancel();
    return res.status === 200;
  }

  /** Returns the upload URL to use, or undefined when the blob was mounted. */
  async start(blob: Blob): Promise<string | undefined> {
    const from = this.opts.hints?.get(blob.digest);
    const base = this.client.repoUrl("blobs/uploads/");
    let url = base;
    if (from !== undefined && from !== this.opts.ref.repository) {
      await this.client.addPullScope(from);
      url = `${base}?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`;
    }
    const res = await this.client.request("POST", url, { expect: [201, 202], body: () => ({ body: new Uint8Array(0), length: 0 }) });
    await res.body?.cancel();
    if (res.status === 201) return undefined;
    return resolveLocation(res, url, { what: `starting the upload of ${blob.digest} to ${this.#where}`, redact: (t) => this.client.redact(t) });
  }

  async upload(blob: Blob, location: string): Promise<void> {
    const chunkSize = this.opts.chunkSize ?? 64 << 20;
    await blob.ready();
    const put = async (at: string, start: number, end: number) => {
      const u = new URL(at);
      u.searchParams.append("digest", blob.digest);
      const res = await this.client.request("PUT", u.href, {
        headers: { "content-type": "application/octet-stream" },
        body: () => ({ body: blob.open(start, end), length: end - start }),
        expect: [201, 204],
        retry: false,
      });
      await res.body?.cancel();
    };
    if (blob.size <= chunkSize) return put(location, 0, blob.size);
    let at = location;
    for (let start = 0; start < blob.size; start += chunkSize) {
      const end = Math.min(start + chunkSize, blob.size);
      const res = await this.client.request("PATCH", at, {
        headers: { "content-type": "application/octet-stream", "content-range": `${start}-${end - 1}` },
        body: () => ({ body: blob.open(start, end), length: end - start }),
        expect: [202, 204],
        retry: false,
      });
      await res.body?.cancel();
      at = resolveLocation(res, at, { what: `uploading ${blob.digest} to ${this.#where}`, redact: (t) => this.client.redact(t) });
    }
    return put(at, 0, 0);
  }

  /** Milliseconds to wait before retry `attempt` (0-based): exponential from `backoffMs`, at most 10 s. */
  backoff(attempt: number): number {
    return Math.min((this.opts.backoffMs ?? 500) * 2 ** attempt, 10_000);
  }

  /**
   * HEAD, then mount or upload; a failed upload starts over, up to the client's retries. `again`: the blob was
   * pushed before in this push (a repair), so finding it present is no news to count or report.
   */
  async push(blob: Blob, again = false): Promise<void> {
    const event = (status: "exists" | "mounted" | "uploading" | "uploaded") =>
      this.opts.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, status });
    if (await this.exists(blob.digest)) {
      if (again) return;
      this.result.existing++;
      this.opts.hints?.put(blob.digest, this.opts.ref.repository);
      return event("exists");
    }
    const retries = this.opts.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        const location = await this.start(blob);
        if (location === undefined) {
          this.result.mounted++;
          this.opts.hints?.put(blob.digest, this.opts.ref.repository);
          return event("mounted");
        }
        event("uploading");
        await this.upload(blob, location);
        this.result.uploaded++;
        this.result.uploadedBytes += blob.size;
        this.opts.hints?.put(blob.digest, this.opts.ref.repository);
        return event("uploaded");
      } catch (err) {
        // What the client already tried again, to its limit, is not tried again here: the two loops nested gave a
        // registry that answers 503 (Retry-After: 60) 25 tries and ~24 minutes per blob.
        const retryable = err instanceof RequestError && err.retryable && err.attempts === 1;
        if (!retryable || attempt >= retries) {
          // (The client's own tries of the last request counted too.)
          const tries = attempt + (err instanceof RequestError ? err.attempts : 1);
          throw new RegistryError(
            this.client.redact(`uploading blob ${blob.digest} (${blob.size} bytes) to ${this.#where} failed${tries > 1 ? ` after ${tries} attempts` : ""}: ${(err as Error).message}`),
            { cause: err instanceof RegistryError ? err : this.client.redactCause(err) },
          );
        }
        await this.client.pause((err as RequestError).retryAfterMs ?? this.backoff(attempt));
      }
    }
  }

  /** Puts the manifest under `tag`; returns false when the tag already pointed at it (nothing sent). */
  async putManifest(tag: string, doc: { manifest: Buffer; digest: string; mediaType: string }): Promise<boolean> {
    const { manifest, digest, mediaType } = doc;
    const url = this.client.repoUrl(`manifests/${tag}`);
    const head = await this.client.request("HEAD", url, { headers: { accept: mediaType }, expect: [200, 404] });
    await head.body?.cancel();
    if (head.status === 200 && head.headers.get("docker-content-digest") === digest) return false;
    const res = await this.client.request("PUT", url, {
      headers: { "content-type": mediaType },
      body: () => ({ body: new Uint8Array(manifest), length: manifest.length }),
      expect: [201, 200],
    });
    await res.body?.cancel();
    const answered = res.headers.get("docker-content-digest");
    if (answered && answered !== digest) {
      const shown = this.client.redact(answered).slice(0, 100);
      throw new RegistryError(`registry ${this.opts.ref.registry} stored the manifest of ${this.#where}:${tag} as ${shown}, not ${digest}; it rewrote the manifest`);
    }
    return true;
  }
}

/** Times a manifest that names a blob the registry says it lacks is sent again (after the blobs are). */
const MANIFEST_REPAIRS = 3;

const blobUnknown = (err: unknown): boolean =>
  err instanceof RequestError && err.codes.some((c) => c === "MANIFEST_BLOB_UNKNOWN" || c === "BLOB_UNKNOWN");

export async function pushImage(image: PushImage, opts: PushOptions): Promise<PushResult> {
  const tags = opts.ref.tag !== undefined ? [opts.ref.tag] : opts.tags;
  if (opts.ref.digest !== undefined) throw new RegistryError(`push to ${opts.ref.registry}/${opts.ref.repository}: give a tag, not a digest`);
  if (tags.length === 0) throw new RegistryError(`push to ${opts.ref.registry}/${opts.ref.repository}: no tag to push`);
  const client = new RegistryClient({ ...opts, registry: opts.ref.registry, repository: opts.ref.repository });
  // Events carry no secrets today; redacting their text keeps it so whatever they come to carry.
  const onEvent = opts.onEvent && ((e: PushEvent) => opts.onEvent!(Object.fromEntries(Object.entries(e).map(([k, v]) => [k, typeof v === "string" ? client.redact(v) : v])) as PushEvent));
  const pusher = new Pusher({ ...opts, ...(onEvent ? { onEvent } : {}) }, client);
  await pusher.client.ping();
  const seen = new Set<string>();
  const blobs: Blob[] = [];
  image.layers.forEach((layer, i) => {
    if (seen.has(layer.digest)) return;
    seen.add(layer.digest);
    blobs.push(fileBlob(layer.digest, layer.size, () => image.layerFile(i)));
  });
  if (!seen.has(image.configDigest)) blobs.push(dataBlob(image.config));
  // Largest first: the long uploads start early and the small ones fill in.
  blobs.sort((a, b) => b.size - a.size);
  await runPool(blobs, opts.concurrency ?? 4, (b) => pusher.push(b));
  const manifest = image.manifest;
  const digest = sha256(manifest);
  const references: string[] = [];
  // A registry that has just been sent a blob by two pushers at once can, for a moment, deny knowing it (seen
  // with Debian's docker-registry when two runners push sibling images to one repository). The manifest is then
  // sent again after the blobs are pushed once more (HEAD first, so only what is missing goes), a few times.
  const putManifest = async (tag: string): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await pusher.putManifest(tag, { manifest, digest, mediaType: image.manifestMediaType });
      } catch (err) {
        if (attempt >= MANIFEST_REPAIRS || !blobUnknown(err)) throw err;
        await pusher.client.pause(pusher.backoff(attempt));
        await runPool(blobs, opts.concurrency ?? 4, (b) => pusher.push(b, true));
      }
    }
  };
  for (const tag of tags) {
    const sent = await putManifest(tag);
    const reference = `${opts.ref.registry}/${opts.ref.repository}:${tag}`;
    references.push(reference);
    onEvent?.({ type: "manifest", reference, digest, unchanged: !sent });
  }
  return { digest, references, ...pusher.result };
}
