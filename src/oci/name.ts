/**
 * Image names as skopeo and podman write them: `docker-archive:PATH`, `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`,
 * `docker://REFERENCE`, plus the plain forms layerpack always took (a path, else a registry reference).
 * Paths come back absolute; `text` keeps what was written, for messages.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LayerpackError } from "../errors.ts";
import { formatReference, maskUserinfo, parseReference, type Reference } from "../registry/reference.ts";

export type ImageName =
  | { transport: "docker-archive"; path: string; text: string }
  | { transport: "oci"; path: string; ref?: string; text: string }
  | { transport: "oci-archive"; path: string; ref?: string; text: string }
  | { transport: "registry"; reference: Reference; text: string }
  /** A path whose kind (layout directory, OCI or docker archive) is sniffed when it is read. */
  | { transport: "path"; path: string; text: string };

export interface ParseImageNameOptions {
  /** Relative paths are resolved against this (default: process.cwd()). */
  cwd?: string;
}

const FORMS = "docker-archive:, oci:, oci-archive: or docker://";

/**
 * The containers/image transport `text` starts with (`oci` of `oci:DIR`, `docker` of `docker://…`), read or not by
 * layerpack; undefined for a path and a registry reference. Only these names count as a transport: any other
 * `word:` is a tag (`alpine:3.19`, `docker:dind`), and `word:123/` is a host:port (`localhost:5000/app`).
 */
export function transportOf(text: string): string | undefined {
  return /^(docker-archive|oci-archive|oci|docker(?=:\/\/)|containers-storage|dir|docker-daemon|ostree|sif|tarball):(?!\d+(\/|$))/.exec(text)?.[1];
}

/** An OCI ref name (org.opencontainers.image.ref.name) as it can stand after the path's colon. */
const REF_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*([:@/+][A-Za-z0-9._-]+)*$/;

// Masked always: a message must never echo a password, and a stray `@` elsewhere only costs some display.
function fail(text: string, why: string, cause?: unknown): LayerpackError {
  return new LayerpackError(`image "${maskUserinfo(text)}": ${why}`, cause === undefined ? undefined : { cause });
}

function registry(text: string, ref: string): ImageName {
  try {
    // parseReference refuses userinfo itself, and its message shows it masked.
    return { transport: "registry", reference: parseReference(ref), text };
  } catch (err) {
    if (err instanceof LayerpackError) throw fail(text, err.message, err);
    throw err;
  }
}

/**
 * `PATH[:REF]`: split at the first colon after which a ref name follows, as containers/image does; ref names may
 * hold colons themselves (`name:tag`, as layerpack's layouts name images) and slashes (`team/hello:1.2`). A slash
 * could also be part of a directory whose name has a colon (`/tmp/a:b/c`), so a split whose ref has one is taken
 * only when its path exists; otherwise the ref is what follows the first colon with no slash after it.
 */
function splitRef(rest: string, exists: (file: string) => boolean): { file: string; ref?: string } {
  let plain: { file: string; ref: string } | undefined;
  for (let colon = rest.indexOf(":"); colon >= 0; colon = rest.indexOf(":", colon + 1)) {
    const file = rest.slice(0, colon);
    const ref = rest.slice(colon + 1);
    if (colon === 0 || ref.length > 128 || !REF_NAME.test(ref)) continue;
    if (ref.includes("/")) {
      if (exists(file)) return { file, ref };
    } else {
      plain ??= { file, ref };
    }
  }
  return plain ?? { file: rest };
}

/** Names of files layerpack reads, never Docker Hub repositories in practice. */
const FILE_LIKE = /\.(?:tar|tgz|gz|zst|json|ya?ml)$/;

export function parseImageName(text: string, opts: ParseImageNameOptions = {}): ImageName {
  const cwd = opts.cwd ?? process.cwd();
  const abs = (p: string) => path.resolve(cwd, p);
  if (text.trim() === "") throw fail(text, `give an image: a path, a registry reference, or one of ${FORMS}`);

  if (text.startsWith("docker://")) {
    const rest = text.slice("docker://".length);
    if (rest === "") throw fail(text, "give a registry reference after docker://, e.g. docker://localhost:5000/app:1");
    return registry(text, rest);
  }
  if (text.startsWith("docker-archive:")) {
    const rest = text.slice("docker-archive:".length);
    if (rest === "") throw fail(text, "give a path after docker-archive:");
    return { transport: "docker-archive", path: abs(rest), text };
  }
  for (const transport of ["oci", "oci-archive"] as const) {
    if (!text.startsWith(`${transport}:`)) continue;
    const rest = text.slice(transport.length + 1);
    const { file, ref } = splitRef(rest, (f) => fs.existsSync(abs(f)));
    if (file === "" || rest.startsWith(":")) throw fail(text, `give a ${transport === "oci" ? "directory" : "path"} after ${transport}:`);
    return { transport, path: abs(file), ...(ref !== undefined ? { ref } : {}), text };
  }

  // Plain forms, as before: something that is clearly a path, or is on disk, is a path (its kind sniffed later).
  if (/^\.{0,2}\//.test(text) || fs.existsSync(abs(text))) return { transport: "path", path: abs(text), text };
  // A missing `image.tar` or `plan.yaml` is a typo of a file, not an image on Docker Hub to fetch.
  if (!text.includes("/") && FILE_LIKE.test(text)) return { transport: "path", path: abs(text), text };
  // (The transports layerpack reads were taken above.)
  const unsupported = transportOf(text);
  if (unsupported) throw fail(text, `transport ${unsupported}: is not supported; use ${FORMS}`);
  return registry(text, text);
}

/**
 * The canonical form, which parseImageName reads back to the same name (paths absolute, Docker Hub spelled out).
 * As with skopeo, an oci: path holding a colon followed by a ref-like name has no spelling that reads back the same.
 */
export function formatImageName(name: ImageName): string {
  switch (name.transport) {
    case "docker-archive":
      return `docker-archive:${name.path}`;
    case "oci":
    case "oci-archive":
      return `${name.transport}:${name.path}${name.ref !== undefined ? `:${name.ref}` : ""}`;
    case "registry":
      return `docker://${formatReference(name.reference)}`;
    case "path":
      return name.path;
  }
}
