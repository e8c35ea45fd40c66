/**
 * `sbom:` — SBOM documents of the image's closure (src/sbom/), written where each output can carry them: beside a
 * docker archive as files (`<output>.spdx.json`, `<output>.cdx.json`), into an OCI layout or archive as artifacts
 * listed in its index with the image as `subject`, and pushed to a registry as referrers of the image manifest.
 * The documents' root is the image by its manifest digest, the same for every output of one build.
 */
import * as fs from "node:fs";
import type { BuiltImage } from "../oci/types.ts";
import { artifactManifest } from "../oci/artifact.ts";
import { cyclonedxDocument, sbomBytes, spdxDocument, SBOM_MEDIA_TYPES, type SbomInput } from "../sbom/index.ts";
import { sha256Digest } from "../util/digest.ts";
import { readUserBytes } from "../util/read-file.ts";
import { layerpackVersion } from "../util/version.ts";
import { writeAtomically } from "./atomic.ts";
import type { Prepared } from "./jobs.ts";
import { ociManifest, type ImageArtifact } from "./oci-layout.ts";

export type SbomFormat = keyof typeof SBOM_MEDIA_TYPES;

export interface SbomDocument {
  format: SbomFormat;
  mediaType: string;
  /** File name suffix beside a docker archive. */
  suffix: string;
  data: Buffer;
}

const SUFFIX: Record<SbomFormat, string> = { spdx: ".spdx.json", cyclonedx: ".cdx.json" };

export const sbomFormats = (spec: Prepared["spec"]): SbomFormat[] => (spec.sbom === undefined ? [] : Array.isArray(spec.sbom) ? [...new Set(spec.sbom)] : [spec.sbom]);

/** The SBOMs the config asks for, of this build's closure, rooted at the image. */
export function sbomDocuments(p: Prepared, image: BuiltImage & { repoTag: string }): SbomDocument[] {
  const formats = sbomFormats(p.spec);
  if (formats.length === 0) return [];
  const input: SbomInput = {
    items: p.closure.items.map((it) => {
      const hash = it.narHash ?? p.nar[it.path]?.hash;
      return { path: it.path, narSize: it.narSize, references: it.references, ...(hash ? { narHash: hash } : {}) };
    }),
    roots: p.closure.roots,
    image: { name: p.spec.output.format === "registry" ? p.output : image.repoTag, digest: sha256Digest(ociManifest(image)) },
    created: p.created,
    toolVersion: layerpackVersion(),
  };
  return formats.map((format) => {
    const doc = format === "spdx" ? spdxDocument(input) : cyclonedxDocument(input);
    return { format, mediaType: SBOM_MEDIA_TYPES[format], suffix: SUFFIX[format], data: sbomBytes(doc) };
  });
}

/** Each document as an artifact whose subject is the image manifest. */
export function sbomArtifacts(docs: readonly SbomDocument[], image: BuiltImage): ImageArtifact[] {
  const manifest = ociManifest(image);
  const subject = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256Digest(manifest), size: manifest.length };
  return docs.map((d) => {
    const m = artifactManifest({ subject, blob: { mediaType: d.mediaType, digest: sha256Digest(d.data), size: d.data.length } });
    return { artifactType: m.artifactType, manifest: Buffer.from(JSON.stringify(m)), blobs: [Buffer.from("{}"), d.data] };
  });
}

/** The SBOM files a docker archive at `output` gets beside it. */
export const sbomFilePaths = (output: string, spec: Prepared["spec"]): string[] => sbomFormats(spec).map((f) => `${output}${SUFFIX[f]}`);

/** Beside a docker archive: `<output>.spdx.json` and/or `<output>.cdx.json`, each written atomically. */
export async function writeSbomFiles(output: string, docs: readonly SbomDocument[]): Promise<string[]> {
  const written: string[] = [];
  for (const d of docs) {
    const file = `${output}${d.suffix}`;
    let same = false;
    try {
      // Checked as a regular file before the build (jobs.ts); read so that what replaced it since cannot block.
      same = readUserBytes(file, d.data.length).equals(d.data);
    } catch {
      same = false;
    }
    if (!same) await writeAtomically(file, async (temp) => fs.writeFileSync(temp, d.data, { mode: 0o644 }));
    written.push(file);
  }
  return written;
}
