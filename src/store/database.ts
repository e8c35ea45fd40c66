/**
 * Closure from a host store database (Guix `/var/guix/db/db.sqlite`, Nix `/nix/var/nix/db/db.sqlite`), opened
 * without writing anything (see withStoreDatabase): ValidPaths gives each item's NAR hash and size, Refs its references.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { DatabaseSync } from "node:sqlite";
import { nodeSqlite } from "../util/node-sqlite.ts";
import { StoreError } from "../errors.ts";
import { fileKind } from "../util/format.ts";
import { byBytes, normaliseNarHash } from "./path.ts";

/** One item as a closure source knows it; narSize/narHash undefined when the source does not have them. */
export interface SourceItem {
  path: string;
  references: string[];
  narSize?: number;
  narHash?: string;
}

/** Where a store dir's own database lives, as a logical path (map it through the store root). */
export function defaultDatabase(storeDir: string): string | undefined {
  if (storeDir === "/nix/store") return "/nix/var/nix/db/db.sqlite";
  if (storeDir === "/gnu/store") return "/var/guix/db/db.sqlite";
  return undefined;
}

interface PathRow {
  id: number | bigint;
  hash: string;
  narSize: number | bigint | null;
}

/**
 * Runs `read` on the store database at `file`, opened without writing anything beside it: as an immutable file
 * (no locks, no -wal/-shm files, so a user who may read the database but not write its directory can), or, when a
 * live -wal file holds changes not yet in the main file, on a private copy of both. StoreError naming the file when
 * it cannot be read.
 */
export function withStoreDatabase<T>(file: string, read: (db: DatabaseSync) => T): T {
  if (!fs.existsSync(file)) throw new StoreError(`store database ${file} does not exist`);
  // SQLite opens what it is given and blocks on a FIFO for ever, past Ctrl-C (its open is synchronous); copying a
  // -wal beside one would too.
  for (const f of [file, `${file}-wal`]) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    if (st !== undefined && !st.isFile()) throw new StoreError(`store database ${f} is ${fileKind(st)}, not a regular file`);
  }
  let copy: string | undefined;
  let db: DatabaseSync | undefined;
  try {
    let url = pathToFileURL(file);
    if ((fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) > 0) {
      copy = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-db-"));
      fs.copyFileSync(file, path.join(copy, "db.sqlite"));
      fs.copyFileSync(`${file}-wal`, path.join(copy, "db.sqlite-wal"));
      url = pathToFileURL(path.join(copy, "db.sqlite"));
    } else {
      url.searchParams.set("immutable", "1");
    }
    db = new (nodeSqlite().DatabaseSync)(url, { readOnly: copy === undefined });
    db.prepare("SELECT id, path, hash, narSize FROM ValidPaths LIMIT 0").all();
    db.prepare("SELECT referrer, reference FROM Refs LIMIT 0").all();
  } catch (cause) {
    db?.close();
    if (copy) fs.rmSync(copy, { recursive: true, force: true });
    throw new StoreError(`reading store database ${file}: ${(cause as Error).message}`, { cause });
  }
  try {
    return read(db);
  } finally {
    db.close();
    if (copy) fs.rmSync(copy, { recursive: true, force: true });
  }
}

/** Whether the database at `file` knows (has registered as valid) every one of `paths`. */
export function databaseHas(file: string, paths: string[]): boolean {
  return withStoreDatabase(file, (db) => {
    const stmt = db.prepare("SELECT 1 FROM ValidPaths WHERE path = ?");
    return paths.every((p) => stmt.get(p) !== undefined);
  });
}

/**
 * The closure of `roots` as the database at `file` records it: every item reachable through Refs, with its
 * references (sorted, deduplicated, self references kept), NAR size and normalised NAR hash.
 */
export function readDatabaseClosure(file: string, roots: string[]): SourceItem[] {
  return withStoreDatabase(file, (db) => {
    try {
      const byPath = db.prepare("SELECT id, hash, narSize FROM ValidPaths WHERE path = ?");
      const refsOf = db.prepare(
        "SELECT v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?",
      );
      const items = new Map<string, SourceItem>();
      const queue = [...new Set(roots)];
      for (let i = 0; i < queue.length; i++) {
        const p = queue[i]!;
        if (items.has(p)) continue;
        const row = byPath.get(p) as PathRow | undefined;
        if (row === undefined) {
          const what = roots.includes(p) ? `${p}` : `${p} (a reference in the closure)`;
          throw new StoreError(`store database ${file} does not know ${what}; is it registered in this store?`);
        }
        const narHash = normaliseNarHash(row.hash);
        if (narHash === undefined) throw new StoreError(`store database ${file}: ${p} has an unreadable hash "${row.hash}"`);
        const refs = (refsOf.all(row.id) as { path: string }[]).map((r) => r.path);
        const references = [...new Set(refs)].sort(byBytes);
        const item: SourceItem = { path: p, references, narHash };
        if (row.narSize !== null && row.narSize !== undefined) item.narSize = Number(row.narSize);
        items.set(p, item);
        for (const r of references) if (!items.has(r)) queue.push(r);
      }
      return [...items.values()].sort((a, b) => byBytes(a.path, b.path));
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`reading store database ${file}: ${(err as Error).message}`, { cause: err });
    }
  });
}
