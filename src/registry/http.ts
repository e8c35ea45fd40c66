/**
 * What keeps a hostile or broken registry from hanging layerpack or filling its memory:
 * - an idle timeout on every request: no progress (connecting, a request body chunk taken, the answer's headers, a
 *   chunk of its body) for `timeoutMs` aborts it. One clock for connect and idle: fetch does not tell them apart,
 *   and to the user both are "the registry stopped answering";
 * - a byte limit on answers that are read whole (manifests, token answers, error bodies).
 */
import { RegistryError } from "../errors.ts";
import type { BodyInit } from "./client.ts";
import { timeoutMs, TIMEOUT_RULE } from "../util/seconds.ts";

export const DEFAULT_TIMEOUT_MS = 30_000;
export const TIMEOUT_ENV = "LAYERPACK_REGISTRY_TIMEOUT";
/** Manifests and indexes: the distribution spec lets registries refuse above 4 MiB; 16 MiB leaves room. */
export const MANIFEST_LIMIT = 16 << 20;
export const TOKEN_LIMIT = 1 << 20;
/** Error bodies are read this far; only their start is shown anyway. */
export const ERROR_BODY_LIMIT = 64 << 10;

/** Statuses whose Response cannot be given a body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The timeout from the environment (seconds), when set. */
export function timeoutFromEnv(env: Record<string, string | undefined>): number | undefined {
  const text = env[TIMEOUT_ENV];
  if (text === undefined || text.trim() === "") return undefined;
  const ms = timeoutMs(text);
  if (ms === undefined) throw new RegistryError(`${TIMEOUT_ENV} must be ${TIMEOUT_RULE}, not '${text}'`);
  return ms;
}

export const formatMs = (ms: number) => (ms < 1000 ? `${ms} ms` : `${ms / 1000} s`);

/** Aborts a request when `arm()` is not called again within `ms`. */
export class Watchdog {
  readonly controller = new AbortController();
  fired = false;
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort();
    }, this.#ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A request body that re-arms the watchdog each time fetch takes a chunk to send. */
export function watchBody(body: BodyInit, dog: Watchdog): BodyInit {
  if (!(body instanceof ReadableStream)) return body;
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      dog.arm();
      const r = await reader.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }) as unknown as BodyInit;
}

export interface GuardOptions {
  dog: Watchdog;
  /** More bytes than this error the body with `tooLarge()`. */
  maxBytes?: number | undefined;
  tooLarge: () => Error;
  /** The error a fired watchdog becomes. */
  timedOut: () => Error;
  /** The error a broken connection (or any failed read) becomes. */
  broken: (cause: unknown) => Error;
  /** Over each window of this many ms of waiting, the body must come at MIN_RATE at least, else `tooSlow()`. */
  windowMs: number;
  tooSlow: () => Error;
}

/**
 * The slowest a body may come, in bytes per second of waiting for it: the idle timeout alone lets a server that
 * sends a byte now and then hold a read for ever (a 16 MiB manifest at a byte a second: half a year).
 */
export const MIN_RATE = 1024;

/**
 * The answer with its body guarded: the watchdog runs while a read waits for the server (not while the reader
 * takes its time), and the body errors past `maxBytes`. A Content-Length above it fails at once.
 */
export function guardResponse(res: Response, g: GuardOptions): Response {
  // From here the clock runs only while a read waits.
  g.dog.stop();
  if (res.body === null || NULL_BODY.has(res.status)) return res;
  if (g.maxBytes !== undefined && Number(res.headers.get("content-length") ?? NaN) > g.maxBytes) {
    res.body.cancel().catch(() => {});
    throw g.tooLarge();
  }
  const reader = res.body.getReader();
  let total = 0;
  // The rate counts only the time reads wait for the server, as the watchdog does: a slow reader is no slow server.
  let windowBytes = 0;
  let waited = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        g.dog.arm();
        const started = performance.now();
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (err) {
          g.dog.stop();
          controller.error(g.dog.fired ? g.timedOut() : g.broken(err));
          return;
        }
        g.dog.stop();
        if (r.done) return controller.close();
        total += r.value.byteLength;
        windowBytes += r.value.byteLength;
        waited += performance.now() - started;
        if (waited >= g.windowMs) {
          if (windowBytes < (MIN_RATE * waited) / 1000) {
            controller.error(g.tooSlow());
            reader.cancel().catch(() => {});
            return;
          }
          windowBytes = 0;
          waited = 0;
        }
        if (g.maxBytes !== undefined && total > g.maxBytes) {
          controller.error(g.tooLarge());
          reader.cancel().catch(() => {});
          return;
        }
        controller.enqueue(r.value);
      },
      cancel(reason) {
        g.dog.stop();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  const guarded = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  // Keep what fetch said about where the answer came from.
  Object.defineProperty(guarded, "url", { value: res.url });
  return guarded;
}

/** Reads at most `limit` bytes of a body; `truncated` when there was more (the rest is not read). */
export async function readUpTo(res: Response, limit: number): Promise<{ data: Buffer; truncated: boolean }> {
  if (res.body === null) return { data: Buffer.alloc(0), truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) return { data: Buffer.concat(chunks), truncated: false };
    if (total + r.value.byteLength > limit) {
      chunks.push(r.value.subarray(0, limit - total));
      await reader.cancel().catch(() => {});
      return { data: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(r.value);
    total += r.value.byteLength;
  }
}
