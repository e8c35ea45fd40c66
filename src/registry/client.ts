/**
 * One repository on one registry, spoken to with Node's fetch (OCI distribution spec, FORMATS.md §4).
 * - Auth: `GET /v2/` learns the challenge; Basic sends the credentials, Bearer trades them at the token realm for
 *   a token scoped to `repository:<name>:<actions>`. A 401 on any later request (an expired token) re-authenticates
 *   once. The Authorization header only ever goes to the registry's own origin; redirects are followed by hand so
 *   it is dropped for other hosts; credentials go to a token realm on another host only over HTTPS.
 * - Retries: network errors, 5xx and 429 are retried with exponential backoff, honouring Retry-After. Requests
 *   with a body that cannot be replayed (upload chunks) are not retried here: the upload restarts as a whole.
 * - Errors name the registry, the request and the registry's own `{"errors":[{code,message}]}`; never credentials.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RegistryError } from "../errors.ts";
import { basicAuth, findCredentials, parseChallenge, PASSWORD_ENV, USER_ENV, type Challenge, type Credentials } from "./auth.ts";
import { apiHost, isLoopback } from "./reference.ts";

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
  fetch?: typeof fetch;
}

/** A failed request: `retryable` when trying again may help (network error, 5xx, 429). */
export class RequestError extends RegistryError {
  override name = "RequestError";
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, info: { status?: number; retryable: boolean; retryAfterMs?: number }, options?: ErrorOptions) {
    super(message, options);
    this.status = info.status;
    this.retryable = info.retryable;
    this.retryAfterMs = info.retryAfterMs;
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
}

const NETWORK_CODES_NOT_RETRIED = new Set(["ENOTFOUND", "ECONNREFUSED", "EAI_AGAIN", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT"]);

function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : undefined;
}

/** The registry's `{"errors":[...]}` as `CODE: message (detail)`, or the start of whatever it sent. */
async function describeBody(res: Response): Promise<string> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    return "";
  }
  try {
    const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      return errors
        .map((e) => [e.code, e.message].filter(Boolean).join(": ") + (e.detail !== undefined && e.detail !== null ? ` (${JSON.stringify(e.detail).slice(0, 200)})` : ""))
        .join("; ");
    }
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200);
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
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #credentials: Credentials | undefined;
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
    this.#retries = opts.retries ?? 4;
    this.#backoffMs = opts.backoffMs ?? 500;
    this.#credentials = findCredentials(opts.registry, opts.env ?? process.env);
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

  /** Checks the registry answers and learns how it wants to be authenticated. */
  async ping(): Promise<void> {
    if (this.#pinged) return;
    const url = `${this.origin}/v2/`;
    const res = await this.request("GET", url, { expect: [200, 401, 404] });
    if (res.status === 404) throw new RequestError(`${this.origin} is not an OCI registry: GET /v2/ answered 404`, { status: 404, retryable: false });
    if (res.status === 401) {
      const header = res.headers.get("www-authenticate");
      const message = await describeBody(res);
      if (!header) throw this.#denied("GET", url, message);
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
    await sleep(ms);
  }

  /** Sends one request, following redirects by hand (Authorization only to this registry's origin). */
  async #send(method: string, url: string, headers: Record<string, string>, body: BodyInit | undefined): Promise<{ res: Response; from: string }> {
    let current = url;
    for (let hops = 0; hops < 6; hops++) {
      const h: Record<string, string> = { ...headers };
      if (this.#authorization && new URL(current).origin === this.origin) h.authorization = this.#authorization;
      const init: globalThis.RequestInit & { duplex?: "half" } = { method, headers: h, redirect: "manual" };
      if (body !== undefined) {
        init.body = body;
        init.duplex = "half";
      }
      const res = await this.#fetch(current, init);
      const location = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && location && (method === "GET" || method === "HEAD")) {
        await res.body?.cancel();
        current = new URL(location, current).href;
        continue;
      }
      return { res, from: current };
    }
    throw new RequestError(`${this.#where(method, url)}: too many redirects`, { retryable: false });
  }

  async request(method: string, url: string, init: RequestInit): Promise<Response> {
    const retry = init.retry ?? true;
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let from: string;
      try {
        const made = init.body?.();
        const headers = { ...init.headers, ...(made ? { "content-length": String(made.length) } : {}) };
        ({ res, from } = await this.#send(method, url, headers, made?.body));
      } catch (cause) {
        if (cause instanceof RegistryError) throw cause;
        const code = causeCode(cause);
        const why = (cause as { cause?: Error }).cause?.message ?? (cause as Error).message;
        const retryable = !(code && NETWORK_CODES_NOT_RETRIED.has(code));
        const err = new RequestError(`cannot reach registry ${this.registry} (${this.#where(method, url)}): ${why}`, { retryable }, { cause });
        if (!retry || !retryable || attempt >= this.#retries) throw err;
        await this.#backoff(attempt, undefined);
        continue;
      }
      // Only the registry itself may ask for credentials: a 401 from a host a redirect led to (a CDN) must not get
      // them, nor decide where the token service is.
      if (res.status === 401 && new URL(from).origin !== this.origin) {
        await res.body?.cancel();
        throw new RequestError(`${this.#where(method, url)}: ${new URL(from).origin}, where the registry redirected, asks for credentials; they are only sent to ${this.origin}`, { status: 401, retryable: false });
      }
      if (res.status === 401 && !reauthenticated && !init.expect.includes(401)) {
        reauthenticated = true;
        const header = res.headers.get("www-authenticate");
        const message = await describeBody(res);
        if (!header) throw this.#denied(method, url, message);
        await this.#authenticate(parseChallenge(header), false, message);
        attempt--;
        continue;
      }
      if (init.expect.includes(res.status)) return res;
      const message = await describeBody(res);
      if (res.status === 401 || res.status === 403) throw this.#denied(method, url, message, res.status);
      const retryable = res.status >= 500 || res.status === 429;
      const err = new RequestError(
        `registry ${this.registry} refused ${this.#where(method, url)}: ${res.status} ${res.statusText}${message ? `: ${message}` : ""}`,
        { status: res.status, retryable, ...(retryAfter(res.headers.get("retry-after")) !== undefined ? { retryAfterMs: retryAfter(res.headers.get("retry-after"))! } : {}) },
      );
      if (!retry || !retryable || attempt >= this.#retries) throw err;
      await this.#backoff(attempt, err);
    }
  }

  #denied(method: string, url: string, message: string, status = 401): RequestError {
    const hint = this.#credentials
      ? `the credentials from ${this.#credentials.source} were refused`
      : `no credentials found: set ${USER_ENV} and ${PASSWORD_ENV}, or log in (REGISTRY_AUTH_FILE, ~/.docker/config.json)`;
    return new RequestError(
      `authentication with registry ${this.registry} failed (${this.#where(method, url)}: ${status}${message ? ` ${message}` : ""}): ${hint}`,
      { status, retryable: false },
    );
  }

  async #authenticate(challenge: Challenge, refresh: boolean, message = ""): Promise<void> {
    // The same Basic credentials again would be refused again.
    if (!refresh && challenge.scheme === "basic" && this.#authorization?.startsWith("Basic ")) throw this.#denied("GET", `${this.origin}/v2/`, message);
    this.#challenge = challenge;
    if (challenge.scheme === "basic") {
      if (!this.#credentials) throw this.#denied("GET", `${this.origin}/v2/`, message);
      this.#authorization = basicAuth(this.#credentials);
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) {
      throw new RequestError(`registry ${this.registry} asks for unsupported authentication '${challenge.scheme}'`, { retryable: false });
    }
    this.#authorization = `Bearer ${await this.#token(challenge.params)}`;
  }

  /** Trades credentials (or nothing: anonymous) for a bearer token at the realm. */
  async #token(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm!, this.origin);
    const trusted = realm.origin === this.origin || realm.protocol === "https:";
    const creds = trusted ? this.#credentials : undefined;
    const scopes = [...this.#scopes];
    let res: Response;
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken, client_id: "layerpack", scope: scopes.join(" ") });
        if (params.service) form.set("service", params.service);
        res = await this.#fetch(realm, { method: "POST", body: form, redirect: "error" });
      } else {
        if (params.service) realm.searchParams.set("service", params.service);
        for (const s of scopes) realm.searchParams.append("scope", s);
        res = await this.#fetch(realm, { headers: creds ? { authorization: basicAuth(creds) } : {}, redirect: "error" });
      }
    } catch (cause) {
      throw new RequestError(`cannot reach the token service of registry ${this.registry} at ${realm.origin}: ${(cause as Error).message}`, { retryable: true }, { cause });
    }
    if (res.status !== 200) {
      const message = await describeBody(res);
      throw this.#denied("GET", realm.href, `token service answered ${res.status}${message ? `: ${message}` : ""}`, res.status);
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RequestError(`the token service of registry ${this.registry} sent no token`, { retryable: false });
    return token;
  }
}

/** Resolves a `Location` header (possibly relative) against the request URL. */
export function resolveLocation(res: Response, requestUrl: string, what: string): string {
  const location = res.headers.get("location");
  if (!location) throw new RequestError(`${what}: the registry sent no Location header`, { retryable: true });
  return new URL(location, requestUrl).href;
}
