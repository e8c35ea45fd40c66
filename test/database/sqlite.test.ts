/**
 * The db.sqlite writer: each flavour's schema, rows in sorted order with ids following paths, self references as
 * rows, identical bytes for identical inputs (whatever the input order), nothing left beside the file, and bad
 * rows refused.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { DatabaseSync } from "node:sqlite";
import { storeDatabaseBytes, type RegisteredPath } from "../../src/database/sqlite.ts";
import { BuildError } from "../../src/errors.ts";
import { findTool } from "../fixtures/tools.ts";

const h = (c: string) => `sha256:${c.repeat(64)}`;
const A = "/gnu/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
const B = "/gnu/store/1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b";
const C = "/gnu/store/2ccccccccccccccccccccccccccccccc-c";
const ITEMS: RegisteredPath[] = [
  { path: C, hash: h("c"), narSize: 300, references: [A, C] },
  { path: A, hash: h("a"), narSize: 100, references: [] },
  { path: B, hash: h("b"), narSize: 200, references: [C, A] },
];

function open(bytes: Buffer) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-test-"));
  const file = path.join(dir, "db.sqlite");
  fs.writeFileSync(file, bytes);
  const db = new DatabaseSync(file, { readOnly: true });
  return {
    file,
    db,
    all: (sql: string) => db.prepare(sql).all() as Record<string, unknown>[],
    close: () => {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("storeDatabaseBytes", () => {
  for (const flavor of ["guix", "nix"] as const) {
    it(`${flavor}: rows sorted by path, ids in that order, all ValidPaths before Refs`, () => {
      const d = open(storeDatabaseBytes({ flavor, items: ITEMS, registrationTime: 42 }));
      try {
        expect(d.all("SELECT id, path, hash, registrationTime, narSize, deriver FROM ValidPaths ORDER BY rowid")).toEqual([
          { id: 1, path: A, hash: h("a"), registrationTime: 42, narSize: 100, deriver: null },
          { id: 2, path: B, hash: h("b"), registrationTime: 42, narSize: 200, deriver: null },
          { id: 3, path: C, hash: h("c"), registrationTime: 42, narSize: 300, deriver: null },
        ]);
        expect(d.all("SELECT referrer, reference FROM Refs ORDER BY rowid")).toEqual([
          { referrer: 2, reference: 1 },
          { referrer: 2, reference: 3 },
          { referrer: 3, reference: 1 },
          { referrer: 3, reference: 3 },
        ]);
        expect(d.all("PRAGMA integrity_check")).toEqual([{ integrity_check: "ok" }]);
        expect(d.all("PRAGMA page_size")).toEqual([{ page_size: 4096 }]);
        expect(d.all("PRAGMA journal_mode")[0]!.journal_mode).toBe("delete");
        const cols = d.all("SELECT name FROM pragma_table_info('ValidPaths')").map((r) => r.name);
        expect(cols).toEqual(
          flavor === "guix"
            ? ["id", "path", "hash", "registrationTime", "deriver", "narSize"]
            : ["id", "path", "hash", "registrationTime", "deriver", "narSize", "ultimate", "sigs", "ca"],
        );
        const tables = d.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name);
        expect(tables).toEqual(flavor === "guix" ? ["DerivationOutputs", "FailedPaths", "Refs", "ValidPaths", "sqlite_sequence"] : ["DerivationOutputs", "Refs", "ValidPaths", "sqlite_sequence"]);
        const other = d.all("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%' ORDER BY name").map((r) => r.name);
        expect(other).toEqual(["DeleteSelfRefs", "IndexDerivationOutputs", "IndexReference", "IndexReferrer"]);
      } finally {
        d.close();
      }
    });
  }

  it("gives identical bytes for identical inputs in any order, and different bytes for a different time", () => {
    const a = storeDatabaseBytes({ flavor: "nix", items: ITEMS, registrationTime: 1 });
    const b = storeDatabaseBytes({ flavor: "nix", items: [...ITEMS].reverse().map((i) => ({ ...i, references: [...i.references].reverse() })), registrationTime: 1 });
    expect(b.equals(a)).toBe(true);
    expect(storeDatabaseBytes({ flavor: "nix", items: ITEMS, registrationTime: 2 }).equals(a)).toBe(false);
    expect(storeDatabaseBytes({ flavor: "guix", items: ITEMS, registrationTime: 1 }).equals(a)).toBe(false);
    expect(a.length % 4096).toBe(0);
  });

  it("names one writer version in its header, whatever SQLite Node bundles (Node 22.15's and 24's differ)", () => {
    const db = storeDatabaseBytes({ flavor: "guix", items: ITEMS, registrationTime: 1 });
    expect(db.readUInt32BE(96)).toBe(3_045_000);
    // ... and the version stays valid: bytes 92-95 are still the change counter (24-27), as SQLite wrote them.
    expect(db.readUInt32BE(92)).toBe(db.readUInt32BE(24));
  });

  it("sqlite3 reads it as sound", () => {
    if (!findTool("sqlite3")) {
      if (process.env.CI) throw new Error("sqlite3 not found on PATH (Debian package sqlite3): CI must install it");
      console.warn("skipping: sqlite3 not found (Debian package sqlite3)");
      return;
    }
    const d = open(storeDatabaseBytes({ flavor: "guix", items: ITEMS, registrationTime: 1 }));
    try {
      expect(execFileSync("sqlite3", [d.file, "PRAGMA integrity_check; PRAGMA foreign_key_check;"], { encoding: "utf8" }).trim()).toBe("ok");
    } finally {
      d.close();
    }
  });

  it("refuses a reference outside the closure, a path twice, and a missing hash", () => {
    const run = (items: RegisteredPath[]) => () => storeDatabaseBytes({ flavor: "guix", items, registrationTime: 1 });
    expect(run([{ path: A, hash: h("a"), narSize: 1, references: [B] }])).toThrow(/refers to .*-b, which is not in the closure/);
    expect(run([ITEMS[1]!, ITEMS[1]!])).toThrow(/registered twice/);
    expect(run([{ path: A, hash: "md5:00", narSize: 1, references: [] }])).toThrow(BuildError);
  });
});
