/**
 * `output.format: registry`: pushes a built image to `output.ref`, remembering in the layer cache which repository
 * each blob went to (`<cache>/registry/<host>.json`), so a later push to another repository of the same registry
 * mounts it instead of uploading it again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ImageSpec } from "../config/schema.ts";
import { parseReference } from "./reference.ts";
import { outputClient } from "./client.ts";
import { withPushHost } from "./auth.ts";
import { pushImage, type MountHints, type PushEvent, type PushImage, type PushResult } from "./push.ts";
import { makeDirs } from "../util/dirs.ts";
import { tempName } from "../util/temp.ts";
import { readUserBytes } from "../util/read-file.ts";

/**
 * The environment a build of `spec` talks to registries with: LAYERPACK_REGISTRY_USER/PASSWORD are for the registry
 * it pushes to, its base image and cache sources there included, and nowhere else (auth.ts).
 */
export function registryEnv<E extends Record<string, string | undefined>>(spec: Pick<ImageSpec, "output">, env: E): E {
  return withPushHost(env, spec.output.format === "registry" && spec.output.ref !== undefined ? parseReference(spec.output.ref).registry : undefined);
}

/**
 * For a registry output: the registry answers (GET /v2/) before any layer is built, so a wrong host or a registry
 * that is down fails in a second, not after the build.
 */
export async function checkRegistryReachable(spec: Pick<ImageSpec, "output">, env: Record<string, string | undefined>, signal?: AbortSignal): Promise<void> {
  if (spec.output.format !== "registry" || spec.output.ref === undefined) return;
  await outputClient(spec.output, { env, signal }).ping();
}

export interface RegistryOutputOptions {
  /** Where credentials are looked up; default process.env. */
  env?: Record<string, string | undefined>;
  /** The layer cache directory, for mount hints; none: no hints. */
  cacheDir?: string;
  concurrency?: number;
  onEvent?: (e: PushEvent) => void;
  /** Manifest references to push under instead of the image's tags (a digest: pushed by digest only). */
  tags?: string[];
  /** Blobs known to be in another repository of this registry (a cache source's), by digest: mounted from there. */
  mounts?: Record<string, string>;
  /** Ends the push (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/** Mount hints kept in a small JSON file; written back once, after the push. */
class FileHints implements MountHints {
  readonly #file: string | undefined;
  readonly #map: Record<string, string>;
  #dirty = false;

  /** Without a file the hints live for this push only. */
  constructor(file: string | undefined) {
    this.#file = file;
    this.#map = file === undefined ? {} : readHints(file);
  }

  get(digest: string): string | undefined {
    return this.#map[digest];
  }

  put(digest: string, repository: string): void {
    if (this.#map[digest] === repository) return;
    this.#map[digest] = repository;
    this.#dirty = true;
  }

  save(): void {
    if (!this.#dirty || this.#file === undefined) return;
    try {
      const dir = path.dirname(this.#file);
      const tmp = path.join(path.dirname(dir), "tmp");
      // (A cache directory no build has opened yet, as push --from may be given: its tmp/ made here.)
      makeDirs(dir);
      makeDirs(tmp);
      // Like the cache's other directories, never written through a link (it would put the file elsewhere).
      if (!fs.lstatSync(dir).isDirectory() || !fs.lstatSync(tmp).isDirectory()) return;
      const temp = path.join(tmp, tempName(path.basename(this.#file)));
      fs.writeFileSync(temp, JSON.stringify(this.#map));
      fs.renameSync(temp, this.#file);
    } catch {
      // a read-only cache: the next push uploads instead of mounting
    }
  }
}

/** A digest and the repository of this registry it was pushed to, as hints may hold them (one goes into a URL). */
const MAX_HINTS_BYTES = 64 << 20;
const HINT_DIGEST = /^sha256:[0-9a-f]{64}$/;
const HINT_REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * The hints file's entries that are well formed; none when it is missing, damaged, or not a regular file in a
 * real directory (a FIFO there would block the push; the cache is anyone's to change, see cache/files.ts).
 */
function readHints(file: string): Record<string, string> {
  if (fs.lstatSync(path.dirname(file), { throwIfNoEntry: false })?.isDirectory() !== true) return {};
  let data: unknown;
  try {
    // Not followed (lstat), and opened without blocking with its type checked on the open file (a swap since).
    if (fs.lstatSync(file, { throwIfNoEntry: false })?.isFile() !== true) return {};
    data = JSON.parse(readUserBytes(file, MAX_HINTS_BYTES).toString("utf8"));
  } catch {
    return {};
  }
  const map: Record<string, string> = {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) return map;
  for (const [digest, repository] of Object.entries(data)) {
    if (HINT_DIGEST.test(digest) && typeof repository === "string" && repository.length <= 255 && HINT_REPOSITORY.test(repository)) map[digest] = repository;
  }
  return map;
}

/** The tags in `repoTags` (`name:tag`). */
const tagsOf = (repoTags: string[]) => repoTags.map((t) => t.slice(t.lastIndexOf(":") + 1));

/** The mount hints the cache at `cacheDir` keeps for `registry` (none kept without a cache); save() writes them back. */
export function mountHintsFor(cacheDir: string | undefined, registry: string): MountHints & { save(): void } {
  return new FileHints(cacheDir ? path.join(cacheDir, "registry", `${registry.replace(/[^A-Za-z0-9.-]/g, "_")}.json`) : undefined);
}

export async function pushToRegistry(image: PushImage & { repoTags: string[] }, output: ImageSpec["output"], opts: RegistryOutputOptions): Promise<PushResult> {
  const ref = parseReference(output.ref ?? "");
  const hints = mountHintsFor(opts.cacheDir, ref.registry);
  for (const [digest, repository] of Object.entries(opts.mounts ?? {})) hints.put(digest, repository);
  try {
    return await pushImage(image, {
      ref,
      tags: opts.tags ?? tagsOf(image.repoTags),
      ...(output.insecure ? { insecure: true } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
      hints,
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    hints.save();
  }
}
