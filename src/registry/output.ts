/**
 * `output.format: registry`: pushes a built image to `output.ref`, remembering in the layer cache which repository
 * each blob went to (`<cache>/registry/<host>.json`), so a later push to another repository of the same registry
 * mounts it instead of uploading it again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import type { ImageSpec } from "../config/schema.ts";
import { parseReference } from "./reference.ts";
import { RegistryClient } from "./client.ts";
import { withPushHost } from "./auth.ts";
import { pushImage, type MountHints, type PushEvent, type PushImage, type PushResult } from "./push.ts";
import { makeDirs } from "../util/dirs.ts";

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
export async function checkRegistryReachable(spec: Pick<ImageSpec, "output">, env: Record<string, string | undefined>): Promise<void> {
  if (spec.output.format !== "registry" || spec.output.ref === undefined) return;
  const ref = parseReference(spec.output.ref);
  await new RegistryClient({ registry: ref.registry, repository: ref.repository, ...(spec.output.insecure ? { insecure: true } : {}), env }).ping();
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
}

/** Mount hints kept in a small JSON file; written back once, after the push. */
class FileHints implements MountHints {
  readonly #file: string | undefined;
  readonly #map: Record<string, string>;
  #dirty = false;

  /** Without a file the hints live for this push only. */
  constructor(file: string | undefined) {
    this.#file = file;
    let map: Record<string, string> = {};
    try {
      if (file !== undefined) map = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string>;
    } catch {
      // none yet, or damaged: hints only save uploads
    }
    this.#map = typeof map === "object" && map !== null && !Array.isArray(map) ? map : {};
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
      makeDirs(path.dirname(this.#file));
      const temp = `${this.#file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      fs.writeFileSync(temp, JSON.stringify(this.#map));
      fs.renameSync(temp, this.#file);
    } catch {
      // a read-only cache: the next push uploads instead of mounting
    }
  }
}

/** The tags in `repoTags` (`name:tag`). */
const tagsOf = (repoTags: string[]) => repoTags.map((t) => t.slice(t.lastIndexOf(":") + 1));

export async function pushToRegistry(image: PushImage & { repoTags: string[] }, output: ImageSpec["output"], opts: RegistryOutputOptions): Promise<PushResult> {
  const ref = parseReference(output.ref ?? "");
  const hints = new FileHints(opts.cacheDir ? path.join(opts.cacheDir, "registry", `${ref.registry.replace(/[^A-Za-z0-9.-]/g, "_")}.json`) : undefined);
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
    });
  } finally {
    hints.save();
  }
}
