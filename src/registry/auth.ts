/**
 * Where registry credentials come from, in this order:
 * 1. LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD (both, non-empty; for the registry being spoken to only);
 * 2. REGISTRY_AUTH_FILE (podman/skopeo's variable), else $DOCKER_CONFIG/config.json or ~/.docker/config.json:
 *    `auths[<registry>]` with `auth` (base64 `user:password`) or `username` + `password`, or `identitytoken`.
 * Credential helpers (`credsStore`, `credHelpers`) are not run. Credentials are never printed: errors say where
 * they came from, not what they are.
 */
import * as fs from "node:fs";
import * as os from "node:os";
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

/** The keys an auth file may file a registry under. */
function authKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === DOCKER_HUB) keys.push("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io");
  return keys;
}

function authFile(env: Env): string | undefined {
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE;
  const dir = env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), ".docker");
  const file = path.join(dir, "config.json");
  return fs.existsSync(file) ? file : undefined;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export function findCredentials(registry: string, env: Env): Credentials | undefined {
  // Empty counts as unset, so a caller can blank them out.
  const user = env[USER_ENV] || undefined;
  const password = env[PASSWORD_ENV] || undefined;
  if (user !== undefined || password !== undefined) {
    if (user === undefined || password === undefined) throw new RegistryError(`set both ${USER_ENV} and ${PASSWORD_ENV}, or neither`);
    return { username: user, password, source: `${USER_ENV}/${PASSWORD_ENV}` };
  }
  const file = authFile(env);
  if (file === undefined) return undefined;
  let auths: Record<string, AuthEntry>;
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as { auths?: Record<string, AuthEntry> };
    auths = parsed.auths ?? {};
  } catch (cause) {
    throw new RegistryError(`cannot read the registry auth file ${file}: ${(cause as Error).message}`, { cause });
  }
  for (const key of authKeys(registry)) {
    const entry = auths[key];
    if (!entry) continue;
    const source = `${file} (auths["${key}"])`;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw new RegistryError(`${source}: "auth" is not base64 of user:password`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source, ...(entry.identitytoken ? { identityToken: entry.identitytoken } : {}) };
    }
    if (entry.identitytoken) return { username: entry.username ?? "", password: "", source, identityToken: entry.identitytoken };
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password, source };
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

/** Parses a `WWW-Authenticate` header (one challenge): `Bearer realm="...",service="...",scope="..."`. */
export function parseChallenge(header: string): Challenge {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return { scheme: "", params: {} };
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}
