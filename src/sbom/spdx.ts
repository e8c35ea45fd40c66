/**
 * SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/) of an image's store closure: the image as the described
 * CONTAINER package, one package per store item (CONTAINS from the image), DEPENDS_ON for every reference.
 *
 * Items get no purl: package-url has no registered `nix` or `guix` type yet (purl-spec issue 149, PR 877 still
 * open), and the proposed one names nixpkgs attribute paths, which a store path does not carry. The store path
 * goes into `packageFileName` ("the path of the directory treated as a package") and the comment instead.
 */
import { imagePurl, itemId, normaliseInput, type NormalItem, type SbomInput } from "./input.ts";

export interface SpdxChecksum {
  algorithm: "SHA256" | "SHA512";
  checksumValue: string;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  packageFileName?: string;
  downloadLocation: "NOASSERTION";
  filesAnalyzed: false;
  primaryPackagePurpose?: "CONTAINER";
  checksums?: SpdxChecksum[];
  externalRefs?: { referenceCategory: "PACKAGE-MANAGER"; referenceType: "purl"; referenceLocator: string }[];
  comment: string;
}

export interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: "DESCRIBES" | "CONTAINS" | "DEPENDS_ON";
  relatedSpdxElement: string;
}

export interface SpdxDocument {
  spdxVersion: "SPDX-2.3";
  dataLicense: "CC0-1.0";
  SPDXID: "SPDXRef-DOCUMENT";
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  comment: string;
  packages: SpdxPackage[];
  relationships: SpdxRelationship[];
}

export const SPDX_IMAGE_ID = "SPDXRef-Image";

/** SPDXID of a store item: from the store path's hash part, which is unique and made of nix32 letters and digits. */
export const spdxItemId = (storePath: string): string => `SPDXRef-Item-${itemId(storePath)}`;

function itemPackage(it: NormalItem): SpdxPackage {
  const output = it.output !== undefined ? ` (output ${it.output})` : "";
  const hash = it.sha256 !== undefined ? "; the checksum is the SHA-256 of its NAR serialisation" : "";
  return {
    SPDXID: spdxItemId(it.path),
    name: it.name,
    ...(it.version !== undefined ? { versionInfo: it.version } : {}),
    packageFileName: it.path,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    ...(it.sha256 !== undefined ? { checksums: [{ algorithm: "SHA256" as const, checksumValue: it.sha256 }] } : {}),
    comment: `Store item ${it.path}${output}, NAR size ${it.narSize} bytes${hash}.`,
  };
}

/** The SPDX 2.3 document; pure: equal inputs (in any item order) give equal documents. */
export function spdxDocument(input: SbomInput): SpdxDocument {
  const n = normaliseInput(input);
  const purl = imagePurl(n.image);
  const checksum: SpdxChecksum[] =
    n.image.algorithm === "sha256" || n.image.algorithm === "sha512"
      ? [{ algorithm: n.image.algorithm === "sha256" ? "SHA256" : "SHA512", checksumValue: n.image.hex }]
      : [];
  const image: SpdxPackage = {
    SPDXID: SPDX_IMAGE_ID,
    name: n.image.name,
    versionInfo: n.image.digest,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    primaryPackagePurpose: "CONTAINER",
    ...(checksum.length > 0 ? { checksums: checksum } : {}),
    ...(purl !== undefined ? { externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl }] } : {}),
    comment: `Container image ${n.image.digest}: its layers hold the ${n.items.length} store items of its closure.`,
  };
  const idOf = new Map(n.items.map((it) => [it.path, spdxItemId(it.path)]));
  const relationships: SpdxRelationship[] = [
    { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: SPDX_IMAGE_ID },
    ...n.items.map((it) => ({ spdxElementId: SPDX_IMAGE_ID, relationshipType: "CONTAINS" as const, relatedSpdxElement: idOf.get(it.path)! })),
    ...n.items.flatMap((it) =>
      it.references.map((r) => ({ spdxElementId: idOf.get(it.path)!, relationshipType: "DEPENDS_ON" as const, relatedSpdxElement: idOf.get(r)! })),
    ),
  ];
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: n.image.name,
    documentNamespace: n.namespace,
    creationInfo: { created: n.created, creators: [`Tool: layerpack-${n.toolVersion}`] },
    comment: `Store closure of the image ${n.image.name} (${n.image.digest}), made by layerpack.`,
    packages: [image, ...n.items.map(itemPackage)],
    relationships,
  };
}
