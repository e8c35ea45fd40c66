/**
 * Store paths: parsing, the nix32 hash encoding, host paths of a chroot-style store, and following profile links
 * to the store item they name.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StoreError } from "../errors.ts";
import type { StoreLocation } from "./types.ts";
import { byBytes } from "../util/bytes.ts";

export { byBytes };

/** Hash alphabet of store paths (nix32): digits and lowercase letters without e, o, t, u. */
export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
export const HASH_PART_LENGTH = 32;

const hashPartRe = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}$`);
const itemNameRe = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}-[^/\\0]+$`);

export interface ParsedStorePath {
  /** Store directory, e.g. `/gnu/store`. */
  dir: string;
  /** The 32-char nix32 hash part. */
  hash: string;
  /** The name after the hash, e.g. `hello-2.12`. */
  name: string;
  /** Path below the item (`bin/hello`), "" when the path names the item itself. */
  sub: string;
}

/** Whether a file name in a store directory looks like a store item (`<hash>-<name>`). */
export function isItemName(name: string): boolean {
  return itemNameRe.test(name);
}

/** Parses `path` as `<storeDir>/<hash>-<name>[/sub]`; undefined when it is not below `storeDir` or malformed. */
export function parseStorePath(p: string, storeDir: string): ParsedStorePath | undefined {
  const prefix = storeDir.endsWith("/") ? storeDir : `${storeDir}/`;
  if (!p.startsWith(prefix)) return undefined;
  const rest = p.slice(prefix.length);
  const slash = rest.indexOf("/");
  const item = slash < 0 ? rest : rest.slice(0, slash);
  if (!isItemName(item)) return undefined;
  const sub = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
  return { dir: prefix.slice(0, -1), hash: item.slice(0, HASH_PART_LENGTH), name: item.slice(HASH_PART_LENGTH + 1), sub };
}

/** Whether `p` is a top-level store item of `storeDir` (not a path inside one). */
export function isStorePath(p: string, storeDir: string): boolean {
  const parsed = parseStorePath(p, storeDir);
  return parsed !== undefined && parsed.sub === "" && !p.endsWith("/");
}

/** The 32-char hash part of a store path (the file name's first 32 chars). */
export function hashPart(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf("/") + 1);
  const hash = base.slice(0, HASH_PART_LENGTH);
  if (base[HASH_PART_LENGTH] !== "-" || !hashPartRe.test(hash)) {
    throw new StoreError(`${storePath} is not a store path (<dir>/<32 nix32 chars>-<name>)`);
  }
  return hash;
}

/** The top-level item a path inside the store belongs to. */
export function itemOf(p: string, storeDir: string): string | undefined {
  const parsed = parseStorePath(p, storeDir);
  return parsed && `${parsed.dir}/${parsed.hash}-${parsed.name}`;
}

/** Host path of a logical path: `root + path`; a root of "/" means the real path. */
export function hostPath(store: StoreLocation, logicalPath: string): string {
  if (store.root === "/" || store.root === "") return logicalPath;
  return path.join(store.root, logicalPath);
}

/** Logical path of a host path under the store root, undefined when it lies outside the root. */
export function logicalPath(store: StoreLocation, host: string): string | undefined {
  if (store.root === "/" || store.root === "") return host;
  const root = path.resolve(store.root);
  if (host === root) return "/";
  return host.startsWith(`${root}/`) ? host.slice(root.length) : undefined;
}

function describeStore(store: StoreLocation): string {
  return store.root === "/" ? store.dir : `${store.dir} (under root ${store.root})`;
}

const MAX_LINKS = 64;

/**
 * Follows a profile link (e.g. `result -> /nix/store/...` or `profile -> profile-2-link -> /gnu/store/...-profile`)
 * to the top-level store item it names. Absolute link targets are read chroot-style, through `store.root`;
 * relative ones against the link's directory. `profilePath` is a host path, or a logical store path.
 */
export function resolveProfile(store: StoreLocation, profilePath: string): string {
  // Not read as a host path: under store.root that looked on the host and said the item does not exist.
  if (profilePath.startsWith(`${store.dir}/`) && itemOf(profilePath, store.dir) === undefined) {
    const name = profilePath.slice(store.dir.length + 1).split("/")[0]!;
    throw new StoreError(`profile ${profilePath}: ${name} is not a store item name (<32 nix32 characters>-<name>, e.g. ${store.dir}/${"0".repeat(32)}-hello-2.12)`);
  }
  const chain: string[] = [profilePath];
  let host = isStorePath(profilePath, store.dir) || itemOf(profilePath, store.dir) ? hostPath(store, profilePath) : path.resolve(profilePath);
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    const logical = logicalPath(store, host);
    const item = logical === undefined ? undefined : itemOf(logical, store.dir);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host);
    } catch (cause) {
      const via = chain.length > 1 ? ` (via ${chain.join(" -> ")})` : "";
      // An absolute link target is looked up under store.root, which surprises when the link names a host path.
      const rooted = store.root !== "/" && chain.length > 1 && path.isAbsolute(chain.at(-1)!) ? `; absolute link targets are read under store.root ${store.root}, as ${host}` : "";
      // The logical path only where it names something in the store (`/nonexist` under store.root says nothing).
      const missing = logical !== undefined && item !== undefined ? logical : host;
      throw new StoreError(`profile ${profilePath}${missing === profilePath ? "" : `: ${missing}`} does not exist${via}${rooted}`, { cause });
    }
    if (logical !== undefined && item === logical) return item;
    if (!st.isSymbolicLink()) {
      if (item !== undefined) {
        throw new StoreError(
          `profile ${profilePath} points at ${logical}, inside the store item ${item}; point it at the item itself`,
        );
      }
      // The usual cause: a Nix profile with the default store, or the other way round.
      const where = logical ?? host;
      const other = ["/nix/store", "/gnu/store"].find((d) => d !== store.dir && [where, ...chain].some((t) => t.startsWith(`${d}/`)));
      throw new StoreError(
        `profile ${profilePath} resolves to ${where}, which is outside the store ${describeStore(store)}; ` +
          (other ? `for a profile in ${other}, set store: ${other}` : `give a store item or a symlink to one`),
      );
    }
    const target = fs.readlinkSync(host);
    chain.push(target);
    if (path.isAbsolute(target)) host = hostPath(store, path.posix.normalize(target));
    else host = path.resolve(path.dirname(host), target);
  }
  throw new StoreError(`profile ${profilePath}: too many levels of symbolic links (${chain.slice(0, 6).join(" -> ")} ...)`);
}

/**
 * Resolves `roots: [...]` entries: each a logical store path or a host symlink to one (see resolveProfile).
 * Returns the store paths sorted and deduplicated.
 */
export function resolveRoots(store: StoreLocation, roots: string[]): string[] {
  const out = new Set<string>();
  for (const root of roots) {
    try {
      out.add(resolveProfile(store, root));
    } catch (err) {
      if (err instanceof StoreError) throw new StoreError(err.message.replace(/^profile /, "root "), { cause: err.cause });
      throw err;
    }
  }
  return [...out].sort(byBytes);
}


// --- nix32 -------------------------------------------------------------------------------------------------------

const NIX32_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) NIX32_VALUE[NIX32_ALPHABET.charCodeAt(i)] = i;

/** Nix's base32: least significant 5-bit group last in the string. */
export function nix32Encode(bytes: Uint8Array): string {
  const len = Math.ceil((bytes.length * 8) / 5);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const lo = bytes[i]! >> j;
    const hi = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += NIX32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/** Decodes Nix's base32 into `size` bytes; undefined when the text is not valid nix32 of that size. */
export function nix32Decode(text: string, size: number): Uint8Array | undefined {
  if (text.length !== Math.ceil((size * 8) / 5)) return undefined;
  const out = new Uint8Array(size);
  for (let n = 0; n < text.length; n++) {
    const code = text.charCodeAt(text.length - 1 - n);
    const digit = code < 128 ? NIX32_VALUE[code]! : -1;
    if (digit < 0) return undefined;
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < size) out[i + 1]! |= carry;
    else if (carry !== 0) return undefined;
  }
  return out;
}

/**
 * Normalises a sha256 NAR hash as stores write it (`sha256:<hex>`, `sha256:<nix32>`, bare hex or nix32, or SRI
 * `sha256-<base64>`) to `sha256:<lowercase hex>`; undefined when it is none of those.
 */
export function normaliseNarHash(text: string): string | undefined {
  let body = text.trim();
  if (body.startsWith("sha256-")) {
    const b64 = body.slice(7);
    if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) return undefined;
    return `sha256:${Buffer.from(b64, "base64").toString("hex")}`;
  }
  if (body.startsWith("sha256:")) body = body.slice(7);
  if (/^[0-9a-fA-F]{64}$/.test(body)) return `sha256:${body.toLowerCase()}`;
  if (body.length === 52) {
    const bytes = nix32Decode(body, 32);
    if (bytes) return `sha256:${Buffer.from(bytes).toString("hex")}`;
  }
  return undefined;
}
