/**
 * Package names and versions from store names (`<hash>-<name>`), the only package metadata a closure has.
 *
 * The split follows Nix's builtins.parseDrvName (DrvName::DrvName, libstore names.cc): the name ends at the first `-`
 * followed by a character that is not an ASCII letter, and the version is everything after that dash. This is
 * slightly wider than "the first component starting with a digit": `foo-_1` and `foo-.git` also start a version,
 * as they do in Nix. Guix builds store names the same way (`<name>-<version>[-<output>]`), so one rule serves both.
 *
 * Non-default outputs are written after the version (`openssl-3.0.13-bin`, `gcc-13.2.0-lib`,
 * `glib-2.78.0-bin` in Guix). A trailing component that is a well-known output name is split off into `output`,
 * so the SBOM says openssl 3.0.13 rather than a version "3.0.13-bin"; other suffixes stay in the version, since
 * only the derivation knows its outputs. Names without a version (`profile`, `etc`, `hello-bin` of an
 * unversioned derivation) are kept whole: nothing says which part would be the output.
 */
import { HASH_PART_LENGTH, NIX32_ALPHABET } from "../store/path.ts";

export interface ParsedStoreName {
  /** Package name, e.g. `openssl` or `python3.11-requests`. */
  name: string;
  /** Version as parseDrvName gives it, without a recognised output suffix; undefined when there is none. */
  version?: string;
  /** The output name when the store name ends in a recognised one (`bin`, `dev`, `lib`, ...). */
  output?: string;
}

/**
 * Output names common in nixpkgs (multiple-outputs.sh, separateDebugInfo, gcc's libgcc) and Guix (`lib`, `bin`,
 * `doc`, `debug`, `static`, `include`). `out` is listed for completeness; the default output never appears.
 */
export const KNOWN_OUTPUTS: ReadonlySet<string> = new Set([
  "bin", "debug", "dev", "devdoc", "devman", "doc", "include", "info", "installedTests", "lib", "libgcc", "man",
  "modules", "out", "static", "terminfo",
]);

const hashPrefixRe = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}-`);

/** The store name of a path: its last component without the `<hash>-` prefix (kept whole if it has none). */
export function storeName(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf("/") + 1);
  return hashPrefixRe.test(base) ? base.slice(HASH_PART_LENGTH + 1) : base;
}

/** The hash part of a store path, or undefined when the last component is not `<32 nix32 chars>-<name>`. */
export function storeHash(storePath: string): string | undefined {
  const base = storePath.slice(storePath.lastIndexOf("/") + 1);
  return hashPrefixRe.test(base) ? base.slice(0, HASH_PART_LENGTH) : undefined;
}

const isAsciiLetter = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z]$/.test(c);

/** builtins.parseDrvName: `{ name, version }`, version "" when there is no version part. */
export function parseDrvName(s: string): { name: string; version: string } {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "-" && i + 1 < s.length && !isAsciiLetter(s[i + 1])) return { name: s.slice(0, i), version: s.slice(i + 1) };
  }
  return { name: s, version: "" };
}

/** Name, version and output of a store path or store name. */
export function parseStoreName(pathOrName: string): ParsedStoreName {
  const { name, version } = parseDrvName(storeName(pathOrName));
  if (version === "") return { name };
  const dash = version.lastIndexOf("-");
  const last = dash < 0 ? "" : version.slice(dash + 1);
  if (dash > 0 && KNOWN_OUTPUTS.has(last)) return { name, version: version.slice(0, dash), output: last };
  return { name, version };
}
