/**
 * Where registry credentials come from, in the order skopeo and podman look, then docker's:
 * 1. LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD (both, non-empty), for one registry only: the one
 *    LAYERPACK_REGISTRY_HOST names, else the one being pushed to (a build or push sets it for its reads of that
 *    registry too, withPushHost). A base image or cache source elsewhere never gets them;
 * 2. REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json:
 *    `auths[<registry>]` with `auth` (base64 `user:password`) or `username` + `password`, or `identitytoken`;
 * 3. $DOCKER_CONFIG/config.json or ~/.docker/config.json: `credHelpers[<registry>]`, then `auths`, then `credsStore`
 *    — a helper is `docker-credential-<name> get`, given the registry on stdin, under a time limit.
 * Credentials are never printed: errors say where they came from, not what they are, and a helper's output is
 * never shown.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { readUserFile } from "../util/read-file.ts";
import { homeDir, xdgDir } from "../util/dirs.ts";
import { isRecord } from "../util/json.ts";
import * as path from "node:path";
import { RegistryError } from "../errors.ts";
import { DOCKER_HUB } from "./reference.ts";

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for error messages (an env var name or a file). */
  source: string;
  /** An OAuth2 refresh token (docker config `identitytoken`) instead of a password. */
  identityToken?: string;
}

type Env = Record<string, string | undefined>;

export const USER_ENV = "LAYERPACK_REGISTRY_USER";
export const PASSWORD_ENV = "LAYERPACK_REGISTRY_PASSWORD";
export const HOST_ENV = "LAYERPACK_REGISTRY_HOST";

/** `env` with LAYERPACK_REGISTRY_HOST defaulted to `registry` (the one a command pushes to or reads alone). */
export function withPushHost<E extends Env>(env: E, registry: string | undefined): E {
  if (registry === undefined || env[HOST_ENV]) return env;
  return { ...env, [HOST_ENV]: registry };
}

/** Docker Hub answers to several names. */
const hubNames = new Set([DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]);
const sameRegistry = (a: string, b: string): boolean => a === b || (hubNames.has(a) && hubNames.has(b));
/** How long a credential helper may take. */
export const HELPER_TIMEOUT_MS = 10_000;

/** The keys an auth file may file a registry under. */
function authKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === DOCKER_HUB) keys.push("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io");
  return keys;
}

/** The auth files looked at, in order; `docker` marks docker's config (the one with credential helpers). */
export function authFiles(env: Env): { file: string; docker: boolean }[] {
  const home = homeDir(env);
  const files: { file: string; docker: boolean }[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push({ file: env.REGISTRY_AUTH_FILE, docker: false });
  const runtime = xdgDir(env, "XDG_RUNTIME_DIR");
  if (runtime) files.push({ file: path.join(runtime, "containers", "auth.json"), docker: false });
  // Without a home directory, the files under it are not looked for (they would be the current directory's).
  const config = xdgDir(env, "XDG_CONFIG_HOME") ?? (home !== undefined ? path.join(home, ".config") : undefined);
  if (config !== undefined) files.push({ file: path.join(config, "containers", "auth.json"), docker: false });
  const docker = env.DOCKER_CONFIG || (home !== undefined ? path.join(home, ".docker") : undefined);
  if (docker !== undefined) files.push({ file: path.join(docker, "config.json"), docker: true });
  return files;
}

/** Where findCredentials looked, for "no credentials" messages. */
export function credentialPlaces(env: Env): string {
  return [`${USER_ENV}/${PASSWORD_ENV}`, ...authFiles(env).map((f) => f.file)].join(", ");
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/**
 * The parsed auth file, its shape checked: an object, `auths` an object of objects whose fields are strings,
 * `credHelpers` an object, `credsStore` a string. Messages name the key, never the value (it may be a secret).
 */
function authConfig(parsed: unknown, file: string): AuthConfig {
  const bad = (key: string, what: string) => new RegistryError(`the registry auth file ${file}: ${key} is not ${what}`);
  if (!isRecord(parsed)) throw new RegistryError(`the registry auth file ${file} is not a JSON object`);
  const { auths, credHelpers, credsStore } = parsed;
  if (auths !== undefined && !isRecord(auths)) throw bad("auths", "an object");
  for (const [key, entry] of Object.entries(auths ?? {})) {
    if (!isRecord(entry)) throw bad(`auths[${JSON.stringify(key)}]`, "an object");
    for (const field of ["auth", "username", "password", "identitytoken"]) {
      if (entry[field] !== undefined && typeof entry[field] !== "string") throw bad(`auths[${JSON.stringify(key)}].${field}`, "a string");
    }
  }
  if (credHelpers !== undefined && !isRecord(credHelpers)) throw bad("credHelpers", "an object");
  if (credsStore !== undefined && typeof credsStore !== "string") throw bad("credsStore", "a string");
  return parsed as AuthConfig;
}

function fromEntry(entry: AuthEntry, source: string): Credentials | undefined {
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new RegistryError(`${source}: "auth" is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source, ...(entry.identitytoken ? { identityToken: entry.identitytoken } : {}) };
  }
  if (entry.identitytoken) return { username: entry.username ?? "", password: "", source, identityToken: entry.identitytoken };
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password, source };
  return undefined;
}

/**
 * Asks `docker-credential-<name>` for the registry's credentials; undefined when it has none. Its output (and error
 * output) may hold the secret, so no message quotes it.
 */
function fromHelper(name: string, registry: string, where: { file: string; env: Env }): Credentials | undefined {
  const { file, env } = where;
  const source = `${file} (credential helper docker-credential-${name})`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new RegistryError(`${file}: credential helper name ${JSON.stringify(name)} is not a plain program name`);
  for (const server of [registry, `https://${registry}`]) {
    const r = spawnSync(`docker-credential-${name}`, ["get"], { input: server, encoding: "utf8", timeout: HELPER_TIMEOUT_MS, env: env as NodeJS.ProcessEnv, maxBuffer: 1 << 20 });
    // EPIPE only means the helper did not read the host from stdin: its answer still counts.
    if (r.error && (r.error as NodeJS.ErrnoException).code !== "EPIPE") {
      const code = (r.error as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "is not installed (not on PATH)" : code === "ETIMEDOUT" ? `did not answer within ${HELPER_TIMEOUT_MS / 1000} s` : "could not be run";
      throw new RegistryError(`${source} ${why}`);
    }
    // Helpers say "credentials not found" with a non-zero status: try the next spelling, then give up quietly.
    if (r.status !== 0) continue;
    let answer: { Username?: unknown; Secret?: unknown };
    try {
      answer = JSON.parse(r.stdout) as typeof answer;
    } catch {
      throw new RegistryError(`${source} answered with something that is not JSON`);
    }
    if (typeof answer.Username !== "string" || typeof answer.Secret !== "string") throw new RegistryError(`${source} answered without Username and Secret`);
    // "<token>" as the user name means the secret is an identity token (docker's convention).
    if (answer.Username === "<token>") return { username: "", password: "", source, identityToken: answer.Secret };
    return { username: answer.Username, password: answer.Secret, source };
  }
  return undefined;
}

/** What is wrong with a file that holds secrets, without the text near the error that JSON.parse's message quotes
 * (a password, a base64 `auth`): where it is, when V8 says, else only that it is not JSON. A read error (ENOENT,
 * EACCES, too large) names no content and is kept. No `cause`: an error's cause is printed with it. */
function jsonErrorWithoutText(err: unknown): string {
  if (!(err instanceof SyntaxError)) return (err as Error).message;
  const at = /\bat position (\d+)(?: \(line (\d+) column (\d+)\))?/.exec(err.message);
  if (at?.[2] !== undefined) return `not valid JSON at line ${at[2]} column ${at[3]}`;
  if (at) return `not valid JSON at offset ${at[1]}`;
  return /end of JSON input/.test(err.message) ? "not valid JSON: it ends too early" : "not valid JSON";
}

/** Credentials for `registry`; `push`: it is the registry being pushed to (see 1. above). */
export function findCredentials(registry: string, env: Env, push = false): Credentials | undefined {
  // Empty counts as unset, so a caller can blank them out.
  const user = env[USER_ENV] || undefined;
  const password = env[PASSWORD_ENV] || undefined;
  if (user !== undefined || password !== undefined) {
    if (user === undefined || password === undefined) throw new RegistryError(`set both ${USER_ENV} and ${PASSWORD_ENV}, or neither`);
    const host = env[HOST_ENV] || undefined;
    if (host !== undefined && !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d+)?$/.test(host)) {
      throw new RegistryError(`${HOST_ENV} must name a registry as HOST[:PORT] (ghcr.io, localhost:5000), not ${JSON.stringify(host.slice(0, 100))}`);
    }
    if (host !== undefined ? sameRegistry(registry, host) : push) return { username: user, password, source: `${USER_ENV}/${PASSWORD_ENV}` };
  }
  for (const { file, docker } of authFiles(env)) {
    if (!fs.existsSync(file)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readUserFile(file, 4 << 20));
    } catch (cause) {
      throw new RegistryError(`cannot read the registry auth file ${file}: ${jsonErrorWithoutText(cause)}`);
    }
    const config = authConfig(parsed, file);
    const helper = docker ? authKeys(registry).map((k) => config.credHelpers?.[k]).find((h) => typeof h === "string") : undefined;
    if (helper !== undefined) {
      const found = fromHelper(helper, registry, { file, env });
      if (found) return found;
    }
    for (const key of authKeys(registry)) {
      const entry = config.auths?.[key];
      const found = entry && fromEntry(entry, `${file} (auths["${key}"])`);
      if (found) return found;
    }
    if (docker && typeof config.credsStore === "string" && config.credsStore !== "") {
      const found = fromHelper(config.credsStore, registry, { file, env });
      if (found) return found;
    }
  }
  return undefined;
}

export function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Every challenge of a `WWW-Authenticate` header (RFC 7235): fetch joins repeated headers with ", ", so
 * `Bearer realm="…",service="…", Basic realm="…"` is two challenges; a name not followed by `=` starts the next.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const re = /\s*,?\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?/gy;
  for (let m = re.exec(header); m && m[0] !== ""; m = re.exec(header)) {
    const [, name, quoted, plain] = m;
    if (quoted === undefined && plain === undefined) out.push({ scheme: name!.toLowerCase(), params: {} });
    else if (out.length > 0) out.at(-1)!.params[name!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : plain!;
  }
  return out;
}

/** The challenge to answer: Bearer (a token service) before Basic, else the first; empty when there is none. */
export function parseChallenge(header: string): Challenge {
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === "bearer") ?? all.find((c) => c.scheme === "basic") ?? all[0] ?? { scheme: "", params: {} };
}
