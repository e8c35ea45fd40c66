import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OCI_EMPTY_DESCRIPTOR, SBOM_MEDIA_TYPES, cyclonedxDocument, referrersTag, artifactManifest, sbomBytes } from "../../src/sbom/index.ts";
import { IMAGE_DIGEST, nixInput } from "./fixtures.ts";

const digestOf = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("the SBOM as an OCI artifact", () => {
  it("the empty descriptor is the digest and size of {}", () => {
    expect(OCI_EMPTY_DESCRIPTOR).toEqual({ mediaType: "application/vnd.oci.empty.v1+json", digest: digestOf("{}"), size: 2 });
  });

  it("is an image manifest with artifactType, the empty config, the SBOM as its layer and the image as subject", () => {
    const blob = sbomBytes(cyclonedxDocument(nixInput()));
    const subject = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: IMAGE_DIGEST, size: 1234 };
    const sbom = { mediaType: SBOM_MEDIA_TYPES.cyclonedx, digest: digestOf(blob), size: blob.length };
    const manifest = artifactManifest({ subject, blob: sbom, annotations: { "z.key": "1", "org.opencontainers.image.created": "1970-01-01T00:00:00Z" } });
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.cyclonedx+json",
      config: OCI_EMPTY_DESCRIPTOR,
      layers: [sbom],
      subject,
      annotations: { "org.opencontainers.image.created": "1970-01-01T00:00:00Z", "z.key": "1" },
    });
    expect(Object.keys(manifest.annotations!)).toEqual(["org.opencontainers.image.created", "z.key"]);
    // Annotations in any order give the same bytes.
    const reordered = { "org.opencontainers.image.created": "1970-01-01T00:00:00Z", "z.key": "1" };
    expect(sbomBytes(manifest).equals(sbomBytes(artifactManifest({ subject, blob: sbom, annotations: reordered })))).toBe(true);
  });

  it("takes artifactType from the SBOM media type without parameters, keeps layer annotations, omits empty annotations", () => {
    const subject = { mediaType: "application/vnd.oci.image.index.v1+json", digest: IMAGE_DIGEST, size: 500 };
    const sbom = { mediaType: "application/spdx+json; charset=utf-8", digest: IMAGE_DIGEST, size: 10, annotations: { "org.opencontainers.image.title": "sbom.spdx.json" } };
    const m = artifactManifest({ subject, blob: sbom, annotations: {} });
    expect(m.artifactType).toBe(SBOM_MEDIA_TYPES.spdx);
    expect(m.layers[0]!.annotations).toEqual({ "org.opencontainers.image.title": "sbom.spdx.json" });
    expect("annotations" in m).toBe(false);
    expect(artifactManifest({ subject, blob: sbom, artifactType: "application/vnd.example.sbom" }).artifactType).toBe("application/vnd.example.sbom");
    expect(() => artifactManifest({ subject, blob: sbom, artifactType: "sbom" })).toThrow(/not a media type/);
    expect(() => artifactManifest({ subject: { ...subject, digest: "nope" }, blob: sbom })).toThrow(/bad digest/);
  });
});

describe("referrersTag (distribution-spec referrers tag schema)", () => {
  it.each([
    [`sha256:${"a".repeat(64)}`, `sha256-${"a".repeat(64)}`],
    [`sha512:${"a".repeat(128)}`, `sha512-${"a".repeat(64)}`],
    // The spec's own example of truncation and replacement.
    [
      "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation",
      "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot",
    ],
  ])("%s", (digest, tag) => {
    expect(referrersTag(digest)).toBe(tag);
    expect(tag).toMatch(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
  });

  it("refuses a non-digest", () => {
    expect(() => referrersTag("latest")).toThrow(/not a digest/);
  });
});
