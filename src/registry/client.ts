/**
 * One repository on one registry, spoken to with Node's fetch (OCI distribution spec, FORMATS.md §4).
 * - Auth: `GET /v2/` learns the challenge; Basic sends the credentials, Bearer trades them at the token realm for
 *   a token scoped to `repository:<name>:<actions>`. A 401 on any later request (an expired token) re-authenticates
 *   once. The Authorization header only ever goes to the registry's own origin; redirects are followed by hand so
 *   it is dropped for other hosts; credentials go to a token realm on another host only over HTTPS.
 * - Retries: network errors, 5xx and 429 are retried with exponential backoff, honouring Retry-After. Requests
 *   with a body that cannot be replayed (upload chunks) are not retried here: the upload restarts as a whole.
 * - Timeouts and limits (http.ts): no progress for `timeoutMs` (default 30 s, LAYERPACK_REGISTRY_TIMEOUT in seconds)
 *   fails the request, not retried: a registry that hung once would make the user wait that long again per retry.
 *   Manifests are read up to 16 MiB, token answers 1 MiB, error bodies 64 KiB.
 * - Locations (redirects, upload sessions) must be http(s): a registry does not get to point us at `file:` URLs.
 * - Errors name the registry, the request and the registry's own `{"errors":[{code,message}]}`; never credentials:
 *   every message (and the causes below it) is redacted of the password, tokens and their encodings (redact.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RegistryError } from "../errors.ts";
import { basicAuth, credentialPlaces, findCredentials, HOST_ENV, parseChallenge, PASSWORD_ENV, USER_ENV, type Challenge, type Credentials } from "./auth.ts";
import type { ImageSpec } from "../config/schema.ts";
import { apiHost, isLoopback, parseReference } from "./reference.ts";
import { Secrets } from "./redact.ts";
import {
  DEFAULT_TIMEOUT_MS, ERROR_BODY_LIMIT, formatMs, guardResponse, MANIFEST_LIMIT, MIN_RATE, readUpTo, timeoutFromEnv, TIMEOUT_ENV, TOKEN_LIMIT, Watchdog, watchBody,
} from "./http.ts";

type Env = Record<string, string | undefined>;
/** What fetch accepts as a request body. */
export type BodyInit = NonNullable<globalThis.RequestInit["body"]>;

export interface ClientOptions {
  registry: string;
  repository: string;
  /** Plain HTTP (loopback registries use it without this). */
  insecure?: boolean;
  /** Where credentials are looked up (see auth.ts); default process.env. */
  env?: Env;
  /** Token scope actions; default `pull,push`. */
  actions?: string;
  /** Retries after the first attempt; default 4. */
  retries?: number;
  /** First backoff delay; doubles each retry (capped at 10 s). Default 500 ms. */
  backoffMs?: number;
  /** Idle timeout of each request (connecting, sending, waiting, reading); default LAYERPACK_REGISTRY_TIMEOUT or 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Ends every request and wait at once (Ctrl-C): an upload of gigabytes must not hold the interrupt. */
  signal?: AbortSignal | undefined;
}

/** A failed request: `retryable` when trying again may help (network error, 5xx, 429). */
export class RequestError extends RegistryError {
  override name = "RequestError";
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** How many times the client sent the request before giving up (its own retries included). */
  attempts = 1;
  /** The `code`s of the registry's `{"errors":[...]}` answer (e.g. MANIFEST_BLOB_UNKNOWN); empty without one. */
  readonly codes: readonly string[];
  constructor(message: string, info: { status?: number; retryable: boolean; retryAfterMs?: number; codes?: readonly string[] }, options?: ErrorOptions) {
    super(message, options);
    this.status = info.status;
    this.retryable = info.retryable;
    this.retryAfterMs = info.retryAfterMs;
    this.codes = info.codes ?? [];
  }
}

export interface RequestInit {
  headers?: Record<string, string>;
  /** Makes the body afresh for each attempt. */
  body?: () => { body: BodyInit; length: number };
  /** Statuses that count as success; others throw. */
  expect: number[];
  /** Retry on network errors, 5xx and 429 (default true). */
  retry?: boolean;
  /** The most bytes the answer's body may have; default 16 MiB for GETs of manifests, else no limit. */
  maxBytes?: number;
}

const NETWORK_CODES_NOT_RETRIED = new Set(["ENOTFOUND", "ECONNREFUSED", "EAI_AGAIN", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT"]);

function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : undefined;
}

/**
 * The registry's `{"errors":[...]}` as `CODE: message (detail)`, or the start of whatever it sent (of its first
 * 64 KiB). Redacted before it is cut short, so a cut cannot leave part of a secret.
 */
async function describeBody(res: Response, redact: (text: string) => string): Promise<{ message: string; codes: string[] }> {
  let text = "";
  try {
    text = (await readUpTo(res, ERROR_BODY_LIMIT)).data.toString("utf8");
  } catch {
    return { message: "", codes: [] };
  }
  try {
    const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      const message = errors
        .map((e) => redact([e.code, e.message].filter(Boolean).join(": ")) + (e.detail !== undefined && e.detail !== null ? ` (${redact(JSON.stringify(e.detail)).slice(0, 200)})` : ""))
        .join("; ")
        .slice(0, 2000);
      return { message, codes: errors.flatMap((e) => (typeof e?.code === "string" ? [e.code] : [])) };
    }
  } catch {
    // not JSON
  }
  return { message: redact(text.trim()).slice(0, 200), codes: [] };
}

const causeCode = (err: unknown): string | undefined => {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code ?? (err as { code?: string }).code;
};

export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  readonly origin: string;
  readonly #fetch: typeof fetch;
  readonly #signal: AbortSignal | undefined;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #timeoutMs: number;
  readonly #secrets = new Secrets();
  readonly #credentials: Credentials | undefined;
  readonly #env: Record<string, string | undefined>;
  readonly #scopes: Set<string>;
  #challenge: Challenge | undefined;
  #authorization: string | undefined;
  #pinged = false;

  constructor(opts: ClientOptions) {
    this.registry = opts.registry;
    this.repository = opts.repository;
    const scheme = opts.insecure || isLoopback(opts.registry) ? "http" : "https";
    this.origin = `${scheme}://${apiHost(opts.registry)}`;
    this.#fetch = opts.fetch ?? fetch;
    this.#signal = opts.signal;
    this.#retries = opts.retries ?? 4;
    this.#backoffMs = opts.backoffMs ?? 500;
    const env = opts.env ?? process.env;
    this.#timeoutMs = opts.timeoutMs ?? timeoutFromEnv(env) ?? DEFAULT_TIMEOUT_MS;
    this.#env = env;
    this.#credentials = findCredentials(opts.registry, env, (opts.actions ?? "pull,push").split(",").includes("push"));
    this.#secrets.add(this.#credentials?.password, this.#credentials?.username);
    // The environment's credentials are secrets here too, even where they are not sent (auth.ts).
    this.#secrets.add(env[PASSWORD_ENV] || undefined, env[USER_ENV] || undefined);
    this.#secrets.add(this.#credentials?.identityToken);
    this.#scopes = new Set([`repository:${opts.repository}:${opts.actions ?? "pull,push"}`]);
  }

  /** `/v2/<repository>/<suffix>` on this registry. */
  repoUrl(suffix: string, repository = this.repository): string {
    return `${this.origin}/v2/${repository}/${suffix}`;
  }

  #where(method: string, url: string): string {
    const u = new URL(url);
    return `${method} ${u.origin === this.origin ? "" : u.origin}${u.pathname}`;
  }

  /** `text` with every secret this client knows replaced by `[redacted]`. */
  redact(text: string): string {
    return this.#secrets.redact(text);
  }

  /** A copy of an error's cause chain with redacted messages, for errors made elsewhere from this client's. */
  redactCause(err: unknown): Error | undefined {
    return this.#secrets.redactCause(err);
  }

  /** A RequestError whose message and causes are redacted. */
  #error(message: string, info: ConstructorParameters<typeof RequestError>[1], cause?: unknown): RequestError {
    const redactedCause = this.#secrets.redactCause(cause);
    return new RequestError(this.redact(message), info, redactedCause ? { cause: redactedCause } : undefined);
  }

  /** `registry r` for the registry's own origin, else the other host and whose it is. */
  #who(url: string): string {
    const u = new URL(url);
    return u.origin === this.origin ? `registry ${this.registry}` : `${u.host} (for registry ${this.registry})`;
  }

  /** One fetch under the idle timeout, its answer's body guarded (timeout, `maxBytes`, broken connections). */
  /** `init.method` names the request in messages; `maxBytes` bounds the answer's body. */
  async #fetchGuarded(url: string | URL, init: globalThis.RequestInit & { duplex?: "half"; method: string }, maxBytes: number | undefined): Promise<Response> {
    const method = init.method;
    const href = String(url);
    const where = this.#where(method, href);
    const timeout = `${TIMEOUT_ENV} sets the timeout, in seconds`;
    this.#signal?.throwIfAborted();
    const dog = new Watchdog(this.#timeoutMs);
    dog.arm();
    let res: Response;
    const signal = this.#signal ? AbortSignal.any([dog.controller.signal, this.#signal]) : dog.controller.signal;
    try {
      res = await this.#fetch(url, { ...init, ...(init.body != null ? { body: watchBody(init.body, dog) } : {}), signal });
    } catch (cause) {
      dog.stop();
      if (this.#signal?.aborted) throw this.#signal.reason;
      if (dog.fired) throw this.#error(`${this.#who(href)} did not answer ${where} within ${formatMs(this.#timeoutMs)} (${timeout})`, { retryable: false });
      throw cause;
    }
    return guardResponse(res, {
      dog,
      maxBytes,
      tooLarge: () => this.#error(`${this.#who(href)} sent more than ${maxBytes! >> 10} KiB answering ${where}; not reading further`, { retryable: false }),
      timedOut: () => this.#error(`${this.#who(href)} stopped sending its answer to ${where}: nothing for ${formatMs(this.#timeoutMs)} (${timeout})`, { retryable: false }),
      broken: (cause) => this.#error(`the connection to ${this.#who(href)} broke while reading the answer to ${where}: ${(cause as Error).message}`, { retryable: true }, cause),
      windowMs: this.#timeoutMs,
      tooSlow: () => this.#error(`${this.#who(href)} sends its answer to ${where} too slowly: less than ${MIN_RATE >> 10} KiB/s over ${formatMs(this.#timeoutMs)} (${timeout})`, { retryable: false }),
    });
  }

  /** Checks the registry answers and learns how it wants to be authenticated. */
  async ping(): Promise<void> {
    if (this.#pinged) return;
    const url = `${this.origin}/v2/`;
    const res = await this.request("GET", url, { expect: [200, 401, 404] });
    if (res.status === 404) throw this.#error(`${this.origin} is not an OCI registry: GET /v2/ answered 404`, { status: 404, retryable: false });
    if (res.status === 401) {
      const header = res.headers.get("www-authenticate");
      const { message } = await describeBody(res, (t) => this.redact(t));
      if (!header) throw this.#denied("GET", url, { message });
      await this.#authenticate(parseChallenge(header), false, message);
      // Wrong credentials show up here, before any upload.
      await (await this.request("GET", url, { expect: [200] })).body?.cancel();
    } else {
      await res.body?.cancel();
    }
    this.#pinged = true;
  }

  /** Asks for pull access to another repository too (cross-repository mount); refreshes a bearer token. */
  async addPullScope(repository: string): Promise<void> {
    const scope = `repository:${repository}:pull`;
    if (this.#scopes.has(scope)) return;
    this.#scopes.add(scope);
    if (this.#challenge?.scheme === "bearer") await this.#authenticate(this.#challenge, true);
  }

  async #backoff(attempt: number, err: RequestError | undefined): Promise<void> {
    const ms = err?.retryAfterMs ?? Math.min(this.#backoffMs * 2 ** attempt, 10_000);
    await sleep(ms, undefined, this.#signal ? { signal: this.#signal } : {});
  }

  /** Waits `ms` before a retry of the caller's own (a blob's upload), ended at once by the client's signal. */
  async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, this.#signal ? { signal: this.#signal } : {});
  }

  /** Sends one request, following redirects by hand (Authorization only to this registry's origin). */
  async #send(method: string, url: string, req: { headers: Record<string, string>; body: BodyInit | undefined; maxBytes: number | undefined }): Promise<{ res: Response; from: string }> {
    const { headers, body, maxBytes } = req;
    let current = url;
    for (let hops = 0; hops < 6; hops++) {
      const h: Record<string, string> = { ...headers };
      if (this.#authorization && new URL(current).origin === this.origin) h.authorization = this.#authorization;
      const init: globalThis.RequestInit & { duplex?: "half"; method: string } = { method, headers: h, redirect: "manual" };
      if (body !== undefined) {
        init.body = body;
        init.duplex = "half";
      }
      const res = await this.#fetchGuarded(current, init, maxBytes);
      if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.get("location") && (method === "GET" || method === "HEAD")) {
        await res.body?.cancel();
        current = resolveLocation(res, current, { what: `${this.#where(method, url)}: following a redirect`, redact: (t) => this.redact(t) });
        continue;
      }
      return { res, from: current };
    }
    throw this.#error(`${this.#where(method, url)}: too many redirects`, { retryable: false });
  }

  async request(method: string, url: string, init: RequestInit): Promise<Response> {
    const retry = init.retry ?? true;
    const maxBytes = init.maxBytes ?? (method === "GET" && new URL(url).pathname.includes("/manifests/") ? MANIFEST_LIMIT : undefined);
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let from: string;
      try {
        const made = init.body?.();
        const headers = { ...init.headers, ...(made ? { "content-length": String(made.length) } : {}) };
        ({ res, from } = await this.#send(method, url, { headers, body: made?.body, maxBytes }));
      } catch (cause) {
        if (cause instanceof RegistryError) throw cause;
        const code = causeCode(cause);
        const why = (cause as { cause?: Error }).cause?.message ?? (cause as Error).message;
        // fetch refuses the Fetch standard's "bad ports" (1, 22, 25, 6000, ...) before connecting: never retried.
        const badPort = why === "bad port";
        const retryable = !badPort && !(code && NETWORK_CODES_NOT_RETRIED.has(code));
        const detail = badPort ? `port ${new URL(url).port} is one fetch refuses to use (a "bad port" of the Fetch standard); run the registry on another port` : why;
        const err = this.#error(`cannot reach registry ${this.registry} (${this.#where(method, url)}): ${detail}`, { retryable }, cause);
        if (!retry || !retryable || attempt >= this.#retries) throw Object.assign(err, { attempts: attempt + 1 });
        await this.#backoff(attempt, undefined);
        continue;
      }
      // Only the registry itself may ask for credentials: a 401 from a host a redirect led to (a CDN) must not get
      // them, nor decide where the token service is.
      if (res.status === 401 && new URL(from).origin !== this.origin) {
        await res.body?.cancel();
        throw this.#error(`${this.#where(method, url)}: ${new URL(from).origin}, where the registry redirected, asks for credentials; they are only sent to ${this.origin}`, { status: 401, retryable: false });
      }
      if (res.status === 401 && !reauthenticated && !init.expect.includes(401)) {
        reauthenticated = true;
        const header = res.headers.get("www-authenticate");
        const { message } = await describeBody(res, (t) => this.redact(t));
        if (!header) throw this.#denied(method, url, { message });
        await this.#authenticate(parseChallenge(header), false, message);
        attempt--;
        continue;
      }
      if (init.expect.includes(res.status)) return res;
      const { message, codes } = await describeBody(res, (t) => this.redact(t));
      if (res.status === 401 || res.status === 403) throw this.#denied(method, url, { message, status: res.status });
      const retryable = res.status >= 500 || res.status === 429;
      const err = this.#error(
        `registry ${this.registry} refused ${this.#where(method, url)}: ${res.status} ${res.statusText}${message ? `: ${message}` : ""}`,
        { status: res.status, retryable, codes, ...(retryAfter(res.headers.get("retry-after")) !== undefined ? { retryAfterMs: retryAfter(res.headers.get("retry-after"))! } : {}) },
      );
      if (!retry || !retryable || attempt >= this.#retries) throw Object.assign(err, { attempts: attempt + 1 });
      await this.#backoff(attempt, err);
    }
  }

  /** `what.status` defaults to 401. */
  #denied(method: string, url: string, what: { message: string; status?: number }): RequestError {
    const { message, status = 401 } = what;
    const hint = this.#credentials
      ? `the credentials from ${this.#credentials.source} were refused`
      : `no credentials found: set ${USER_ENV} and ${PASSWORD_ENV} (with ${HOST_ENV}=${this.registry} when not pushing there), or log in (looked in ${credentialPlaces(this.#env)})`;
    return this.#error(
      `authentication with registry ${this.registry} failed (${this.#where(method, url)}: ${status}${message ? ` ${message}` : ""}): ${hint}`,
      { status, retryable: false },
    );
  }

  async #authenticate(challenge: Challenge, refresh: boolean, message = ""): Promise<void> {
    // The same Basic credentials again would be refused again.
    if (!refresh && challenge.scheme === "basic" && this.#authorization?.startsWith("Basic ")) throw this.#denied("GET", `${this.origin}/v2/`, { message });
    this.#challenge = challenge;
    if (challenge.scheme === "basic") {
      if (!this.#credentials) throw this.#denied("GET", `${this.origin}/v2/`, { message });
      this.#authorization = basicAuth(this.#credentials);
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) {
      throw this.#error(`registry ${this.registry} asks for unsupported authentication '${this.redact(challenge.scheme).slice(0, 100)}'`, { retryable: false });
    }
    const token = await this.#token(challenge.params);
    this.#secrets.add(token);
    this.#authorization = `Bearer ${token}`;
  }

  /** Trades credentials (or nothing: anonymous) for a bearer token at the realm. */
  async #token(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm!, this.origin);
    if (realm.protocol !== "https:" && realm.protocol !== "http:") {
      throw this.#error(`registry ${this.registry} names a token service that is not an http(s) URL (${this.redact(realm.protocol)}); not asking it`, { retryable: false });
    }
    const trusted = realm.origin === this.origin || realm.protocol === "https:";
    const creds = trusted ? this.#credentials : undefined;
    const scopes = [...this.#scopes];
    let res: Response;
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken, client_id: "layerpack", scope: scopes.join(" ") });
        if (params.service) form.set("service", params.service);
        res = await this.#fetchGuarded(realm, { method: "POST", body: form, redirect: "error" }, TOKEN_LIMIT);
      } else {
        if (params.service) realm.searchParams.set("service", params.service);
        for (const s of scopes) realm.searchParams.append("scope", s);
        res = await this.#fetchGuarded(realm, { method: "GET", headers: creds ? { authorization: basicAuth(creds) } : {}, redirect: "error" }, TOKEN_LIMIT);
      }
    } catch (cause) {
      if (cause instanceof RegistryError) throw cause;
      throw this.#error(`cannot reach the token service of registry ${this.registry} at ${realm.origin}: ${(cause as Error).message}`, { retryable: true }, cause);
    }
    if (res.status !== 200) {
      const { message } = await describeBody(res, (t) => this.redact(t));
      const answered = `token service answered ${res.status}${message ? `: ${message}` : ""}`;
      // Withheld, not refused: say why, or the user would look for a wrong password.
      if (this.#credentials && !creds) {
        throw this.#error(
          `authentication with registry ${this.registry} failed (${this.#where("GET", realm.href)}: ${answered}): the token service is on another host over plain HTTP (${realm.origin}), so the credentials from ${this.#credentials.source} were not sent to it; they go to another host only over HTTPS`,
          { status: res.status, retryable: false },
        );
      }
      throw this.#denied("GET", realm.href, { message: answered, status: res.status });
    }
    const text = Buffer.from(await res.arrayBuffer()).toString("utf8");
    let body: { token?: unknown; access_token?: unknown } | null;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // JSON.parse's message quotes the text, which may hold the token: not shown.
      body = null;
    }
    const token = body?.token ?? body?.access_token;
    if (typeof token !== "string" || token === "") throw this.#error(`the token service of registry ${this.registry} at ${realm.origin} sent no token`, { retryable: false });
    return token;
  }
}

/**
 * Resolves a `Location` header (possibly relative) against the request URL; only http(s) URLs are accepted.
 * `redact` cleans the message of an unacceptable one (the client's `redact`).
 */
export function resolveLocation(res: Response, requestUrl: string, how: { what: string; redact?: (text: string) => string }): string {
  const { what, redact = (t: string) => t } = how;
  const location = res.headers.get("location");
  if (!location) throw new RequestError(`${what}: the registry sent no Location header`, { retryable: true });
  let url: URL | undefined;
  try {
    url = new URL(location, requestUrl);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    const clean = redact(location);
    const shown = JSON.stringify(clean.length > 200 ? `${clean.slice(0, 200)}...` : clean);
    throw new RequestError(redact(`${what}: the registry sent Location ${shown}, which is not an http(s) URL; not following it`), { retryable: false });
  }
  return url.href;
}

/**
 * A client for the repository a registry output pushes to (`ref`, default the output's own), as the output says to
 * reach it (plain HTTP when marked insecure), with the build's credentials and its signal (Ctrl-C).
 */
export function outputClient(output: Pick<ImageSpec["output"], "ref" | "insecure">, opts: { ref?: string; env?: Record<string, string | undefined> | undefined; signal?: AbortSignal | undefined }): RegistryClient {
  const ref = parseReference(opts.ref ?? output.ref ?? "");
  return new RegistryClient({ registry: ref.registry, repository: ref.repository, ...(output.insecure ? { insecure: true } : {}), ...(opts.env ? { env: opts.env } : {}), signal: opts.signal });
}
