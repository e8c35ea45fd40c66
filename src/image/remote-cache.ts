/**
 * Cache sources (`--cache-from`, `cache.from`, and by default the image at the push target's tag): images whose
 * cache records (cache/record.ts) say which layer keys they hold. A build looks up each layer it would build; a
 * hit whose blob is still there (HEAD: same size) is reused: found by HEAD without reading the store when it is
 * in the very repository pushed to, else fetched into the local cache — its digest checked, and only when it
 * unpacks to the tar this host's store gives for the key (read and hashed here, not compressed), since a record is
 * another machine's word for which bytes a key stands for — and then mounted, when it is in another repository of
 * the registry pushed to. A source that cannot be read is a warning: the layer is built as if it had no record.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createGunzip } from "node:zlib";
import * as zlib from "node:zlib";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import type { LayerCache, CachedLayer } from "../cache/cache.ts";
import { CACHE_ARTIFACT_TYPE, CACHE_RECORD_ANNOTATION, MAX_RECORD_BYTES, parseRecord, type LayerRecord } from "../cache/record.ts";
import { MAX_DOCUMENT, readRegular } from "../oci/blob-file.ts";
import type { Image } from "../oci/image.ts";
import { parseImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { verifying } from "../oci/verify.ts";
import type { Platform } from "../oci/platform.ts";
import { RegistryClient } from "../registry/client.ts";
import { findReferrers, readArtifact } from "../oci/referrers.ts";
import { formatReference } from "../registry/reference.ts";
import { closureNar, localDiffId, recordFacts, type Job, type Prepared } from "./jobs.ts";
import type { Closure } from "../store/types.ts";
import type { BuildInput } from "./build.ts";
import { SHA256_DIGEST } from "../util/digest.ts";
import { tarShaped } from "../oci/tar-shape.ts";

export interface CacheSourceOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  /** The one registry reached over plain HTTP: the output's, when the config marks it insecure. A source on any
   * other registry keeps HTTPS, so that its credentials never cross the network in the clear. */
  insecureRegistry?: string;
  platform?: Platform;
  /** Sources that may be absent without a warning (the push target's own tag on a first push). */
  quiet?: ReadonlySet<string>;
  /** Ends the sources' requests at once (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/** Where a record's blobs can be had: a registry repository, or an OCI layout (registry undefined). */
interface Source {
  name: string;
  registry?: string;
  repository?: string;
  client?: RegistryClient;
  /** The blob's bytes, checked against its digest as they stream. */
  open(record: LayerRecord): Promise<Readable>;
}

export interface RemoteHit {
  record: LayerRecord;
  source: Source;
}

export class RemoteCache {
  readonly #hits = new Map<string, RemoteHit>();
  readonly warnings: string[] = [];
  /** Names of the sources that gave records, for messages. */
  readonly sources: string[] = [];

  get size(): number {
    return this.#hits.size;
  }

  get(key: string): RemoteHit | undefined {
    return this.#hits.get(key);
  }

  add(source: Source, records: readonly LayerRecord[]): void {
    for (const r of records) if (!this.#hits.has(r.key)) this.#hits.set(r.key, { record: r, source });
    this.sources.push(source.name);
  }

  /** Whether the hit's blob is in its repository with the size the record gives (garbage collection may have taken it). */
  async present(hit: RemoteHit): Promise<boolean> {
    const client = hit.source.client;
    if (!client) return false;
    try {
      const res = await client.request("HEAD", client.repoUrl(`blobs/${hit.record.digest}`), { expect: [200, 404] });
      await res.body?.cancel();
      const length = res.headers.get("content-length");
      return res.status === 200 && (length === null || Number(length) === hit.record.size);
    } catch (err) {
      this.warnings.push(`cache source ${hit.source.name}: ${(err as Error).message}; building the layer instead`);
      return false;
    }
  }

  /**
   * Fetches the hit's blob into the local cache under `key`, checking its digest and that it unpacks to the
   * record's diff_id; undefined (with a warning) when that fails.
   */
  async fetchInto(cache: LayerCache, key: string, hit: RemoteHit): Promise<CachedLayer | undefined> {
    const { record, source } = hit;
    const temp = cache.tempPath(`remote-${record.digest.slice(7, 19)}`);
    try {
      await pipeline(await source.open(record), fs.createWriteStream(temp, { flags: "wx", mode: 0o600 }));
      // The digest is checked; the diff_id (what the image config will say) is checked from the local copy.
      const diff = createHash("sha256");
      const unpack = record.mediaType.endsWith("+gzip") ? [createGunzip()] : record.mediaType.endsWith("+zstd") ? [zlib.createZstdDecompress()] : [];
      // tarShaped: a bomb stops at its padding, not after its terabytes (tar-shape.ts).
      await pipeline([fs.createReadStream(temp), ...unpack, tarShaped(), new Writable({ write: (c: Buffer, _e, done) => (diff.update(c), done()) })]);
      const diffId = `sha256:${diff.digest("hex")}`;
      if (diffId !== record.diffId) throw new Error(`blob ${record.digest} unpacks to ${diffId}, not the record's ${record.diffId}`);
      const { key: _k, ...rest } = record;
      return cache.putLayer(key, temp, rest);
    } catch (err) {
      fs.rmSync(temp, { force: true });
      this.warnings.push(`cache source ${source.name}: ${(err as Error).message}; building the layer instead`);
      return undefined;
    }
  }
}

/** The records kept in an OCI layout: a blob its index entries name by CACHE_RECORD_ANNOTATION. */
function layoutRecords(dir: string, manifestDigest: string): Buffer | undefined {
  const index = readRegular(path.join(dir, "index.json"), "index.json", { max: MAX_DOCUMENT });
  if (!index) return undefined;
  const entries = (JSON.parse(index.toString("utf8")) as { manifests?: unknown }).manifests;
  const named = (Array.isArray(entries) ? entries : [])
    .filter((d): d is { digest: string; annotations: Record<string, unknown> } => typeof d === "object" && d !== null && d.digest === manifestDigest && typeof d.annotations === "object" && d.annotations !== null)
    .map((d) => d.annotations[CACHE_RECORD_ANNOTATION])
    .find((v): v is string => typeof v === "string" && SHA256_DIGEST.test(v));
  if (!named) return undefined;
  return readRegular(path.join(dir, "blobs", "sha256", named.slice(7)), "the cache record", { max: MAX_RECORD_BYTES, digest: named });
}

async function openSource(name: string, opts: CacheSourceOptions): Promise<{ source: Source; records: LayerRecord[]; image: Image } | undefined> {
  const parsed = parseImageName(name, { cwd: opts.cwd });
  const insecure = parsed.transport === "registry" && opts.insecureRegistry !== undefined && parsed.reference.registry === opts.insecureRegistry;
  const read = { ...(opts.env ? { env: opts.env } : {}), ...(insecure ? { insecure } : {}), ...(opts.platform ? { platform: opts.platform } : {}), signal: opts.signal };
  if (parsed.transport === "oci") {
    const image = await openImage(parsed, read);
    if (!image.manifestDigest) return undefined;
    const data = layoutRecords(parsed.path, image.manifestDigest);
    const open = async (r: LayerRecord) => image.layers.find((l) => l.digest === r.digest)!.open();
    return { source: { name, open }, records: data ? parseRecord(data, `${name}: the cache record`).layers : [], image };
  }
  if (parsed.transport !== "registry") throw new Error("a cache source is a registry image (docker://HOST/NAME[:TAG]) or an OCI layout (oci:DIR[:REF])");
  const ref = parsed.reference;
  const image = await openImage(parsed, read);
  if (!image.manifestDigest) return undefined;
  const client = new RegistryClient({ registry: ref.registry, repository: ref.repository, actions: "pull", ...(insecure ? { insecure } : {}), ...(opts.env ? { env: opts.env } : {}), signal: opts.signal });
  const shown = formatReference(ref);
  const open = async (r: LayerRecord) => {
    const res = await client.request("GET", client.repoUrl(`blobs/${r.digest}`), { expect: [200] });
    if (!res.body) throw new Error(`no body for blob ${r.digest}`);
    return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream).pipe(verifying(r, `${shown}: blob ${r.digest}`));
  };
  const records: LayerRecord[] = [];
  for (const artifact of await findReferrers(client, image.manifestDigest, CACHE_ARTIFACT_TYPE)) {
    const data = await readArtifact(client, artifact, { subject: image.manifestDigest, blobType: CACHE_ARTIFACT_TYPE, maxBytes: MAX_RECORD_BYTES });
    if (data) records.push(...parseRecord(data, `${shown}@${artifact.digest}`).layers);
  }
  return { source: { name: shown, registry: ref.registry, repository: ref.repository, client, open }, records, image };
}

/** Reads the cache records of every source; failures become warnings (quiet ones are skipped silently). */
export async function loadCacheSources(names: readonly string[], opts: CacheSourceOptions): Promise<RemoteCache> {
  const cache = new RemoteCache();
  for (const name of [...new Set(names)]) {
    try {
      const opened = await openSource(name, opts);
      if (!opened) continue;
      const { source, records, image } = opened;
      // A record is trusted only for layers the image itself has: the same digest and diff_id.
      const own = new Set(image.layers.map((l) => `${l.digest} ${l.diffId ?? ""}`));
      cache.add(source, records.filter((r) => own.has(`${r.digest} ${r.diffId}`)));
    } catch (err) {
      // Interrupted: no warning, and no build without it.
      opts.signal?.throwIfAborted();
      if (opts.quiet?.has(name) && /\b(404|MANIFEST_UNKNOWN|NAME_UNKNOWN)\b/.test((err as Error).message)) continue;
      cache.warnings.push(`cache source ${name}: ${(err as Error).message}; building without it`);
    }
  }
  return cache;
}

/** The cache sources of a build: `cache.from`, the caller's, and for a registry output its own first tag. */
export function cacheSourceNames(input: Pick<BuildInput, "spec" | "cacheFrom">, repoTags: readonly string[]): { names: string[]; quiet: Set<string> } {
  if (input.cacheFrom === false) return { names: [], quiet: new Set() };
  const names = [...(input.spec.cache?.from ?? []), ...(input.cacheFrom ?? [])];
  const quiet = new Set<string>();
  const out = input.spec.output;
  if (out.format === "registry" && out.ref !== undefined) {
    const ref = parseImageName(`docker://${out.ref}`, { cwd: "/" });
    const tag = ref.transport === "registry" ? (ref.reference.tag ?? repoTags[0]?.slice(repoTags[0].lastIndexOf(":") + 1)) : undefined;
    if (ref.transport === "registry" && tag !== undefined) {
      const own = `docker://${formatReference({ ...ref.reference, tag })}`;
      names.push(own);
      quiet.add(own);
    }
  }
  return { names, quiet };
}

/** NAR facts of a hit's items: the record's, else the closure's own (from the store database). */
function narOf(job: Job, record: LayerRecord, closure: Closure): Record<string, { hash: string; size: number }> | undefined {
  const out: Record<string, { hash: string; size: number }> = {};
  for (const path of job.content.items) {
    const fact = record.nar?.[path] ?? closureNar(closure, path);
    if (!fact) return undefined;
    out[path] = fact;
  }
  return out;
}

/**
 * Reuses what the cache sources hold for the jobs not in the local cache. A registry output to the repository a hit
 * lives in takes it as a remote layer (found by HEAD, never read); every other output fetches it into `cache`,
 * checked against this host's own tar (a push to another repository of the source's registry then mounts it).
 */
export async function reuseFromSources(remote: RemoteCache, run: { p: Prepared; cache: LayerCache; blobs: Map<number, CachedLayer>; target?: { registry: string; repository: string }; jobs?: Job[] }): Promise<number> {
  const { p, cache, blobs } = run;
  let reused = 0;
  for (const job of run.jobs ?? p.jobs) {
    // A database job's key is known only once every other layer's NAR facts are (prepareDatabase).
    if (job.base || (job.needsDb && !job.ctx) || blobs.has(job.index)) continue;
    const hit = remote.get(job.portableKey);
    if (!hit) continue;
    // Where this host knows an item's NAR hash (its store database), the record must agree.
    const mismatch = job.content.items.find((it) => {
      const mine = closureNar(p.closure, it)?.hash;
      const theirs = hit.record.nar?.[it]?.hash;
      return mine !== undefined && theirs !== undefined && mine !== theirs;
    });
    if (mismatch) {
      remote.warnings.push(`cache source ${hit.source.name}: its record gives ${mismatch} another NAR hash than this host's store; building layer ${job.index + 1}`);
      continue;
    }
    const { key: _key, ...record } = hit.record;
    let layer: CachedLayer | undefined;
    let nar: Record<string, { hash: string; size: number }> | undefined;
    if (hit.source.registry !== undefined && run.target?.registry === hit.source.registry && run.target.repository === hit.source.repository) {
      // Found in the very repository pushed to, never read here: whoever can write its records there can write the
      // image's tags too. Its NAR facts: the record's, else the closure's.
      nar = narOf(job, hit.record, p.closure);
      if (p.wantNar && !nar) continue;
      if (await remote.present(hit)) layer = { ...record, file: "", remote: { registry: hit.source.registry, repository: hit.source.repository! } };
    } else {
      // Fetched from elsewhere: taken only if it unpacks to the tar this host's inputs give (checked before the
      // download, and fetchInto checks the blob against the same diff_id), with the NAR facts hashed here. A
      // registry's blob is looked for first: one garbage collection took costs a HEAD, not a read of the items.
      if (hit.source.client && !(await remote.present(hit))) continue;
      const mine = await localDiffId(job, p);
      if (mine.diffId !== hit.record.diffId) {
        remote.warnings.push(`cache source ${hit.source.name}: its layer for layer ${job.index + 1} unpacks to ${hit.record.diffId}, but this host's inputs give ${mine.diffId}; building it`);
        continue;
      }
      nar = mine.nar;
      layer = await remote.fetchInto(cache, job.key, hit);
      // Checked here; another repository of the registry pushed to then lends the blob by mount, not upload.
      if (layer && hit.source.registry !== undefined && run.target?.registry === hit.source.registry) layer = { ...layer, mountFrom: hit.source.repository! };
    }
    if (!layer) continue;
    if (nar && Object.keys(nar).length > 0) layer.nar = nar;
    blobs.set(job.index, layer);
    recordFacts(p, layer);
    reused++;
  }
  // Problems met on the way (a blob gone, a record that disagrees) are the build's warnings.
  p.warnings.push(...remote.warnings.splice(0));
  return reused;
}
