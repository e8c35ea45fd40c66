/**
 * The entries of an image archive (a tar, optionally gzipped as a whole), for src/oci/read.ts: one streaming pass
 * that hashes every entry and keeps only small JSON documents, and a stream of one entry's bytes when a layer is
 * read. Errors name the archive.
 */
import { createHash } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import { extract as tarExtract } from "tar-stream";
import { LayerpackError } from "../errors.ts";
import { ArchiveBudget, isGzip, isTar, pipeArchive } from "./blob-file.ts";
import { GunzipDigest, unpackFailure } from "./verify.ts";

export interface TarEntry {
  data?: Buffer;
  digest: string;
  size: number;
  /** Whether its first bytes are gzip's: what a docker archive's layer is, whatever its name says. */
  gzip: boolean;
  /** readTar's `unpack`, for an entry that starts as gzip does: the sha256 of what it unpacks to, or why it does not. */
  gunzipped?: { digest: string } | { error: Error };
}

/** Whether an entry's first bytes (up to 512) are those of a JSON document rather than a layer or other blob. */
const looksLikeDocument = (first: Buffer) => !isTar(first) && !isGzip(first) && /^\s*[{[]/.test(first.subarray(0, 64).toString("latin1"));

/**
 * One pass over a tar (optionally gzipped): every entry hashed, documents kept. A document over MAX_DOCUMENT is
 * refused as soon as its header and first bytes are seen; other entries (layers) only go through the hash, and with
 * `unpack` each gzip one through gunzip too (for its diff_id), until the archive shows it is an OCI archive, whose
 * blobs are named by their digests instead.
 */
export async function readTar(file: string, opts: { unpack?: boolean } = {}): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const budget = new ArchiveBudget(file);
  const extract = tarExtract();
  const piped = pipeArchive(file, extract, { label: file, unreadable: (cause) => unreadable(file, cause) }).done;
  const reading = (async () => {
    for await (const entry of extract) {
      const { header } = entry;
      const regular = header.type === "file" || header.type === "contiguous-file";
      const name = header.name.replace(/^\.\//, "");
      const hash = createHash("sha256");
      let size = 0;
      let head: Buffer[] | undefined = [];
      let kept: Buffer[] | undefined;
      let gunzip: GunzipDigest | undefined;
      let gzip = false;
      const decide = async (first: Buffer[]) => {
        head = undefined;
        if (!regular) return;
        const bytes = Buffer.concat(first);
        gzip = isGzip(bytes);
        if (looksLikeDocument(bytes)) {
          budget.keep(name, header.size ?? 0);
          kept = first;
        } else if (opts.unpack && isGzip(bytes) && !entries.has("oci-layout")) {
          gunzip = new GunzipDigest();
          for (const c of first) await gunzip.write(c);
        }
      };
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        if (head) {
          head.push(chunk);
          if (size >= 512 || size >= (header.size ?? 0)) await decide(head);
        } else if (kept) (kept as Buffer[]).push(chunk);
        else await (gunzip as GunzipDigest | undefined)?.write(chunk);
      }
      if (head) await decide(head);
      budget.entry(name, header.type);
      if (!regular) continue;
      const data = kept as Buffer[] | undefined;
      const gunzipped = await (gunzip as GunzipDigest | undefined)?.end();
      entries.set(name, { digest: `sha256:${hash.digest("hex")}`, size, gzip, ...(data ? { data: Buffer.concat(data) } : {}), ...(gunzipped ? { gunzipped } : {}) });
    }
  })();
  const [p, r] = await Promise.allSettled([piped, reading]);
  // Our own refusal first: it says more than the premature close it causes in the pipeline.
  if (r.status === "rejected") throw r.reason instanceof LayerpackError ? r.reason : unreadable(file, r.reason);
  if (p.status === "rejected") throw unreadable(file, p.reason);
  return entries;
}

/**
 * Layer `index` of a docker archive (its entry `name`) against the config's diff_id. A docker archive names its
 * layers by nothing else, so a layer damaged or swapped after the archive was written shows only here; the entry
 * must come from readTar with `unpack`.
 */
export function checkLayerEntry(file: string, layer: { name: string; index: number; diffId: string }, entry: TarEntry): void {
  const { name, index, diffId } = layer;
  const got = entry.gunzipped;
  if (got !== undefined && "error" in got) {
    const why = unpackFailure(got.error);
    throw new LayerpackError(`${file}: layer ${name} is damaged: ${why}, so it cannot unpack to ${diffId}, the config's rootfs.diff_ids[${index}] (the layer's bytes hash to ${entry.digest})`, { cause: got.error });
  }
  // Not gzip: a plain tar, its own sha256 its diff_id.
  const unpacked = got?.digest ?? entry.digest;
  if (unpacked !== diffId) {
    const what = got !== undefined ? "it unpacks to" : "it is not gzip, and as a plain tar it hashes to";
    throw new LayerpackError(`${file}: layer ${name} does not match the image's config: ${what} ${unpacked}, but the config's rootfs.diff_ids[${index}] says ${diffId}; the archive was changed or damaged after it was written`);
  }
}

export const unreadable = (file: string, cause: unknown) => new LayerpackError(`${file} is not a readable image archive (tar): ${(cause as Error).message}`, { cause });

/**
 * The entry `name` of a tar archive (optionally gzipped as a whole), as a stream; reading stops after it. Errors
 * name the archive. Entries are matched by name after a leading "./", as the archive's index was.
 */
export function archiveEntry(file: string, name: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const extract = tarExtract();
    let piped: ReturnType<typeof pipeArchive>;
    try {
      piped = pipeArchive(file, extract, { label: file, unreadable: (cause) => unreadable(file, cause) });
    } catch (err) {
      reject(err);
      return;
    }
    const { input } = piped;
    let out: PassThrough | undefined;
    extract.on("entry", (header, stream, next) => {
      const entryName = header.name.replace(/^\.\//, "");
      if (out === undefined && entryName === name && (header.type === "file" || header.type === "contiguous-file")) {
        out = new PassThrough();
        stream.pipe(out);
        // The rest of the archive is not needed: stop reading it once this entry is through.
        stream.on("end", () => input.destroy());
        resolve(out);
        return;
      }
      stream.on("end", next);
      stream.resume();
    });
    const fail = (cause: unknown) => {
      const err = cause instanceof LayerpackError ? cause : unreadable(file, cause);
      if (out === undefined) reject(err);
      else if (!out.writableEnded) out.destroy(err);
    };
    extract.on("finish", () => out === undefined && reject(new LayerpackError(`${file}: the archive has no entry ${name}`)));
    piped.done.catch(fail);
  });
}
