/** Where the database goes: flavour from the store dir, state directory, gc roots and profile links. */
import { describe, expect, it } from "vitest";
import { databaseEntries, databaseLayout } from "../../src/plan/database-layout.ts";
import { databaseFor } from "../../src/database/index.ts";

const P = "/gnu/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-profile";
const N = "/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello";

describe("databaseLayout / databaseEntries", () => {
  it("is off by default and takes its flavour from the store dir", () => {
    expect(databaseLayout({ database: false }, "/gnu/store")).toBeUndefined();
    expect(databaseLayout({ database: true }, "/gnu/store")).toEqual({ flavor: "guix", stateDir: "/var/guix", dbPath: "/var/guix/db/db.sqlite" });
    expect(databaseLayout({ database: true }, "/nix/store")).toEqual({ flavor: "nix", stateDir: "/nix/var/nix", dbPath: "/nix/var/nix/db/db.sqlite" });
    expect(databaseLayout({ database: { flavor: "guix", path: "/opt/state/" } }, "/nix/store")).toEqual({ flavor: "guix", stateDir: "/opt/state", dbPath: "/opt/state/db/db.sqlite" });
  });

  it("guix: the db placeholder, schema 7, gcroots and the profile links of --localstatedir", () => {
    const layout = databaseLayout({ database: true }, "/gnu/store")!;
    expect(databaseEntries(layout, { roots: [P], profile: P })).toEqual([
      { path: "/var/guix/db/db.sqlite", type: "file", mode: "644", generated: "guix-database" },
      { path: "/var/guix/db/schema", type: "file", mode: "644", content: "7" },
      { path: "/var/guix/gcroots/profiles", type: "symlink", target: "/var/guix/profiles" },
      { path: "/var/guix/profiles/per-user/root/guix-profile", type: "symlink", target: "guix-profile-1-link" },
      { path: "/var/guix/profiles/per-user/root/guix-profile-1-link", type: "symlink", target: P },
    ]);
    expect(databaseEntries(layout, { roots: [P] }).at(-1)).toEqual({ path: "/var/guix/profiles/per-user/root", type: "directory", mode: "755" });
  });

  it("nix: schema 10 and a gc root per root, as includeNixDB", () => {
    const layout = databaseLayout({ database: { flavor: "nix" } }, "/nix/store")!;
    expect(databaseEntries(layout, { roots: [N] })).toEqual([
      { path: "/nix/var/nix/db/db.sqlite", type: "file", mode: "644", generated: "nix-database" },
      { path: "/nix/var/nix/db/schema", type: "file", mode: "644", content: "10" },
      { path: `/nix/var/nix/gcroots/docker/${N.slice(11)}`, type: "symlink", target: N },
    ]);
  });

  it("databaseFor refuses an item without NAR facts or whose facts disagree with the closure", () => {
    const items = [{ path: N, narSize: 10, references: [], narHash: `sha256:${"a".repeat(64)}` }];
    expect(() => databaseFor("nix-database", { items }, { nar: {}, registrationTime: 1 })).toThrow(/no NAR hash was computed for/);
    expect(() => databaseFor("nix-database", { items }, { nar: { [N]: { hash: `sha256:${"b".repeat(64)}`, size: 10 } }, registrationTime: 1 })).toThrow(/changed or the store's database is wrong/);
    expect(() => databaseFor("nix-database", { items }, { nar: { [N]: { hash: `sha256:${"a".repeat(64)}`, size: 11 } }, registrationTime: 1 })).toThrow(/11 bytes/);
    expect(databaseFor("nix-database", { items }, { nar: { [N]: { hash: `sha256:${"a".repeat(64)}`, size: 10 } }, registrationTime: 1 }).length).toBeGreaterThan(0);
  });
});
