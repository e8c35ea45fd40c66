/**
 * CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/) of an image's store closure: the image as
 * metadata.component (type container), one component per store item, and the reference graph as dependencies.
 *
 * Items are `library` components: a store item is a package output that other items and the image load or run,
 * and nothing in a closure tells an application from a library (syft and sbomnix make the same choice). Their
 * bom-ref is the store path, unique by construction; properties use the `nix:` names sbomnix writes
 * (`nix:out_path`), so tools reading those find them, plus `nix:nar_size` and `nix:output`. No purl, for the
 * reason spdx.ts gives.
 */
import { imagePurl, normaliseInput, uuidV5, type NormalItem, type SbomInput } from "./input.ts";

export interface CdxHash {
  alg: "SHA-256" | "SHA-512";
  content: string;
}

export interface CdxComponent {
  type: "container" | "library" | "application";
  "bom-ref"?: string;
  name: string;
  version?: string;
  hashes?: CdxHash[];
  purl?: string;
  properties?: { name: string; value: string }[];
}

export interface CdxDependency {
  ref: string;
  dependsOn: string[];
}

export interface CycloneDxBom {
  $schema: string;
  bomFormat: "CycloneDX";
  specVersion: "1.6";
  serialNumber: string;
  version: 1;
  metadata: { timestamp: string; tools: { components: CdxComponent[] }; component: CdxComponent };
  components: CdxComponent[];
  dependencies: CdxDependency[];
}

function itemComponent(it: NormalItem): CdxComponent {
  return {
    type: "library",
    "bom-ref": it.path,
    name: it.name,
    ...(it.version !== undefined ? { version: it.version } : {}),
    ...(it.sha256 !== undefined ? { hashes: [{ alg: "SHA-256" as const, content: it.sha256 }] } : {}),
    properties: [
      { name: "nix:out_path", value: it.path },
      { name: "nix:nar_size", value: String(it.narSize) },
      ...(it.output !== undefined ? [{ name: "nix:output", value: it.output }] : []),
    ],
  };
}

/** The CycloneDX 1.6 BOM; pure: equal inputs (in any item order) give equal documents. */
export function cyclonedxDocument(input: SbomInput): CycloneDxBom {
  const n = normaliseInput(input);
  const purl = imagePurl(n.image);
  const alg = n.image.algorithm === "sha256" ? "SHA-256" : n.image.algorithm === "sha512" ? "SHA-512" : undefined;
  const image: CdxComponent = {
    type: "container",
    "bom-ref": n.image.digest,
    name: n.image.name,
    version: n.image.digest,
    ...(alg !== undefined ? { hashes: [{ alg, content: n.image.hex }] } : {}),
    ...(purl !== undefined ? { purl } : {}),
  };
  return {
    $schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    // Name-based, from the same string as the SPDX namespace: one image, one serial number, no randomness.
    serialNumber: `urn:uuid:${uuidV5(n.namespace)}`,
    version: 1,
    metadata: {
      timestamp: n.created,
      tools: { components: [{ type: "application", name: "layerpack", version: n.toolVersion }] },
      component: image,
    },
    components: n.items.map(itemComponent),
    // Every item gets an entry, an empty dependsOn saying "depends on nothing" rather than "unknown".
    dependencies: [
      { ref: n.image.digest, dependsOn: n.roots },
      ...n.items.map((it) => ({ ref: it.path, dependsOn: it.references })),
    ],
  };
}
