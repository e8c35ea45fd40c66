import { describe, expect, it } from "vitest";
import {
  cyclonedxDocument,
  imagePurl,
  sbomBytes,
  sbomTimestamp,
  spdxDocument,
  spdxItemId,
  uuidV5,
  type SbomInput,
} from "../../src/sbom/index.ts";
import { hashPart } from "../../src/store/path.ts";
import { IMAGE_DIGEST, guix, guixItems, nix, nixHex, nixInput, nixItems } from "./fixtures.ts";

/** A deterministic shuffle (the order of items and of their references must not matter). */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const both = [
  ["spdx", (i: SbomInput) => sbomBytes(spdxDocument(i))],
  ["cyclonedx", (i: SbomInput) => sbomBytes(cyclonedxDocument(i))],
] as const;

describe.each(both)("%s: deterministic bytes", (_, bytes) => {
  it("is the same for the same input, and for items and references in any order", () => {
    const a = bytes(nixInput());
    expect(bytes(nixInput()).equals(a)).toBe(true);
    for (const seed of [1, 2, 3]) {
      const items = shuffled(nixItems, seed).map((it) => ({ ...it, references: shuffled(it.references, seed + 7) }));
      expect(bytes(nixInput({ items })).equals(a)).toBe(true);
    }
  });

  it("is 2-space JSON with sorted keys and a trailing newline, and depends on the input", () => {
    const text = bytes(nixInput()).toString("utf8");
    expect(text.endsWith("}\n")).toBe(true);
    expect(text).toMatch(/^\{\n {2}"/);
    const keys = Object.keys(JSON.parse(text) as object);
    expect(keys).toEqual([...keys].sort());
    expect(bytes(nixInput({ created: "2024-05-01T12:00:00Z" })).equals(bytes(nixInput()))).toBe(false);
    expect(bytes(nixInput({ items: nixItems.slice(0, 3), roots: undefined })).equals(bytes(nixInput()))).toBe(false);
  });
});

describe("SPDX document", () => {
  const doc = spdxDocument(nixInput());

  it("has the document fields, a namespace derived from the image, and the epoch as default creation time", () => {
    expect(doc).toMatchObject({
      spdxVersion: "SPDX-2.3",
      dataLicense: "CC0-1.0",
      SPDXID: "SPDXRef-DOCUMENT",
      name: "registry.example:5000/team/app:1.2",
      documentNamespace: `https://layerpack.dev/spdx/registry.example-5000-team-app-1.2-${IMAGE_DIGEST.slice(7)}`,
      creationInfo: { created: "1970-01-01T00:00:00Z", creators: ["Tool: layerpack-0.1.0"] },
    });
    expect(spdxDocument(nixInput({ namespaceBase: "https://sbom.example/ns/" })).documentNamespace).toMatch(/^https:\/\/sbom\.example\/ns\/registry/);
  });

  it("describes the image as a CONTAINER package with the digest as version and checksum", () => {
    expect(doc.packages[0]).toMatchObject({
      SPDXID: "SPDXRef-Image",
      primaryPackagePurpose: "CONTAINER",
      versionInfo: IMAGE_DIGEST,
      checksums: [{ algorithm: "SHA256", checksumValue: IMAGE_DIGEST.slice(7) }],
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: imagePurl(nixInput().image) }],
    });
  });

  it("has one package per item, by path, with name, version, store path and the NAR hash in hex", () => {
    const items = doc.packages.slice(1);
    expect(items.map((p) => p.packageFileName)).toEqual(nixItems.map((it) => it.path).sort());
    for (const p of items) {
      const path = p.packageFileName!;
      expect(p.SPDXID).toBe(`SPDXRef-Item-${hashPart(path)}`);
      expect(p.checksums).toEqual(nixHex[path] === undefined ? undefined : [{ algorithm: "SHA256", checksumValue: nixHex[path] }]);
      expect(p.comment).toContain(path);
      expect(p).toMatchObject({ downloadLocation: "NOASSERTION", filesAnalyzed: false });
    }
    const bin = items.find((p) => p.packageFileName === nix.opensslBin)!;
    expect(bin).toMatchObject({ name: "openssl", versionInfo: "3.0.13" });
    expect(bin.comment).toBe(`Store item ${nix.opensslBin} (output bin), NAR size 1000000 bytes; the checksum is the SHA-256 of its NAR serialisation.`);
    const profile = items.find((p) => p.packageFileName === nix.profile)!;
    expect(profile.name).toBe("profile");
    expect("versionInfo" in profile).toBe(false);
  });

  it("relates DESCRIBES, CONTAINS every item, and DEPENDS_ON exactly the references without self references", () => {
    const rel = (type: string) => doc.relationships.filter((r) => r.relationshipType === type).map((r) => [r.spdxElementId, r.relatedSpdxElement]);
    expect(rel("DESCRIBES")).toEqual([["SPDXRef-DOCUMENT", "SPDXRef-Image"]]);
    expect(rel("CONTAINS")).toEqual(nixItems.map((it) => it.path).sort().map((p) => ["SPDXRef-Image", spdxItemId(p)]));
    const expected = nixItems
      .flatMap((it) => it.references.filter((r) => r !== it.path).map((r) => [spdxItemId(it.path), spdxItemId(r)]))
      .sort((a, b) => (a.join() < b.join() ? -1 : 1));
    const actual = rel("DEPENDS_ON");
    expect([...actual].sort((a, b) => (a.join() < b.join() ? -1 : 1))).toEqual(expected);
    expect(doc.relationships).toHaveLength(1 + nixItems.length + expected.length);
  });
});

describe("CycloneDX BOM", () => {
  const bom = cyclonedxDocument(nixInput({ created: "2024-05-01T12:34:56.789+02:00" }));

  it("has a name-based serial number, the tool and the image as metadata", () => {
    expect(bom).toMatchObject({ bomFormat: "CycloneDX", specVersion: "1.6", version: 1 });
    expect(bom.serialNumber).toBe(`urn:uuid:${uuidV5(spdxDocument(nixInput()).documentNamespace)}`);
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(bom.metadata.timestamp).toBe("2024-05-01T10:34:56Z");
    expect(bom.metadata.tools).toEqual({ components: [{ type: "application", name: "layerpack", version: "0.1.0" }] });
    expect(bom.metadata.component).toMatchObject({
      type: "container",
      "bom-ref": IMAGE_DIGEST,
      name: "registry.example:5000/team/app:1.2",
      hashes: [{ alg: "SHA-256", content: IMAGE_DIGEST.slice(7) }],
      purl: `pkg:oci/app@sha256%3A${IMAGE_DIGEST.slice(7)}?repository_url=registry.example%3A5000/team/app&tag=1.2`,
    });
  });

  it("has one library component per item with its hash, store path and NAR size", () => {
    expect(bom.components.map((c) => c["bom-ref"])).toEqual(nixItems.map((it) => it.path).sort());
    for (const c of bom.components) {
      const item = nixItems.find((it) => it.path === c["bom-ref"])!;
      expect(c.type).toBe("library");
      expect(c.hashes).toEqual(nixHex[item.path] === undefined ? undefined : [{ alg: "SHA-256", content: nixHex[item.path] }]);
      expect(c.properties).toContainEqual({ name: "nix:out_path", value: item.path });
      expect(c.properties).toContainEqual({ name: "nix:nar_size", value: String(item.narSize) });
    }
    expect(bom.components.find((c) => c["bom-ref"] === nix.gccLib)).toMatchObject({
      name: "gcc",
      version: "13.2.0",
      properties: [{ name: "nix:out_path", value: nix.gccLib }, { name: "nix:nar_size", value: "8000000" }, { name: "nix:output", value: "lib" }],
    });
  });

  it("has the image depend on the roots and every item on its references", () => {
    expect(bom.dependencies[0]).toEqual({ ref: IMAGE_DIGEST, dependsOn: [nix.profile] });
    const deps = Object.fromEntries(bom.dependencies.slice(1).map((d) => [d.ref, d.dependsOn]));
    expect(Object.keys(deps).sort()).toEqual(nixItems.map((it) => it.path).sort());
    for (const it of nixItems) expect(deps[it.path]).toEqual(it.references.filter((r) => r !== it.path).sort());
    expect(deps[nix.glibc]).toEqual([]);
  });

  it("takes the roots from the graph when none are given", () => {
    const guixBom = cyclonedxDocument({ items: guixItems, image: { name: "guix-app", digest: IMAGE_DIGEST }, toolVersion: "0.1.0" });
    expect(guixBom.dependencies[0]).toEqual({ ref: IMAGE_DIGEST, dependsOn: [guix.profile] });
    const expected: [string, string, string | undefined][] = [
      [guix.glibc, "glibc", "2.35"],
      [guix.gccLib, "gcc", "11.3.0"],
      [guix.guile, "guile", "3.0.9"],
      [guix.profile, "profile", undefined],
    ];
    expected.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(guixBom.components.map((c) => [c["bom-ref"], c.name, c.version])).toEqual(expected);
  });
});

describe("helpers", () => {
  it("uuidV5 is RFC 9562's version 5", () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") and uuid.uuid5(uuid.NAMESPACE_URL, "https://layerpack.dev/x").
    expect(uuidV5("python.org", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")).toBe("886313e1-3b8a-5372-9b90-0c9aee199e5d");
    expect(uuidV5("https://layerpack.dev/x")).toBe("42b547fc-c8fa-5ae7-8693-a6f84d608431");
  });

  it("sbomTimestamp reads SOURCE_DATE_EPOCH, defaulting to the epoch", () => {
    expect(sbomTimestamp(undefined)).toBe("1970-01-01T00:00:00Z");
    expect(sbomTimestamp("")).toBe("1970-01-01T00:00:00Z");
    expect(sbomTimestamp("1700000000")).toBe("2023-11-14T22:13:20Z");
    expect(sbomTimestamp(0)).toBe("1970-01-01T00:00:00Z");
    expect(() => sbomTimestamp("yesterday")).toThrow(/SOURCE_DATE_EPOCH/);
  });

  it("imagePurl gives pkg:oci for registry references only", () => {
    const d = IMAGE_DIGEST;
    const enc = d.replace(":", "%3A");
    expect(imagePurl({ name: "app", digest: d })).toBe(`pkg:oci/app@${enc}`);
    expect(imagePurl({ name: "app:1", digest: d })).toBe(`pkg:oci/app@${enc}?tag=1`);
    expect(imagePurl({ name: "docker://ghcr.io/Org/App:v2", digest: d })).toBe(`pkg:oci/app@${enc}?repository_url=ghcr.io/org/app&tag=v2`);
    expect(imagePurl({ name: "oci:/tmp/layout:app", digest: d })).toBeUndefined();
    expect(imagePurl({ name: "docker-archive:out.tar", digest: d })).toBeUndefined();
    expect(imagePurl({ name: "./out/app.tar", digest: d })).toBeUndefined();
  });
});

describe("bad input", () => {
  const bad = (over: Partial<SbomInput>) => () => spdxDocument(nixInput(over));
  it("is refused with a message naming the problem", () => {
    expect(bad({ items: [...nixItems, nixItems[0]!] })).toThrow(/listed twice/);
    expect(bad({ items: nixItems.slice(1) })).toThrow(/refers to .*glibc-2\.39-52, which is not in the closure/);
    expect(bad({ roots: ["/nix/store/x"] })).toThrow(/root \/nix\/store\/x is not in the closure/);
    expect(bad({ items: [{ ...nixItems[0]!, narHash: "md5:abc" }, ...nixItems.slice(1)] })).toThrow(/unreadable NAR hash/);
    expect(bad({ image: { name: "app", digest: "sha256:abc" } })).toThrow(/64 lowercase hex/);
    expect(bad({ image: { name: "app", digest: "latest" } })).toThrow(/not <algorithm>:<encoded>/);
    expect(bad({ created: "May 1st" })).toThrow(/ISO 8601/);
  });
});
