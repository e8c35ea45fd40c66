/** SBOMs of an image's store closure (SPDX 2.3 and CycloneDX 1.6 JSON) and the OCI artifact that attaches one. */
export { spdxDocument, spdxItemId, SPDX_IMAGE_ID, type SpdxDocument, type SpdxPackage, type SpdxRelationship } from "./spdx.ts";
export { cyclonedxDocument, type CycloneDxBom, type CdxComponent, type CdxDependency } from "./cyclonedx.ts";
export { sbomBytes, sbomTimestamp, uuidV5, imagePurl, itemId, EPOCH, type SbomInput, type SbomItem, type SbomImage } from "./input.ts";
export { parseStoreName, parseDrvName, storeName, KNOWN_OUTPUTS, type ParsedStoreName } from "./names.ts";
export { artifactManifest, referrersTag, SBOM_MEDIA_TYPES, OCI_EMPTY_DESCRIPTOR, type ArtifactManifest, type ArtifactInput } from "../oci/artifact.ts";
