/**
 * Where the store database and its companions go in the image (FORMATS.md §5), as customisation entries:
 * - guix (`guix pack --localstatedir`): <state>/db/db.sqlite, <state>/db/schema ("7"),
 *   <state>/gcroots/profiles -> <state>/profiles, <state>/profiles/per-user/root/guix-profile -> guix-profile-1-link
 *   -> the profile;
 * - nix (`includeNixDB`): <state>/db/db.sqlite, <state>/db/schema ("10"), <state>/gcroots/docker/<name> -> each root.
 * The db.sqlite entry is a placeholder (`generated`): its bytes depend on NAR hashes computed at build time.
 */
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import type { CustomEntry } from "./types.ts";

export type DatabaseFlavor = "guix" | "nix";

export interface DatabaseLayout {
  flavor: DatabaseFlavor;
  /** State directory in the image (Guix's localstatedir/guix, Nix's /nix/var/nix). */
  stateDir: string;
  /** The db.sqlite path in the image. */
  dbPath: string;
}

export const SCHEMA_VERSION: Record<DatabaseFlavor, number> = { guix: 7, nix: 10 };
const DEFAULT_STATE_DIR: Record<DatabaseFlavor, string> = { guix: "/var/guix", nix: "/nix/var/nix" };

/** The database the spec asks for, or undefined. The flavour defaults from the store dir (/nix/store: nix). */
export function databaseLayout(spec: Pick<ImageSpec, "database">, storeDir: string): DatabaseLayout | undefined {
  const db = spec.database;
  if (db === false || db === undefined) return undefined;
  const given = db === true ? {} : db;
  const flavor: DatabaseFlavor = given.flavor ?? (storeDir === "/nix/store" ? "nix" : "guix");
  const stateDir = (given.path ?? DEFAULT_STATE_DIR[flavor]).replace(/\/+$/, "") || "/";
  const base = stateDir === "/" ? "" : stateDir;
  return { flavor, stateDir, dbPath: `${base}/db/db.sqlite` };
}

/** The entries the database needs, in spec-independent order; `origin` names the key for error messages. */
export function databaseEntries(layout: DatabaseLayout, closure: Pick<Closure, "roots" | "profile">): CustomEntry[] {
  const base = layout.stateDir === "/" ? "" : layout.stateDir;
  const out: CustomEntry[] = [
    { path: layout.dbPath, type: "file", mode: "644", generated: layout.flavor === "guix" ? "guix-database" : "nix-database" },
    { path: `${base}/db/schema`, type: "file", mode: "644", content: String(SCHEMA_VERSION[layout.flavor]) },
  ];
  if (layout.flavor === "guix") {
    out.push({ path: `${base}/gcroots/profiles`, type: "symlink", target: `${base}/profiles` });
    if (closure.profile !== undefined) {
      out.push({ path: `${base}/profiles/per-user/root/guix-profile`, type: "symlink", target: "guix-profile-1-link" });
      out.push({ path: `${base}/profiles/per-user/root/guix-profile-1-link`, type: "symlink", target: closure.profile });
    } else {
      out.push({ path: `${base}/profiles/per-user/root`, type: "directory", mode: "755" });
    }
  } else {
    for (const root of closure.roots) {
      out.push({ path: `${base}/gcroots/docker/${root.slice(root.lastIndexOf("/") + 1)}`, type: "symlink", target: root });
    }
  }
  return out;
}
