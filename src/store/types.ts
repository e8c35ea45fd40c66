/** Plain data produced by the resolve stage (src/store) and consumed by the planner and executor. */

/** Where the store lives. `dir` is the logical store directory as it appears in store paths and in the image
 * (`/gnu/store`, `/nix/store`); `root` is the host directory the store is found under (`/` for a real store,
 * or a chroot-style root such as the example store's), so an item's host path is `root + path`. */
export interface StoreLocation {
  dir: string;
  root: string;
}

export interface StoreItem {
  /** Logical store path, `<dir>/<32-char hash>-<name>`. */
  path: string;
  /** Size of the item's NAR serialisation in bytes (deterministic, independent of the file system). */
  narSize: number;
  /** Logical store paths this item refers to, sorted bytewise, without duplicates; may include itself. */
  references: string[];
  /** `sha256:<hex>` of the NAR, when the source knows it (database, closure-info). */
  narHash?: string;
}

/** One entry of a root system (`rootSystem`), as the resolve stage found it. */
export interface RootSystemEntry {
  /** Absolute image path, e.g. `/etc/passwd`. */
  path: string;
  hostPath: string;
  type: "file" | "directory" | "symlink" | "char" | "block" | "fifo";
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  /** Bytes of a regular file; 0 otherwise. */
  size: number;
  target?: string;
  /** 0 unless the root system keeps owners. */
  uid: number;
  gid: number;
  devmajor?: number;
  devminor?: number;
}

/** A provisioned root file system, listed (metadata only) by the resolve stage. */
export interface RootSystem {
  /** The directory as the spec writes it (goes into the plan). */
  source: string;
  /** Absolute host directory. */
  dir: string;
  keepOwners: boolean;
  allowDevices: boolean;
  /** In tar --sort=name order (parents first); the root directory itself is not an entry. */
  entries: RootSystemEntry[];
  /** Contents of its /etc/passwd and /etc/group when they are regular files (merged with `accounts`). */
  passwd?: string;
  group?: string;
}

export interface Closure {
  store: StoreLocation;
  /** The store paths the closure was computed from (the profile item, or `roots`), sorted. */
  roots: string[];
  /** The profile's store path when the spec has a profile. */
  profile?: string;
  /** Every item of the closure, sorted by path. */
  items: StoreItem[];
  /** The spec's `rootSystem`, listed. */
  rootSystem?: RootSystem;
}
