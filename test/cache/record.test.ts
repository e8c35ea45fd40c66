/** Cache records (cache/record.ts): what a push publishes and a build trusts only after a strict parse. */
import { describe, expect, it } from "vitest";
import { makeRecord, parseRecord, recordBytes } from "../../src/cache/record.ts";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const layer = { digest: D("a"), diffId: D("b"), size: 10, tarSize: 20, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", nar: { "/gnu/store/z-x": { hash: D("c"), size: 5 }, "/gnu/store/a-y": { hash: D("d"), size: 6 } } };

describe("cache records", () => {
  it("are deterministic: same layers, same bytes, whatever the order of their NAR facts", () => {
    const one = recordBytes(makeRecord([{ key: "1".repeat(64), layer }]));
    const two = recordBytes(makeRecord([{ key: "1".repeat(64), layer: { ...layer, nar: Object.fromEntries(Object.entries(layer.nar).reverse()) } }]));
    expect(one.equals(two)).toBe(true);
    expect(parseRecord(one, "x").layers[0]!.key).toBe("1".repeat(64));
  });

  it("leave out base layers (keyed by digest) and hold no file names", () => {
    const r = makeRecord([{ key: "base-abc", layer }, { key: "2".repeat(64), layer: { ...layer, file: "/home/me/.cache/blob" } as typeof layer }]);
    expect(r.layers.map((l) => l.key)).toEqual(["2".repeat(64)]);
    expect(recordBytes(r).toString()).not.toContain("/home/me");
  });

  it("refuse anything but the exact format, naming what is wrong", () => {
    const good = JSON.parse(recordBytes(makeRecord([{ key: "1".repeat(64), layer }])).toString());
    expect(() => parseRecord(Buffer.from("{"), "src")).toThrow(/src: the cache record is not JSON/);
    expect(() => parseRecord(Buffer.from(JSON.stringify({ ...good, version: 2 })), "src")).toThrow(/version: /);
    expect(() => parseRecord(Buffer.from(JSON.stringify({ ...good, extra: 1 })), "src")).toThrow(/not layerpack's version 1 format/);
    const bad = structuredClone(good);
    bad.layers[0].digest = "sha256:../../etc/passwd";
    expect(() => parseRecord(Buffer.from(JSON.stringify(bad)), "src")).toThrow(/layers\.0\.digest/);
    bad.layers[0].digest = D("a");
    bad.layers[0].mediaType = "text/html";
    expect(() => parseRecord(Buffer.from(JSON.stringify(bad)), "src")).toThrow(/mediaType/);
  });
});
