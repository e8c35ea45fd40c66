import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import { LayerpackError } from "../errors.ts";
import { TarShape, TarShapeError } from "./tar-shape.ts";

/**
 * A pass-through that fails the stream when the bytes are not the blob `expect` names: more bytes than its size
 * as soon as they arrive, a short or different blob at the end. Untrusted sources (archives, registries) are read
 * through it, so nothing downstream keeps bytes that are not what the manifest promised.
 */
export function verifying(expect: { digest: string; size: number }, where: string): Transform {
  const hash = createHash("sha256");
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > expect.size) return done(new LayerpackError(`${where}: blob ${expect.digest} is larger than the ${expect.size} bytes its descriptor says`));
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      if (seen !== expect.size) return done(new LayerpackError(`${where}: blob ${expect.digest} is ${seen} bytes, but its descriptor says ${expect.size}`));
      const digest = `sha256:${hash.digest("hex")}`;
      if (digest !== expect.digest) return done(new LayerpackError(`${where}: blob ${expect.digest} does not match its digest (its bytes hash to ${digest})`));
      done();
    },
  });
}

/**
 * Why a layer's bytes did not unpack: in plain words when the decompressor refused them (its own words are left
 * to the cause), else what the tar reader said.
 */
export function unpackFailure(cause: unknown): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && code.startsWith("Z_")) return `its gzip data is corrupt${code === "Z_BUF_ERROR" ? " or cut short" : ""}`;
  if (typeof code === "string" && code.startsWith("ZSTD_error_")) return "its zstd data is corrupt";
  if (cause instanceof TarShapeError) return `it is not a layer tar: ${cause.message}`;
  return `it cannot be read as a layer tar: ${(cause as Error).message}`;
}

/**
 * The sha256 of what a gzip stream unpacks to (a layer's diff_id), fed the compressed bytes as they go by, so the
 * pass that hashes a layer checks it too. Corrupt gzip data is no error here: `end` says so, for the caller to name
 * the layer, and later bytes are ignored.
 */
export class GunzipDigest {
  readonly #gunzip = createGunzip();
  readonly #hash = createHash("sha256");
  readonly #shape = new TarShape();
  #error: Error | undefined;
  /** Resolves when the output ended or the data was refused. */
  readonly #settled: Promise<void>;

  constructor() {
    let settle!: () => void;
    this.#settled = new Promise((resolve) => (settle = resolve));
    const fail = (err: Error) => {
      this.#error ??= err;
      settle();
    };
    this.#gunzip.once("end", settle);
    this.#gunzip.on("error", fail);
    this.#gunzip.on("data", (chunk: Buffer) => {
      if (this.#error !== undefined) return;
      try {
        // A bomb is refused at its first MiBs of padding, not after its terabytes (tar-shape.ts).
        this.#shape.feed(chunk);
      } catch (err) {
        fail(err as Error);
        this.#gunzip.destroy();
        return;
      }
      this.#hash.update(chunk);
    });
  }

  /** Feeds one chunk; waits while zlib is behind, so a big layer is not buffered whole. */
  async write(chunk: Buffer): Promise<void> {
    if (this.#error !== undefined || this.#gunzip.write(chunk)) return;
    await Promise.race([new Promise((resolve) => this.#gunzip.once("drain", resolve)), this.#settled]);
  }

  async end(): Promise<{ digest: string } | { error: Error }> {
    if (this.#error === undefined) this.#gunzip.end();
    await this.#settled;
    if (this.#error === undefined) {
      try {
        this.#shape.end();
      } catch (err) {
        this.#error = err as Error;
      }
    }
    return this.#error !== undefined ? { error: this.#error } : { digest: `sha256:${this.#hash.digest("hex")}` };
  }
}
