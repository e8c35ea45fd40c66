/**
 * Writes a store database (db.sqlite) registering a closure: Guix's schema 7 or Nix's schema 10 (FORMATS.md §5).
 * Identical inputs give identical bytes: a fixed page size, rollback journal (no -wal/-shm), rows inserted in
 * sorted order (ids follow path order), and a VACUUM at the end so the file's layout depends only on its content.
 * The file is made in a private temp directory and returned as bytes (a closure's database is small: ~200 bytes
 * per item), then removed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { nodeSqlite } from "../util/node-sqlite.ts";
import { BuildError } from "../errors.ts";
import type { DatabaseFlavor } from "../plan/database-layout.ts";
import { byBytes } from "../util/bytes.ts";
import { SHA256_DIGEST } from "../util/digest.ts";

export interface RegisteredPath {
  path: string;
  /** `sha256:<hex>` of the item's NAR. */
  hash: string;
  narSize: number;
  /** Store paths it refers to (itself included when it does). */
  references: string[];
}

export interface DatabaseInput {
  flavor: DatabaseFlavor;
  items: RegisteredPath[];
  /** Seconds since the epoch: the image's creation time. */
  registrationTime: number;
}

const REFS_AND_DERIVATIONS = `
CREATE TABLE Refs (
  referrer integer not null,
  reference integer not null,
  primary key (referrer, reference),
  foreign key (referrer) references ValidPaths(id) on delete cascade,
  foreign key (reference) references ValidPaths(id) on delete restrict
);
CREATE INDEX IndexReferrer on Refs(referrer);
CREATE INDEX IndexReference on Refs(reference);
CREATE TRIGGER DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;
CREATE TABLE DerivationOutputs (
  drv integer not null,
  id text not null,
  path text not null,
  primary key (drv, id),
  foreign key (drv) references ValidPaths(id) on delete cascade
);
CREATE INDEX IndexDerivationOutputs on DerivationOutputs(path);
`;

/** The tables each flavour's daemon expects; column names and types are what its queries use. */
export const SCHEMA_SQL: Record<DatabaseFlavor, string> = {
  guix: `
CREATE TABLE ValidPaths (
  id integer primary key autoincrement not null,
  path text unique not null,
  hash text not null,
  registrationTime integer not null,
  deriver text,
  narSize integer
);
${REFS_AND_DERIVATIONS}
CREATE TABLE FailedPaths (
  path text primary key not null,
  time integer not null
);
`,
  nix: `
CREATE TABLE ValidPaths (
  id integer primary key autoincrement not null,
  path text unique not null,
  hash text not null,
  registrationTime integer not null,
  deriver text,
  narSize integer,
  ultimate integer,
  sigs text,
  ca text
);
${REFS_AND_DERIVATIONS}
`,
};


function fill(db: DatabaseSync, input: DatabaseInput): void {
  const items = [...input.items].sort((a, b) => byBytes(a.path, b.path));
  const ids = new Map<string, number>();
  const addPath = db.prepare("INSERT INTO ValidPaths (id, path, hash, registrationTime, narSize) VALUES (?, ?, ?, ?, ?)");
  items.forEach((it, i) => {
    if (ids.has(it.path)) throw new BuildError(`store database: ${it.path} is registered twice`);
    if (!SHA256_DIGEST.test(it.hash)) throw new BuildError(`store database: ${it.path} has no sha256 NAR hash (${it.hash})`);
    ids.set(it.path, i + 1);
    addPath.run(i + 1, it.path, it.hash, input.registrationTime, it.narSize);
  });
  // Every ValidPaths row before any Refs row; each referrer's references in id order.
  const addRef = db.prepare("INSERT INTO Refs (referrer, reference) VALUES (?, ?)");
  for (const it of items) {
    const referrer = ids.get(it.path)!;
    const refs = [...new Set(it.references)].map((r) => {
      const id = ids.get(r);
      if (id === undefined) throw new BuildError(`store database: ${it.path} refers to ${r}, which is not in the closure`);
      return id;
    });
    for (const reference of refs.sort((a, b) => a - b)) addRef.run(referrer, reference);
  }
}

/**
 * The SQLite version the header names as the file's last writer (bytes 96-99, SQLITE_VERSION_NUMBER): SQLite writes
 * its own there, so Node 22.15 (SQLite 3.49.1) and Node 24 (3.50.4) gave different databases — and images — for
 * the same closure. The field is informational (SQLite reads it only when bytes 92-95 match the change counter, and
 * never acts on it), so it is set to one version whatever library wrote the file.
 */
const WRITER_VERSION = 3_045_000;

function withFixedWriter(db: Buffer): Buffer {
  if (db.length < 100 || db.toString("latin1", 0, 16) !== "SQLite format 3\0") throw new BuildError("store database: sqlite wrote a file without its header");
  db.writeUInt32BE(WRITER_VERSION, 96);
  return db;
}

/** The db.sqlite bytes registering `input.items`. */
export function storeDatabaseBytes(input: DatabaseInput): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-db-"));
  const file = path.join(dir, "db.sqlite");
  try {
    const sqlite = nodeSqlite();
    const db = new sqlite.DatabaseSync(file);
    try {
      db.exec("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA encoding = 'UTF-8'; PRAGMA auto_vacuum = NONE;");
      db.exec("BEGIN");
      db.exec(SCHEMA_SQL[input.flavor]);
      fill(db, input);
      db.exec("COMMIT");
      db.exec("VACUUM");
    } finally {
      db.close();
    }
    const leftovers = fs.readdirSync(dir).filter((n) => n !== "db.sqlite");
    if (leftovers.length > 0) throw new BuildError(`store database: sqlite left ${leftovers.join(", ")} beside db.sqlite`);
    return withFixedWriter(fs.readFileSync(file));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
