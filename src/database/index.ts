/**
 * The store database of an image: the closure's items with the NAR hashes and sizes computed while their layers
 * were written (or remembered with cached layers), registered at the image's creation time.
 */
import { BuildError } from "../errors.ts";
import type { Closure } from "../store/types.ts";
import { storeDatabaseBytes } from "./sqlite.ts";

export { databaseEntries, databaseLayout, SCHEMA_VERSION, type DatabaseFlavor, type DatabaseLayout } from "../plan/database-layout.ts";
export { storeDatabaseBytes, SCHEMA_SQL, type DatabaseInput, type RegisteredPath } from "./sqlite.ts";

export interface NarFacts {
  hash: string;
  size: number;
}

/** What the database records of the items besides the closure's own facts. */
export interface RegistrationFacts {
  /** Each item's NAR hash and size as computed while its layer was written, by store path. */
  nar: Readonly<Record<string, NarFacts>>;
  /** When the items count as registered: the image's creation time. */
  registrationTime: number;
}

/**
 * db.sqlite bytes for a `generated` entry. Every item needs its NAR facts; a size or hash that disagrees with what
 * the closure source said means the store changed under us (or its database is wrong), which is an error.
 */
export function databaseFor(generated: "guix-database" | "nix-database", closure: Pick<Closure, "items">, { nar, registrationTime }: RegistrationFacts): Buffer {
  const items = closure.items.map((it) => {
    const facts = nar[it.path];
    if (facts === undefined) throw new BuildError(`store database: no NAR hash was computed for ${it.path}`);
    if (facts.size !== it.narSize || (it.narHash !== undefined && it.narHash !== facts.hash)) {
      throw new BuildError(
        `store database: ${it.path} has NAR ${facts.hash} (${facts.size} bytes) in the store, but the closure source says ` +
          `${it.narHash ?? "(no hash)"} (${it.narSize} bytes); the store item changed or the store's database is wrong`,
      );
    }
    return { path: it.path, hash: facts.hash, narSize: facts.size, references: it.references };
  });
  return storeDatabaseBytes({ flavor: generated === "guix-database" ? "guix" : "nix", items, registrationTime });
}
