/**
 * The host's store database is read without writing anything beside it (no -wal/-shm, a directory nobody may
 * write), changes still in its write-ahead log are seen, and when it cannot be read `closure: auto` scans instead,
 * with a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { spawnSync, execFileSync } from "node:child_process";
import { storeDatabaseBytes } from "../../src/database/sqlite.ts";
import { resolveClosure } from "../../src/store/closure.ts";
import { narDigest } from "../../src/store/nar.ts";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";
import { requireTool } from "../fixtures/tools.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
let dir: string;
let dbDir: string;
let dbFile: string;
let items: { path: string; hash: string; narSize: number; references: string[] }[];

function config(from: "auto" | "database"): string {
  const file = path.join(dir, `image-${from}.yaml`);
  fs.writeFileSync(file, `name: db\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: ${from} }\noutput: { path: ./db.tar }\n`);
  return file;
}

/** A Guix database registering the example closure, in WAL mode as the daemon keeps it. */
function writeDatabase(): void {
  fs.rmSync(dbDir, { recursive: true, force: true });
  fs.mkdirSync(dbDir, { recursive: true });
  fs.writeFileSync(dbFile, storeDatabaseBytes({ flavor: "guix", items, registrationTime: 1 }));
  const db = new DatabaseSync(dbFile);
  db.exec("PRAGMA journal_mode=WAL");
  db.close();
}

/** `plan --json` of a config: its status, stderr and the store items it planned. */
function plan(file: string, unprivileged = false) {
  const args = [BIN, "plan", file, "--json"];
  const cmd = unprivileged ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...args] : [process.execPath, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: dir, encoding: "utf8", env: { ...process.env, HOME: dir, LAYERPACK_CACHE_DIR: path.join(dir, unprivileged ? "nobody-cache" : "cache") } });
  const planned = r.status === 0 ? (JSON.parse(r.stdout) as { totals: { items: number } }).totals.items : undefined;
  return { status: r.status, stderr: r.stderr, items: planned };
}

beforeAll(async () => {
  ({ dir } = setUpExample("layerpack-storedb-"));
  dbDir = path.join(dir, "store/var/guix/db");
  dbFile = path.join(dbDir, "db.sqlite");
  const closure = await resolveClosure({ store: { dir: "/gnu/store", root: "./store" }, profile: "./profile", closure: { from: "scan" } }, { configDir: dir });
  items = closure.items.map((it) => ({ path: it.path, hash: narDigest(path.join(dir, "store", it.path)).hash, narSize: it.narSize, references: it.references }));
});
afterAll(() => removeExample(dir));

describe("the host store database", () => {
  it("is read in WAL mode without leaving -wal or -shm files", () => {
    writeDatabase();
    const before = fs.readdirSync(dbDir);
    const r = plan(config("database"));
    expect(r.stderr).toBe("");
    expect(r.items).toBe(items.length);
    expect(fs.readdirSync(dbDir)).toEqual(before);
  });

  it.runIf(process.getuid?.() !== 0 || requireTool("setpriv", "util-linux"))("is read by a user who cannot write its directory", () => {
    writeDatabase();
    execFileSync("chmod", ["-R", "a+rX", dir]);
    execFileSync("chmod", ["0555", dbDir]);
    execFileSync("chmod", ["0444", dbFile]);
    fs.mkdirSync(path.join(dir, "nobody-cache"), { recursive: true });
    execFileSync("chmod", ["0777", path.join(dir, "nobody-cache")]);
    try {
      const r = plan(config("database"), process.getuid?.() === 0);
      expect(r.stderr).toBe("");
      expect(r.items).toBe(items.length);
    } finally {
      execFileSync("chmod", ["0755", dbDir]);
      execFileSync("chmod", ["0644", dbFile]);
    }
  });

  it("sees paths registered in a write-ahead log not yet checkpointed, and leaves the log alone", () => {
    // Registered with only the profile's dependencies first; the profile itself is added by a writer that keeps
    // the log open (as a running daemon does).
    fs.rmSync(dbDir, { recursive: true, force: true });
    fs.mkdirSync(dbDir, { recursive: true });
    const profile = items.find((it) => it.path.endsWith("-profile"))!;
    fs.writeFileSync(dbFile, storeDatabaseBytes({ flavor: "guix", items: items.filter((it) => it !== profile), registrationTime: 1 }));
    const writer = new DatabaseSync(dbFile);
    try {
      writer.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;");
      writer.prepare("INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, ?, 1, ?)").run(profile.path, profile.hash, profile.narSize);
      const ref = writer.prepare("INSERT INTO Refs SELECT a.id, b.id FROM ValidPaths a, ValidPaths b WHERE a.path = ? AND b.path = ?");
      for (const r of profile.references) ref.run(profile.path, r);
      expect(fs.statSync(`${dbFile}-wal`).size).toBeGreaterThan(0);
      const log = fs.readFileSync(`${dbFile}-wal`);
      const r = plan(config("database"));
      expect(r.stderr).toBe("");
      expect(r.items).toBe(items.length);
      expect(fs.readFileSync(`${dbFile}-wal`)).toEqual(log);
    } finally {
      writer.close();
    }
  });

  it("that cannot be read makes `auto` scan, with a warning; `database` is an error", () => {
    fs.rmSync(dbDir, { recursive: true, force: true });
    fs.mkdirSync(dbDir, { recursive: true });
    fs.writeFileSync(dbFile, "this is not an SQLite database, but it is long enough to look like one's first page".repeat(100));
    const auto = plan(config("auto"));
    expect(auto.stderr).toMatch(/^layerpack: warning: closure: reading store database .*db\.sqlite: .*; scanning the store instead\n$/);
    expect(auto.items).toBe(items.length);
    const r = layerpack(["plan", config("database")], { cwd: dir });
    expect(r.stderr).toMatch(/^layerpack: reading store database .*db\.sqlite: /);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(1);
  });
});
