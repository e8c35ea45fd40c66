/**
 * The store database in an image, checked against nix-bin: the NAR hashes and sizes we compute while tarring equal
 * `nix path-info`, the unpacked image passes `nix-store --verify --check-contents`, sqlite3 finds the file sound,
 * the Guix flavour has Guix's schema, and builds with a database are byte-identical (cold, cached, no cache).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { DatabaseSync } from "node:sqlite";
import { requireTool } from "../fixtures/tools.ts";
import { layerpack } from "./cli.ts";
import { buildNixClosure, chmodRemove, unpackImage, type NixClosure } from "./nix-closure.ts";

const hasTools = requireTool("nix-build", "nix-bin") && requireTool("busybox", "busybox-static") && requireTool("sqlite3");
const sha256File = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

describe.runIf(hasTools)("the store database", () => {
  let dir: string;
  let c: NixClosure;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-db-e2e-"));
    c = buildNixClosure(dir);
  }, 180_000);
  afterAll(() => chmodRemove(dir));

  function build(name: string, body: string, args: string[] = [], env: Record<string, string> = {}): string {
    const cfg = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(cfg, `name: ${name}\ntag: t\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\nentrypoint: bin/hello\noutput: { path: ./${name}.tar }\n${body}\n`);
    const r = layerpack(["build", cfg, ...args], { env });
    expect(r.status, r.stderr).toBe(0);
    return path.join(dir, `${name}.tar`);
  }

  const rows = (db: string) => {
    const d = new DatabaseSync(db, { readOnly: true });
    try {
      const paths = d.prepare("SELECT id, path, hash, narSize, registrationTime FROM ValidPaths ORDER BY id").all() as {
        id: number;
        path: string;
        hash: string;
        narSize: number;
        registrationTime: number;
      }[];
      const refs = d.prepare("SELECT referrer, reference FROM Refs").all() as { referrer: number; reference: number }[];
      return { paths, refs };
    } finally {
      d.close();
    }
  };

  it("nix flavour: our hashes equal nix path-info, and nix-store --verify --check-contents passes", () => {
    const out = build("db-nix", "database: true\ncreated: 2024-01-02T03:04:05Z");
    const root = path.join(dir, "unpacked-nix");
    unpackImage(out, root);
    const dbFile = path.join(root, "nix/var/nix/db/db.sqlite");
    expect(fs.readFileSync(path.join(root, "nix/var/nix/db/schema"), "utf8")).toBe("10");
    expect(execFileSync("sqlite3", [dbFile, "PRAGMA integrity_check"], { encoding: "utf8" }).trim()).toBe("ok");
    const { paths, refs } = rows(dbFile);
    const oracle = c.nix.pathInfo([c.profile]);
    expect(paths.map((p) => ({ path: p.path, narHash: p.hash, narSize: p.narSize }))).toEqual(
      oracle.map((o) => ({ path: o.path, narHash: o.narHash, narSize: o.narSize })),
    );
    expect(new Set(paths.map((p) => p.registrationTime))).toEqual(new Set([Date.parse("2024-01-02T03:04:05Z") / 1000]));
    const byId = new Map(paths.map((p) => [p.id, p.path]));
    const refsOf = (p: string) => refs.filter((r) => byId.get(r.referrer) === p).map((r) => byId.get(r.reference)!).sort();
    for (const o of oracle) expect(refsOf(o.path), o.path).toEqual(o.references);
    expect(refsOf(c.hello)).toContain(c.hello); // self reference is a row
    expect(fs.readdirSync(path.join(root, "nix/var/nix/db")).sort()).toEqual(["db.sqlite", "schema"]); // no -wal/-shm/-journal
    expect(fs.readlinkSync(path.join(root, "nix/var/nix/gcroots/docker", path.basename(c.profile)))).toBe(c.profile);

    // Nix itself reads our database and re-hashes every item against it.
    const verify = execFileSync("nix-store", ["--store", root, "--verify", "--check-contents"], { env: c.nix.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(verify).not.toMatch(/modified|invalid/i);
    const valid = execFileSync("nix-store", ["--store", root, "-qR", c.profile], { env: c.nix.env, encoding: "utf8" }).trim().split("\n").sort();
    expect(valid).toEqual(oracle.map((o) => o.path));
  });

  it("a corrupted item in the unpacked image makes nix-store --verify --check-contents fail (the check can fail)", () => {
    const root = path.join(dir, "unpacked-nix-bad");
    unpackImage(path.join(dir, "db-nix.tar"), root);
    const numbers = path.join(root, c.hello.slice(1), "share/numbers");
    fs.chmodSync(path.dirname(numbers), 0o755);
    fs.chmodSync(numbers, 0o644);
    fs.appendFileSync(numbers, "tampered\n");
    let failed = false;
    try {
      execFileSync("nix-store", ["--store", root, "--verify", "--check-contents"], { env: c.nix.env, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      failed = true;
      expect(String((err as { stderr?: Buffer }).stderr)).toMatch(/modified/);
    }
    expect(failed).toBe(true);
  });

  it("guix flavour: Guix's schema 7, without ultimate/sigs/ca, and the --localstatedir links", () => {
    const out = build("db-guix", "database: { flavor: guix }");
    const root = path.join(dir, "unpacked-guix");
    unpackImage(out, root);
    const dbFile = path.join(root, "var/guix/db/db.sqlite");
    expect(fs.readFileSync(path.join(root, "var/guix/db/schema"), "utf8")).toBe("7");
    expect(execFileSync("sqlite3", [dbFile, "PRAGMA integrity_check"], { encoding: "utf8" }).trim()).toBe("ok");
    const columns = execFileSync("sqlite3", [dbFile, "SELECT name FROM pragma_table_info('ValidPaths')"], { encoding: "utf8" }).trim().split("\n");
    expect(columns).toEqual(["id", "path", "hash", "registrationTime", "deriver", "narSize"]);
    const tables = execFileSync("sqlite3", [dbFile, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"], { encoding: "utf8" }).trim().split("\n");
    expect(tables).toEqual(["DerivationOutputs", "FailedPaths", "Refs", "ValidPaths", "sqlite_sequence"]);
    expect(fs.readlinkSync(path.join(root, "var/guix/gcroots/profiles"))).toBe("/var/guix/profiles");
    expect(fs.readlinkSync(path.join(root, "var/guix/profiles/per-user/root/guix-profile"))).toBe("guix-profile-1-link");
    expect(fs.readlinkSync(path.join(root, "var/guix/profiles/per-user/root/guix-profile-1-link"))).toBe(c.profile);
    const oracle = c.nix.pathInfo([c.profile]);
    expect(rows(dbFile).paths.map((p) => [p.path, p.hash, p.narSize])).toEqual(oracle.map((o) => [o.path, o.narHash, o.narSize]));
  });

  it("two builds with a database are identical: cold cache, warm cache, no cache, and max 1 gives the same db", () => {
    const cacheA = path.join(dir, "cache-a");
    const first = sha256File(build("db-same", "database: true", ["--cache-dir", cacheA]));
    const warm = sha256File(build("db-same", "database: true", ["--cache-dir", cacheA]));
    const none = sha256File(build("db-same", "database: true", ["--no-cache"]));
    expect(warm).toBe(first);
    expect(none).toBe(first);
    // A build without a database skips the NAR hashes; a database build on its cache rebuilds what lacks them.
    const cacheB = path.join(dir, "cache-b");
    build("db-same", "", ["--cache-dir", cacheB]);
    const plainEntries = fs.readdirSync(path.join(cacheB, "layers")).map((f) => JSON.parse(fs.readFileSync(path.join(cacheB, "layers", f), "utf8")));
    expect(plainEntries.some((e) => e.nar !== undefined)).toBe(false);
    expect(sha256File(build("db-same", "database: true", ["--cache-dir", cacheB]))).toBe(first);
    // An OCI layout keeps a cache record with the NAR hashes: the same bytes on a cache that has them (cacheA, from
    // the database builds), on one that lacks them and on none.
    const layout = (name: string, args: string[]) => {
      const cfg = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(cfg, `name: lay\ntag: t\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\noutput: { format: oci-layout, path: ./${name} }\n`);
      const r = layerpack(["build", cfg, ...args]);
      expect(r.status, r.stderr).toBe(0);
      const blobs = path.join(dir, name, "blobs", "sha256");
      return [sha256File(path.join(dir, name, "index.json")), ...fs.readdirSync(blobs).sort()];
    };
    const cacheC = path.join(dir, "cache-c");
    build("db-plain", "", ["--cache-dir", cacheC]);
    const uncached = layout("lay-none", ["--no-cache"]);
    expect(layout("lay-with", ["--cache-dir", cacheA])).toEqual(uncached);
    expect(layout("lay-without", ["--cache-dir", cacheC])).toEqual(uncached);
    // Every cached layer entry with store items remembers their NAR hashes.
    const entries = fs.readdirSync(path.join(cacheA, "layers")).map((f) => JSON.parse(fs.readFileSync(path.join(cacheA, "layers", f), "utf8")));
    const known = Object.assign({}, ...entries.map((e) => e.nar ?? {}));
    for (const o of c.nix.pathInfo([c.profile])) expect(known[o.path]).toEqual({ hash: o.narHash, size: o.narSize });

    const single = build("db-single", "database: true\nlayers: { max: 1 }", ["--no-cache"]);
    const a = path.join(dir, "unpacked-same");
    const b = path.join(dir, "unpacked-single");
    unpackImage(path.join(dir, "db-same.tar"), a);
    unpackImage(single, b);
    expect(sha256File(path.join(b, "nix/var/nix/db/db.sqlite"))).toBe(sha256File(path.join(a, "nix/var/nix/db/db.sqlite")));
  });

  it("bad database settings are clear errors, and nothing is written", () => {
    const bad = (name: string, body: string, pattern: RegExp) => {
      const cfg = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(cfg, `name: ${name}\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\noutput: { path: ./${name}.tar }\n${body}\n`);
      const r = layerpack(["build", cfg]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(pattern);
      expect(fs.existsSync(path.join(dir, `${name}.tar`))).toBe(false);
    };
    bad("bad-flavor", "database: { flavor: debian }", /database.*(guix|nix)/s);
    bad("bad-dbpath", "database: { path: var/guix }", /database\.path.*absolute/);
    bad("bad-dbdots", "database: { path: /var/../../etc }", /database\.path.*'\.\.'/);
    bad("bad-dbstore", "database: { path: /nix/store/state }", /database .*inside the store|store layers own it/);
  });
});
