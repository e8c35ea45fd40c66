import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import { readFileChunks } from "../../src/store/nar.ts";
import { hashPart, nix32Encode } from "../../src/store/path.ts";
import { HashScanner, listStoreItems, MentionScanner, scanClosure, scanItem, type ScanMemo, type ScanMemoRecord } from "../../src/store/scan.ts";
import { makeStore } from "../fixtures/store.ts";

const hashOf = (s: string): string => nix32Encode(createHash("sha256").update(s).digest().subarray(0, 20));
const CANDIDATES = ["a", "b", "c", "d"].map(hashOf);

/** Deterministic pseudo-random bytes, biased towards the nix32 alphabet so windows get long. */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  const alpha = Buffer.from("0123456789abcdfghijklmnpqrsvwxyz");
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x % 10 === 0 ? (x >>> 8) & 0xff : alpha[(x >>> 16) % 32]!;
  }
  return out;
}

function naive(buf: Buffer, candidates: string[]): string[] {
  const s = buf.toString("latin1");
  return candidates.filter((c) => s.includes(c)).sort();
}

function scanChunks(chunks: Buffer[], candidates = CANDIDATES): string[] {
  const sc = new HashScanner(candidates);
  for (const c of chunks) sc.write(c);
  return [...sc.found].sort();
}

describe("HashScanner", () => {
  it("finds a hash split across chunks at every position", () => {
    const h = CANDIDATES[1]!;
    const buf = Buffer.concat([Buffer.from("\0\0xyz"), Buffer.from(h), Buffer.from("/bin\0")]);
    for (let cut = 0; cut <= buf.length; cut++) {
      expect(scanChunks([buf.subarray(0, cut), buf.subarray(cut)]), `cut ${cut}`).toEqual([h]);
    }
    // three chunks, including tiny and empty ones
    for (let a = 0; a < buf.length; a += 3) {
      for (let b = a; b < buf.length; b += 5) {
        expect(scanChunks([buf.subarray(0, a), buf.subarray(a, b), Buffer.alloc(0), buf.subarray(b)])).toEqual([h]);
      }
    }
    // one byte at a time
    expect(scanChunks([...buf].map((x) => Buffer.from([x])))).toEqual([h]);
  });

  it("agrees with a naive search on noisy data, in any chunking", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const parts = [noise(5000, seed), Buffer.from(CANDIDATES[seed % 4]!), noise(3000, seed + 100)];
      if (seed % 3 === 0) parts.push(Buffer.from(`x${CANDIDATES[(seed + 1) % 4]}y`));
      const buf = Buffer.concat(parts);
      const want = naive(buf, CANDIDATES);
      expect(want.length).toBeGreaterThan(0);
      for (const size of [1, 7, 31, 32, 33, 64, 4096, buf.length]) {
        const chunks: Buffer[] = [];
        for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
        expect(scanChunks(chunks), `seed ${seed} size ${size}`).toEqual(want);
      }
    }
  });

  it("has no false positives", () => {
    const h = CANDIDATES[0]!;
    const near = [
      h.slice(0, 31), // truncated
      `${h.slice(0, 31)}-`, // truncated then a non-alphabet byte
      `${h.slice(0, 16)}\n${h.slice(16)}`, // interrupted
      h.slice(0, 31) + (h[31] === "0" ? "1" : "0"), // last char differs
      (h[0] === "0" ? "1" : "0") + h.slice(1), // first char differs
      h.toUpperCase(),
    ];
    for (const n of near) expect(scanChunks([Buffer.from(`..${n}..`)]), n).toEqual([]);
    expect(scanChunks([noise(1 << 16, 99)])).toEqual([]);
  });

  it("does not carry bytes from one stream into the next", () => {
    const h = CANDIDATES[2]!;
    const sc = new HashScanner(CANDIDATES);
    sc.write(Buffer.from(h.slice(0, 20)));
    sc.endStream();
    sc.write(Buffer.from(h.slice(20)));
    expect([...sc.found]).toEqual([]);
  });
});

describe("MentionScanner", () => {
  const missing = hashOf("missing");
  const text = `prefix /gnu/store/${missing}-dash/bin/sh and /gnu/store/${CANDIDATES[0]}-known and /gnu/store/not-a-hash-x /gnu/store/${missing}`;
  it("finds store paths of non-candidates split across chunks at every position, not candidates or half paths", () => {
    const buf = Buffer.from(text, "latin1");
    for (let cut = 0; cut <= buf.length; cut++) {
      const m = new MentionScanner("/gnu/store", (h) => CANDIDATES.includes(h));
      m.write(buf.subarray(0, cut));
      m.write(buf.subarray(cut));
      expect([...m.found], `cut at ${cut}`).toEqual([missing]);
    }
    // One byte at a time, and nothing carried from one file into the next.
    const m = new MentionScanner("/gnu/store", () => false);
    for (let i = 0; i < buf.length; i++) m.write(buf.subarray(i, i + 1));
    expect([...m.found].sort()).toEqual([missing, CANDIDATES[0]!].sort());
    const split = new MentionScanner("/gnu/store", () => false);
    split.write(Buffer.from(`/gnu/store/${missing.slice(0, 10)}`));
    split.endStream();
    split.write(Buffer.from(`${missing.slice(10)}-x`));
    expect([...split.found]).toEqual([]);
  });
});

/** A ScanMemo in memory, every item's identity taken to be unchanged. */
function memoryMemo(): ScanMemo & { records: Map<string, ScanMemoRecord> } {
  const records = new Map<string, ScanMemoRecord>();
  return { records, get: (h) => records.get(h), put: (h, r) => void records.set(h, r) };
}

describe("scanning a store", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-scan-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("finds references in contents, names and symlink targets, and self references", () => {
    const big = Buffer.concat([Buffer.alloc((1 << 20) - 10, 0x61), Buffer.from("{{in-content}}")]);
    const s = makeStore(dir, "/gnu/store", [
      { name: "in-content" },
      { name: "in-name" },
      { name: "in-link" },
      { name: "in-big" },
      { name: "unrelated" },
      { name: "single-file", files: "#!{{in-content}}/bin/sh\n" },
      {
        name: "app",
        files: {
          "bin/app": { content: "exec {{in-content}}/bin/x", executable: true },
          "lib/link": { symlink: "{{in-link}}/lib/libx.so" },
          "self-link": { symlink: "{{app}}/bin/app" },
          "share/big": big,
          "share/single": "{{single-file}}",
        },
      },
    ]);
    // a file whose name holds a hash
    fs.writeFileSync(path.join(s.host("app"), `${hashPart(s.path("in-name"))}-marker`), "");
    const big2 = big.toString("latin1").replace("{{in-content}}", s.path("in-big"));
    fs.writeFileSync(path.join(s.host("app"), "share/big"), Buffer.from(big2, "latin1"));
    const items = scanClosure(s.store, [s.path("app")]);
    const app = items.find((i) => i.path === s.path("app"))!;
    expect(app.references).toEqual(["app", "in-big", "in-content", "in-link", "in-name", "single-file"].map(s.path).sort());
    expect(items.map((i) => i.path)).toEqual(["app", "in-big", "in-content", "in-link", "in-name", "single-file"].map(s.path).sort());
    expect(items.find((i) => i.path === s.path("single-file"))!.references).toEqual([s.path("in-content")]);
    expect(items.find((i) => i.path === s.path("in-name"))!.references).toEqual([]);
  });

  it("follows references transitively and counts NAR sizes", () => {
    const s = makeStore(dir, "/gnu/store", [
      { name: "c", files: { f: "leaf" } },
      { name: "b", refs: ["c"] },
      { name: "a", refs: ["b"] },
    ]);
    const items = scanClosure(s.store, [s.path("a")]);
    expect(items.map((i) => [i.path, i.references])).toEqual(
      [
        [s.path("a"), [s.path("b")]],
        [s.path("b"), [s.path("c")]],
        [s.path("c"), []],
      ].sort(),
    );
    // c: magic 24 + "(" "type" 16+16 + "directory" 24 + entry "(" name "f" node 5*16 + file node
    // ("(" "type" "regular" "contents" 4*16 + u64 8 + "leaf" padded 8 + ")" 16) + entry ")" 16 + ")" 16
    expect(items.find((i) => i.path === s.path("c"))!.narSize).toBe(24 + 32 + 24 + 80 + 96 + 16 + 16);
  });

  it("scans a remembered item again once an item it names but the store lacked appears", () => {
    const s = makeStore(dir, "/gnu/store", [
      { name: "dash", files: { "bin/sh": "sh" } },
      { name: "hello", files: { "bin/hello": { content: "#!{{dash}}/bin/sh\necho hi\n", executable: true } } },
    ]);
    const memo = memoryMemo();
    const moved = path.join(dir, "moved-dash");
    fs.renameSync(s.host("dash"), moved);
    const warnings: string[] = [];
    expect(scanClosure(s.store, [s.path("hello")], { memo, onWarning: (m) => warnings.push(m) }).map((i) => i.path)).toEqual([s.path("hello")]);
    expect(memo.records.get(s.host("hello"))?.mentions).toEqual([hashPart(s.path("dash"))]);
    expect(warnings).toEqual([
      `closure: ${s.path("hello")} names /gnu/store/${hashPart(s.path("dash"))}-…, which the store ${path.join(dir, "gnu/store")} does not have: a scan finds only items that are there, so if they are references the image lacks them (copy them into the store, or use the store's database: closure.from database)`,
    ]);
    // Remembered, it is said again.
    scanClosure(s.store, [s.path("hello")], { memo, onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(2);
    fs.renameSync(moved, s.host("dash"));
    const again = scanClosure(s.store, [s.path("hello")], { memo, onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(2);
    expect(again.map((i) => i.path)).toEqual([s.path("dash"), s.path("hello")].sort());
    expect(again.find((i) => i.path === s.path("hello"))!.references).toEqual([s.path("dash")]);
    // Remembered now, with nothing missing: used as it is.
    expect(memo.records.get(s.host("hello"))?.mentions).toEqual([]);
    // A record from before mentions were kept is scanned again.
    memo.records.set(s.host("hello"), { narSize: 1, references: [] });
    expect(scanClosure(s.store, [s.path("hello")], { memo }).find((i) => i.path === s.path("hello"))!.narSize).not.toBe(1);
  });

  it("ignores lock files beside items", () => {
    const s = makeStore(dir, "/nix/store", [{ name: "x" }]);
    fs.writeFileSync(`${s.host("x")}.lock`, "");
    fs.mkdirSync(path.join(dir, "nix/store/.links"));
    expect([...listStoreItems(s.store).values()]).toEqual([s.path("x")]);
  });

  it("fails on a socket in an item, naming it", async () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "sock", files: { "run/.keep": "" } }]);
    const sockPath = path.join(s.host("sock"), "run", "s");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
    try {
      expect(() => scanItem(s.host("sock"), new HashScanner([]), { label: s.path("sock") })).toThrow(
        new StoreError(`${s.path("sock")}/run/s is a socket; store items can hold only regular files, directories and symlinks`),
      );
    } finally {
      server.close();
    }
  });

  it("wraps read failures in a StoreError naming the file", () => {
    expect(() => readFileChunks(path.join(dir, "vanished"), "/gnu/store/x-item/vanished", () => {})).toThrow(
      new RegExp("^reading /gnu/store/x-item/vanished: ENOENT"),
    );
  });

});
