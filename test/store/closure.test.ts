import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import { resolveClosure, type ClosureSpec } from "../../src/store/closure.ts";
import { readDatabaseClosure } from "../../src/store/database.ts";
import { narDigest } from "../../src/store/nar.ts";
import { nix32Encode } from "../../src/store/path.ts";
import { makeStore, type FakeItem, type FakeStore } from "../fixtures/store.ts";

/** A Guix-schema database registering the given items (hash spelling and narSize presence varied per item). */
function writeDb(file: string, s: FakeStore, items: { name: string; refs: string[]; nix32?: boolean; noSize?: boolean }[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  db.exec(`CREATE TABLE ValidPaths (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, hash TEXT NOT NULL,
             registrationTime INTEGER NOT NULL, deriver TEXT, narSize INTEGER);
           CREATE TABLE Refs (referrer INTEGER NOT NULL, reference INTEGER NOT NULL, PRIMARY KEY (referrer, reference));`);
  const ins = db.prepare("INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, ?, 1, ?)");
  for (const it of items) {
    const { hash, size } = narDigest(s.host(it.name));
    const hex = hash.slice(7);
    ins.run(s.path(it.name), it.nix32 ? `sha256:${nix32Encode(Buffer.from(hex, "hex"))}` : `sha256:${hex}`, it.noSize ? null : size);
  }
  const ref = db.prepare("INSERT INTO Refs SELECT a.id, b.id FROM ValidPaths a, ValidPaths b WHERE a.path = ? AND b.path = ?");
  for (const it of items) for (const r of it.refs) ref.run(s.path(it.name), s.path(r));
  db.close();
}

const ITEMS: FakeItem[] = [
  { name: "libc", files: { "lib/libc.so": "libc" } },
  { name: "bash", files: { "bin/bash": { content: "bash", executable: true } }, refs: ["libc"] },
  { name: "hello", files: { "bin/hello": "#!{{bash}}/bin/bash\n" }, refs: ["bash", "libc"] },
  { name: "profile", files: { "bin/hello": { symlink: "{{hello}}/bin/hello" } }, refs: ["hello"] },
  { name: "other", files: { x: "unrelated" } },
];

describe("resolveClosure", () => {
  let dir: string;
  let s: FakeStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-closure-"));
    s = makeStore(path.join(dir, "root"), "/gnu/store", ITEMS, { profile: "profile" });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const spec = (extra: Partial<ClosureSpec> = {}): ClosureSpec => ({
    store: { dir: "/gnu/store", root: "root" },
    profile: "root/profile",
    closure: { from: "auto" },
    ...extra,
  });
  const names = (paths: string[]): string[] => paths.map((p) => p.slice(p.indexOf("-") + 1));

  it("scans when there is no database (auto), with sorted items, references and NAR sizes", async () => {
    const c = await resolveClosure(spec(), { configDir: dir });
    expect(c.store).toEqual({ dir: "/gnu/store", root: path.join(dir, "root") });
    expect(c.profile).toBe(s.path("profile"));
    expect(c.roots).toEqual([s.path("profile")]);
    expect(names(c.items.map((i) => i.path))).toEqual(names([..."libc bash hello profile".split(" ").map(s.path)].sort()));
    const byName = Object.fromEntries(c.items.map((i) => [i.path.slice(i.path.indexOf("-") + 1), i]));
    expect(byName.hello!.references).toEqual([s.path("bash"), s.path("libc")].sort());
    expect(byName.libc!.references).toEqual([]);
    for (const i of c.items) {
      expect(i.narSize).toBe(narDigest(s.host(i.path.slice(i.path.indexOf("-") + 1))).size);
      expect(i.narHash).toBeUndefined();
    }
  });

  it("uses the store database when it knows the roots (auto), else scans", async () => {
    const dbFile = path.join(dir, "root/var/guix/db/db.sqlite");
    // A database that does not know the profile: auto scans.
    writeDb(dbFile, s, [{ name: "libc", refs: [] }]);
    let c = await resolveClosure(spec(), { configDir: dir });
    expect(c.items.every((i) => i.narHash === undefined)).toBe(true);
    fs.rmSync(dbFile);
    // A database that knows it, recording a reference the files do not show (the db wins).
    writeDb(dbFile, s, [
      { name: "libc", refs: [], nix32: true, noSize: true },
      { name: "bash", refs: ["libc"] },
      { name: "hello", refs: ["bash", "libc", "hello"] },
      { name: "profile", refs: ["hello", "other"] },
      { name: "other", refs: [] },
    ]);
    c = await resolveClosure(spec(), { configDir: dir });
    expect(c.items.map((i) => i.path)).toEqual(["libc", "bash", "hello", "profile", "other"].map(s.path).sort());
    for (const i of c.items) {
      const d = narDigest(path.join(dir, "root", i.path));
      expect(i.narHash).toBe(d.hash);
      expect(i.narSize).toBe(d.size);
    }
    expect(c.items.find((i) => i.path === s.path("hello"))!.references).toEqual(["bash", "hello", "libc"].map(s.path).sort());
    // an explicit database file, and from: database
    const c2 = await resolveClosure(spec({ closure: { from: "database", file: "root/var/guix/db/db.sqlite" } }), { configDir: dir });
    expect(c2).toEqual(c);
    // from: scan ignores the database
    const c3 = await resolveClosure(spec({ closure: { from: "scan" } }), { configDir: dir });
    expect(c3.items.some((i) => i.path === s.path("other"))).toBe(false);
  });

  it("names a root the database does not know", async () => {
    const dbFile = path.join(dir, "root/var/guix/db/db.sqlite");
    writeDb(dbFile, s, [{ name: "libc", refs: [] }]);
    expect(() => readDatabaseClosure(dbFile, [s.path("hello")])).toThrow(new StoreError(`store database ${dbFile} does not know ${s.path("hello")}; is it registered in this store?`));
    await expect(resolveClosure(spec({ closure: { from: "database" } }), { configDir: dir })).rejects.toThrow(/does not know .*-profile;/);
    await expect(resolveClosure(spec({ closure: { from: "database", file: "nope.sqlite" } }), { configDir: dir })).rejects.toThrow(
      `store database ${path.join(dir, "nope.sqlite")} does not exist`,
    );
    makeStore(path.join(dir, "root2"), "/x/store", [{ name: "p" }], { profile: "p" });
    const xSpec = spec({ store: { dir: "/x/store", root: "root2" }, profile: "root2/profile", closure: { from: "database" } });
    await expect(resolveClosure(xSpec, { configDir: dir })).rejects.toThrow(
      /needs closure.file for the store dir \/x\/store/,
    );
  });

  it("a FIFO where the database is (or its -wal) is refused without opening it; auto scans instead", async () => {
    const dbFile = path.join(dir, "root/var/guix/db/db.sqlite");
    fs.mkdirSync(path.dirname(dbFile), { recursive: true });
    execFileSync("mkfifo", [dbFile]);
    await expect(resolveClosure(spec({ closure: { from: "database" } }), { configDir: dir })).rejects.toThrow(`store database ${dbFile} is a FIFO, not a regular file`);
    const warnings: string[] = [];
    const scanned = await resolveClosure(spec({}), { configDir: dir, onWarning: (w) => warnings.push(w) });
    expect(scanned.items.length).toBeGreaterThan(0);
    expect(warnings).toEqual([`closure: store database ${dbFile} is a FIFO, not a regular file; scanning the store instead`]);
    fs.rmSync(dbFile);
    writeDb(dbFile, s, [{ name: "libc", refs: [] }]);
    execFileSync("mkfifo", [`${dbFile}-wal`]);
    await expect(resolveClosure(spec({ closure: { from: "database" } }), { configDir: dir })).rejects.toThrow(`store database ${dbFile}-wal is a FIFO, not a regular file`);
  });

  it("reads a references graph, taking sizes from the items", async () => {
    const rec = (n: string, refs: string[]) => `${s.path(n)}\n\n${refs.length}\n${refs.map((r) => `${s.path(r)}\n`).join("")}`;
    fs.writeFileSync(path.join(dir, "graph"), rec("profile", ["hello"]) + rec("hello", ["hello", "libc"]) + rec("libc", []));
    const c = await resolveClosure(spec({ closure: { from: "guix-graph", file: "graph" } }), { configDir: dir });
    expect(c.items.map((i) => [i.path, i.references, i.narSize])).toEqual(
      ["hello", "libc", "profile"]
        .map((n) => [s.path(n), n === "hello" ? [s.path("hello"), s.path("libc")].sort() : n === "profile" ? [s.path("hello")] : [], narDigest(s.host(n)).size])
        .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
    );
    await expect(resolveClosure(spec({ closure: { from: "guix-graph" } }), { configDir: dir })).rejects.toThrow(/needs closure.file/);
  });

  it("fails when a referenced item is missing from the store", async () => {
    const gone = "/gnu/store/00000000000000000000000000000000-gone";
    fs.writeFileSync(path.join(dir, "graph"), `${s.path("profile")}\n\n1\n${gone}\n${gone}\n\n0\n`);
    await expect(resolveClosure(spec({ closure: { from: "guix-graph", file: "graph" } }), { configDir: dir })).rejects.toThrow(
      new StoreError(`${s.path("profile")} refers to ${gone}, which is missing from the store ${path.join(dir, "root")}`),
    );
  });

  it("takes roots (store paths or links), sorted, and a plain store dir string", async () => {
    const c = await resolveClosure(spec({ profile: undefined, roots: [s.path("libc"), "root/profile", s.path("bash")] }), { configDir: dir });
    expect(c.profile).toBeUndefined();
    expect(c.roots).toEqual(["libc", "profile", "bash"].map(s.path).sort());
    expect(c.items).toHaveLength(4);
    // store as a string means root "/": the fake store's paths do not exist there
    await expect(resolveClosure({ store: "/gnu/store", roots: [s.path("libc")], closure: { from: "scan" } }, { configDir: dir })).rejects.toThrow(StoreError);
    // the same store seen with root "/" through its host directory
    const hostDir = path.join(dir, "root/gnu/store");
    const real = await resolveClosure({ store: hostDir, profile: s.host("hello"), closure: { from: "auto" } }, { configDir: dir });
    expect(real.items.map((i) => i.path)).toEqual(["hello", "bash", "libc"].map((n) => s.host(n)).sort());
  });

  it("fails on a profile outside the store, or missing", async () => {
    fs.writeFileSync(path.join(dir, "file"), "x");
    await expect(resolveClosure(spec({ profile: "file" }), { configDir: dir })).rejects.toThrow(/outside the store/);
    await expect(resolveClosure(spec({ profile: "missing" }), { configDir: dir })).rejects.toThrow(/missing does not exist/);
  });
});
