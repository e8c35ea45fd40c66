/**
 * Image references as docker and the distribution spec write them: `[REGISTRY/]NAME[:TAG][@DIGEST]`. The first
 * component is a registry when it has a `.` or `:` or is `localhost`; otherwise the registry is Docker Hub and a
 * one-component name gets `library/`. Credentials in a reference (`user:password@host/name`) are refused, and the
 * refusal shows them as `***@`: they would end up in shell history, plan files and messages.
 */
import { RegistryError } from "../errors.ts";

export interface Reference {
  /** `host[:port]` as written (Docker Hub: `docker.io`). */
  registry: string;
  /** Repository name inside the registry, e.g. `team/hello`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = "docker.io";
/** Docker Hub's API host. */
const DOCKER_HUB_API = "registry-1.docker.io";

const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Where userinfo ends: the last `@` that does not start the reference's trailing `@sha256:...` digest; -1 if none.
 * A digest never holds `/` or a second `@`, so anything else after an `@` is a host.
 */
function userinfoEnd(text: string): number {
  let end = text.lastIndexOf("@");
  if (end >= 0 && /^sha256:[^/@]*$/.test(text.slice(end + 1))) end = text.lastIndexOf("@", end - 1);
  return end;
}

/** `text` with any userinfo shown as `***@`, for messages. */
export function maskUserinfo(text: string): string {
  const end = userinfoEnd(text);
  if (end < 0) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? "";
  return `${scheme}***${text.slice(end)}`;
}

function malformed(text: string, why: string): RegistryError {
  return new RegistryError(`malformed image reference '${text}': ${why} (expected REGISTRY/NAME:TAG, e.g. localhost:5000/hello:1.0)`);
}

export function parseReference(text: string): Reference {
  let rest = text.trim();
  if (rest === "") throw malformed(text, "it is empty");
  if (userinfoEnd(rest) >= 0) {
    throw new RegistryError(
      `image reference '${maskUserinfo(rest)}' holds credentials; they are not taken from a reference: set LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD, or log in (REGISTRY_AUTH_FILE, ~/.docker/config.json)`,
    );
  }
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw malformed(text, `'${digest}' is not a digest (sha256:<64 hex digits>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw malformed(text, `'${tag}' is not a valid tag (letters, digits, _ . -, at most 128)`);
  }
  const parts = rest.split("/");
  // `127.0.0.1:5000` or `localhost:5000` alone reads as Docker Hub's library/127.0.0.1 at tag 5000, as for docker,
  // but it is a registry whose repository was forgotten: say so rather than send it to Docker Hub.
  if (parts.length === 1 && digest === undefined && tag !== undefined && /^\d+$/.test(tag) && (rest === "localhost" || rest.includes("."))) {
    throw malformed(text, `it names a registry host:port but no repository; write ${rest}:${tag}/NAME[:TAG]`);
  }
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    if (!HOST.test(first)) throw malformed(text, `'${first}' is not a registry host[:port]`);
    registry = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    const bad = parts.find((p) => !COMPONENT.test(p)) ?? "";
    throw malformed(text, `'${bad}' is not a valid repository name component (lowercase letters, digits, separators . _ __ -)`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length > 255) throw malformed(text, "the repository name is longer than 255 characters");
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** The host the API is reached at (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** Loopback registries may be plain HTTP without --insecure. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
