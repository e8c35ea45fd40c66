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

export interface TarEntry {
  data?: Buffer;
  digest: string;
  size: number;
}

/** Whether an entry's first bytes (up to 512) are those of a JSON document rather than a layer or other blob. */
const looksLikeDocument = (first: Buffer) => !isTar(first) && !isGzip(first) && /^\s*[{[]/.test(first.subarray(0, 64).toString("latin1"));

/**
 * One pass over a tar (optionally gzipped): every entry hashed, documents kept. A document over MAX_DOCUMENT is
 * refused as soon as its header and first bytes are seen; other entries (layers) only go through the hash.
 */
export async function readTar(file: string): Promise<Map<string, TarEntry>> {
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
      const decide = (first: Buffer[]) => {
        head = undefined;
        if (!regular || !looksLikeDocument(Buffer.concat(first))) return;
        budget.keep(name, header.size ?? 0);
        kept = first;
      };
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        if (head) {
          head.push(chunk);
          if (size >= 512 || size >= (header.size ?? 0)) decide(head);
        } else (kept as Buffer[] | undefined)?.push(chunk);
      }
      if (head) decide(head);
      if (!regular) continue;
      budget.name(name);
      const data = kept as Buffer[] | undefined;
      entries.set(name, { digest: `sha256:${hash.digest("hex")}`, size, ...(data ? { data: Buffer.concat(data) } : {}) });
    }
  })();
  const [p, r] = await Promise.allSettled([piped, reading]);
  // Our own refusal first: it says more than the premature close it causes in the pipeline.
  if (r.status === "rejected") throw r.reason instanceof LayerpackError ? r.reason : unreadable(file, r.reason);
  if (p.status === "rejected") throw unreadable(file, p.reason);
  return entries;
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
