/**
 * Both documents against the formats' published JSON Schemas (ajv), plus what the schemas leave unchecked; and a
 * real `nix path-info --json -r` closure: every item in both documents with its NAR hash, every reference related.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { describe, expect, it } from "vitest";
import { cyclonedxDocument, sbomBytes, spdxDocument, type SbomInput, type SpdxDocument } from "../../src/sbom/index.ts";
import { IMAGE_DIGEST, REAL_CLOSURES, guixItems, nixInput, readPathInfo } from "./fixtures.ts";
import { SPDX_SCHEMA_FILE, SPDX_SCHEMA_SHA256, cyclonedxValidator, errorsOf, spdxValidator } from "./validate.ts";

const validateSpdx = spdxValidator();
const validateCdx = cyclonedxValidator();
const cdxStrict = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
const parsed = (doc: unknown): unknown => JSON.parse(sbomBytes(doc).toString("utf8"));

/** SPDX 2.3 rules the JSON Schema does not encode (clauses 6.2, 6.5, 6.9, 7.2, 7.10, 11). */
function spdxRuleErrors(doc: SpdxDocument): string[] {
  const errors: string[] = [];
  const ids = new Set<string>(["SPDXRef-DOCUMENT"]);
  for (const p of doc.packages) {
    if (!/^SPDXRef-[A-Za-z0-9.-]+$/.test(p.SPDXID)) errors.push(`bad SPDXID ${p.SPDXID}`);
    if (ids.has(p.SPDXID)) errors.push(`duplicate SPDXID ${p.SPDXID}`);
    ids.add(p.SPDXID);
    for (const c of p.checksums ?? []) if (!/^[a-f0-9]{64}$/.test(c.checksumValue)) errors.push(`bad checksum ${c.checksumValue}`);
  }
  for (const r of doc.relationships) {
    if (!ids.has(r.spdxElementId) || !ids.has(r.relatedSpdxElement)) errors.push(`dangling relationship ${JSON.stringify(r)}`);
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(doc.creationInfo.created)) errors.push(`bad created ${doc.creationInfo.created}`);
  if (!URL.canParse(doc.documentNamespace) || doc.documentNamespace.includes("#")) errors.push(`bad namespace ${doc.documentNamespace}`);
  if (!doc.creationInfo.creators.every((c) => /^(Tool|Organization|Person): \S/.test(c))) errors.push("bad creators");
  return errors;
}

function pathInfoInput(name: string): SbomInput {
  return { items: readPathInfo(name), image: { name: `example/${name}:1`, digest: IMAGE_DIGEST }, toolVersion: "0.1.0" };
}

describe("the published schemas", () => {
  it("the SPDX 2.3 schema is the unmodified upstream file", () => {
    expect(createHash("sha256").update(fs.readFileSync(SPDX_SCHEMA_FILE)).digest("hex")).toBe(SPDX_SCHEMA_SHA256);
  });

  it("reject documents that break them (the validators are live)", async () => {
    const spdx = parsed(spdxDocument(nixInput())) as { packages: Record<string, unknown>[] };
    delete spdx.packages[1]!.downloadLocation;
    expect(errorsOf(validateSpdx, spdx).join()).toMatch(/downloadLocation/);
    const cdx = parsed(cyclonedxDocument(nixInput())) as { components: { hashes?: { alg: string }[] }[] };
    cdx.components.find((c) => c.hashes !== undefined)!.hashes![0]!.alg = "SHA256";
    expect(errorsOf(validateCdx, cdx).join()).toMatch(/alg/);
    expect(await cdxStrict.validate(JSON.stringify(cdx))).not.toBeNull();
  });

  const inputs: [string, () => SbomInput][] = [
    ["a Nix closure", () => nixInput()],
    ["a Guix closure with a file-path image name and a created time", () => ({
      items: guixItems,
      image: { name: "/tmp/out/app.tar", digest: IMAGE_DIGEST },
      created: "2024-01-02T03:04:05Z",
      toolVersion: "1.0.0-rc.1",
    })],
    ["an empty closure", () => ({ items: [], image: { name: "empty", digest: IMAGE_DIGEST }, toolVersion: "0.1.0" })],
    ...REAL_CLOSURES.map((n): [string, () => SbomInput] => [`the real closure ${n}`, () => pathInfoInput(n)]),
  ];

  it.each(inputs)("SPDX 2.3 is valid for %s", (_, input) => {
    const doc = spdxDocument(input());
    expect(errorsOf(validateSpdx, parsed(doc))).toEqual([]);
    expect(spdxRuleErrors(doc)).toEqual([]);
  });

  it.each(inputs)("CycloneDX 1.6 is valid for %s (ajv, and the CycloneDX library's strict validator)", async (_, input) => {
    const bytes = sbomBytes(cyclonedxDocument(input()));
    expect(errorsOf(validateCdx, JSON.parse(bytes.toString("utf8")))).toEqual([]);
    expect(await cdxStrict.validate(bytes.toString("utf8"))).toBeNull();
  });
});

describe("a real closure (nix path-info --json -r of debian-w2)", () => {
  const info = readPathInfo("debian-w2");
  const spdx = spdxDocument(pathInfoInput("debian-w2"));
  const cdx = cyclonedxDocument(pathInfoInput("debian-w2"));
  // path-info writes SRI (sha256-<base64>); the documents carry lowercase hex.
  const hex = (sri: string) => Buffer.from(sri.slice("sha256-".length), "base64").toString("hex");

  it("lists every item once with its NAR hash in hex", () => {
    expect(info).toHaveLength(196);
    const byPath = new Map(spdx.packages.slice(1).map((p) => [p.packageFileName, p]));
    const components = new Map(cdx.components.map((c) => [c["bom-ref"], c]));
    expect(byPath.size).toBe(info.length);
    expect(components.size).toBe(info.length);
    for (const it of info) {
      expect(byPath.get(it.path)?.checksums).toEqual([{ algorithm: "SHA256", checksumValue: hex(it.narHash) }]);
      expect(components.get(it.path)?.hashes).toEqual([{ alg: "SHA-256", content: hex(it.narHash) }]);
      expect(components.get(it.path)?.properties).toContainEqual({ name: "nix:nar_size", value: String(it.narSize) });
    }
  });

  it("relates exactly the references, self references left out", () => {
    const idToPath = new Map(spdx.packages.slice(1).map((p) => [p.SPDXID, p.packageFileName!]));
    const fromSpdx = spdx.relationships
      .filter((r) => r.relationshipType === "DEPENDS_ON")
      .map((r) => `${idToPath.get(r.spdxElementId)} -> ${idToPath.get(r.relatedSpdxElement)}`);
    const fromCdx = cdx.dependencies.slice(1).flatMap((d) => d.dependsOn.map((r) => `${d.ref} -> ${r}`));
    const expected = info.flatMap((it) => [...new Set(it.references)].filter((r) => r !== it.path).map((r) => `${it.path} -> ${r}`));
    expect(new Set(fromSpdx)).toEqual(new Set(expected));
    expect(fromSpdx).toHaveLength(expected.length);
    expect(new Set(fromCdx)).toEqual(new Set(expected));
    expect(fromCdx).toHaveLength(expected.length);
    // The profile item is the only root: nothing refers to it, and it refers to the packages the closure was made of.
    expect(cdx.dependencies[0]!.dependsOn).toEqual([info.find((it) => it.path.endsWith("-profile"))!.path]);
  });
});
