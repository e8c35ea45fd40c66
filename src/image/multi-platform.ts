/**
 * `platforms:` builds: each platform's image is built as usual but left untagged (pushed by digest, or its blobs
 * added to the layout), then an OCI image index naming each image with its platform goes under the tags — so a
 * reader never sees a tag pointing at one platform's image alone. Items the platforms share lie in the same
 * layers (plan/platforms.ts), so those blobs are stored and pushed once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BuildError } from "../errors.ts";
import { locateConfigError } from "../config/format.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import type { LayerPlan } from "../plan/types.ts";
import { OCI_MEDIA_TYPES, type Descriptor, type OciIndex } from "../oci/types.ts";
import { specPlatform } from "../oci/platform.ts";
import { outputClient } from "../registry/client.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { checkRegistryReachable, registryEnv } from "../registry/output.ts";
import { sha256Digest } from "../util/digest.ts";
import { canonicalJson } from "./config.ts";
import { buildImage, type BuildInput, type BuildResult } from "./build.ts";
import { archiveLayout, blobsDirectory, ociManifest, qualifiedName } from "./oci-layout.ts";
import { MAX_DOCUMENT, readRegular } from "../oci/blob-file.ts";
import { epochSeconds, imageRepoTags } from "./jobs.ts";
import { tempName } from "../util/temp.ts";
import { tempPathFor } from "./atomic.ts";

/** Each platform's spec, closure and plan (`platforms:` in the config), planned together (plan/platforms.ts). */
export interface PlatformBuild {
  spec: ImageSpec;
  closure: Closure;
  plan: LayerPlan;
}

export type PlatformsInput = Omit<BuildInput, "spec" | "closure" | "plan" | "untagged"> & { spec: BuildInput["spec"]; platforms: PlatformBuild[] };

/** The index of the platforms' images, canonical JSON (reproducible). */
function indexBytes(results: readonly { result: BuildResult; build: PlatformBuild }[], annotations: Record<string, string> | undefined): Buffer {
  const manifests: Descriptor[] = results.map(({ result, build }) => {
    const manifest = ociManifest({ config: result.image.configBytes(), configDigest: result.imageId, layers: result.layers, ...(result.image.annotations ? { annotations: result.image.annotations } : {}) });
    const platform = specPlatform(build.spec);
    return { mediaType: OCI_MEDIA_TYPES.manifest, digest: sha256Digest(manifest), size: manifest.length, platform: { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}) } } as Descriptor;
  });
  const index: OciIndex = { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests, ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}) };
  return Buffer.from(canonicalJson(index));
}

/**
 * The layout's index.json with the tags pointing at the image index; entries of other images kept. `artifacts`: the
 * artifact manifests this build wrote for its platform images, the only ones of theirs kept (an SBOM format dropped
 * from the config leaves, as a fresh layout would not have it).
 */
function tagLayout(dir: string, made: { index: Buffer; repoTags: readonly string[]; artifacts: ReadonlySet<string> }): void {
  const { index, repoTags } = made;
  const platformManifests = new Set((JSON.parse(index.toString("utf8")) as OciIndex).manifests.map((m) => m.digest));
  const digest = sha256Digest(index);
  const blob = path.join(blobsDirectory(dir), digest.slice(7));
  if (!fs.existsSync(blob)) {
    // A new file renamed into place: never written through whatever may be there.
    const temp = tempPathFor(blob);
    fs.writeFileSync(temp, index, { mode: 0o444, flag: "wx" });
    fs.renameSync(temp, blob);
  }
  const file = path.join(dir, "index.json");
  const current = JSON.parse(readRegular(file, "index.json", { max: MAX_DOCUMENT })?.toString("utf8") ?? "") as OciIndex;
  const ours = new Set(repoTags);
  const refName = (m: Descriptor | null | undefined) => m?.annotations?.["org.opencontainers.image.ref.name"];
  const images = current.manifests.filter((m) => !ours.has(refName(m) ?? "") && m?.annotations?.["dev.layerpack.subject"] === undefined);
  // Artifacts (SBOMs) stay while their image does: one of these platforms', or another image's still named.
  const live = new Set([...platformManifests, ...images.map((m) => m.digest)]);
  const artifacts = current.manifests.filter((m) => {
    const subject = m?.annotations?.["dev.layerpack.subject"];
    return subject !== undefined && live.has(subject) && (!platformManifests.has(subject) || made.artifacts.has(m.digest));
  });
  const kept = [...images, ...artifacts];
  const entries = repoTags.map((tag) => ({ mediaType: OCI_MEDIA_TYPES.index, digest, size: index.length, annotations: { "io.containerd.image.name": qualifiedName(tag), "org.opencontainers.image.ref.name": tag } }));
  const temp = tempPathFor(file);
  fs.writeFileSync(temp, canonicalJson({ ...current, manifests: [...kept, ...entries] }));
  fs.renameSync(temp, file);
}

async function tagRegistry(input: PlatformsInput, index: Buffer, tags: readonly string[]): Promise<string[]> {
  const { tag: _tag, ...ref } = parseReference(input.spec.output.ref!);
  const client = outputClient(input.spec.output, { env: input.env, signal: input.signal });
  const references: string[] = [];
  for (const tag of tags) {
    const res = await client.request("PUT", client.repoUrl(`manifests/${tag}`), { headers: { "content-type": OCI_MEDIA_TYPES.index }, body: () => ({ body: new Uint8Array(index), length: index.length }), expect: [201, 200] });
    await res.body?.cancel();
    const answered = res.headers.get("docker-content-digest");
    if (answered && answered !== sha256Digest(index)) throw new BuildError(`registry ${ref.registry} stored the index of ${formatReference({ ...ref, tag })} as ${answered.slice(0, 80)}, not ${sha256Digest(index)}`);
    references.push(formatReference({ ...ref, tag }));
  }
  return references;
}

/** Builds every platform's image, then tags the index of them; the result describes the index. */
export async function buildPlatforms(given: PlatformsInput): Promise<BuildResult> {
  const input = { ...given, env: registryEnv(given.spec, given.env ?? process.env) };
  await checkRegistryReachable(input.spec, input.env, input.signal);
  const format = input.spec.output.format;
  if (format === "docker-archive") throw new BuildError("platforms: a docker archive holds one image; use oci-layout, oci-archive or registry");
  // An archive is the layout made in a temporary directory beside it, then archived.
  const archive = format === "oci-archive" ? path.resolve(input.spec.output.path!) : undefined;
  const output = archive ? { format: "oci-layout" as const, path: path.join(path.dirname(archive), tempName(".layerpack-platforms")) } : input.spec.output;
  try {
    return await buildInto(input, output, archive);
  } finally {
    if (archive) fs.rmSync(output.path!, { recursive: true, force: true });
  }
}

async function buildInto(input: PlatformsInput, output: PlatformsInput["spec"]["output"], archive: string | undefined): Promise<BuildResult> {
  const format = output.format;
  const results: { result: BuildResult; build: PlatformBuild }[] = [];
  for (const build of input.platforms) {
    const { platforms: _all, ...rest } = input;
    results.push({ result: await buildImage({ ...rest, spec: { ...build.spec, output }, closure: build.closure, plan: build.plan, untagged: true }), build });
  }
  const first = results[0]!.result;
  const index = indexBytes(results, first.image.annotations);
  const digest = sha256Digest(index);
  const repoTags = imageRepoTags(input.spec, results[0]!.build.plan);
  const tags = format === "registry" && parseReference(input.spec.output.ref!).tag !== undefined ? [parseReference(input.spec.output.ref!).tag!] : repoTags.map((t) => t.slice(t.lastIndexOf(":") + 1));
  let references: string[] = [];
  if (format === "oci-layout") tagLayout(first.output, { index, repoTags, artifacts: new Set(results.flatMap((r) => r.result.artifacts ?? [])) });
  else references = await tagRegistry(input, index, tags);
  if (archive) await archiveLayout(first.output, archive, epochSeconds(results[0]!.build.spec.created ?? "1970-01-01T00:00:01Z"));
  const seen = new Set<string>();
  const layers = results.flatMap((r) => r.result.layers).filter((l) => !seen.has(l.digest) && seen.add(l.digest));
  const sum = (k: "rebuilt" | "reused" | "bytesWritten" | "remote" | "tarBytes") => results.reduce((n, r) => n + r.result.stats[k], 0);
  const pushes = results.map((r) => r.result.push).filter((p) => p !== undefined);
  const total = (k: "uploaded" | "uploadedBytes" | "mounted" | "existing") => pushes.reduce((n, p) => n + p[k], 0);
  const warnings = results.flatMap((r) => r.result.warnings ?? []);
  return {
    output: archive ?? first.output,
    imageId: digest,
    repoTag: repoTags[0]!,
    repoTags,
    layers,
    stats: { rebuilt: sum("rebuilt"), reused: sum("reused"), bytesWritten: sum("bytesWritten"), remote: sum("remote"), tarBytes: sum("tarBytes"), upToDate: results.every((r) => r.result.stats.upToDate) },
    ...(format === "registry" ? { push: { digest, references, uploaded: total("uploaded"), uploadedBytes: total("uploadedBytes"), mounted: total("mounted"), existing: total("existing") } } : {}),
    image: first.image,
    platforms: results.map((r) => ({ platform: specPlatform(r.build.spec), imageId: r.result.imageId, layers: r.result.layers })),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

/** A build of what loadResolvePlan gave: with platforms, every platform's image and their index. */
export async function buildResolved(input: BuildInput, platforms: PlatformBuild[] | undefined): Promise<BuildResult> {
  const { closure: _c, plan: _p, ...rest } = input;
  try {
    return await (platforms ? buildPlatforms({ ...rest, platforms }) : buildImage(input));
  } catch (e) {
    // A failure about a key (the entrypoint not in the image) is given at its file:line:column.
    throw input.config ? locateConfigError(input.config, e) : e;
  }
}
