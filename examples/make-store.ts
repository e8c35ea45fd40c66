/**
 * Assembles the example store: a small chroot-style store under examples/.store/ (logical store dir /gnu/store)
 * made from the host's own programs, so `npx layerpack build` on a fresh clone has something real to pack.
 *
 * Items (each `/gnu/store/<nix32 hash>-<name>`):
 *   glibc    lib/<loader>, lib/libc.so.6 (and any other glibc library the shell needs), copied from the host
 *   <lib>    one item per other shared library the shell needs (none for dash)
 *   <shell>  bin/<shell>, bin/sh -> <shell>, lib/<soname> -> /gnu/store/<lib item>/lib/<soname> for each library:
 *            the host binary's ELF interpreter is /lib64/..., so these links are what make its references real
 *   hello    bin/hello, a script whose shebang is the shell's store path
 *   profile  bin/ and lib/ symlinks to the items above, as a Guix profile has
 *
 * A hash is derived from the item's name and content (which includes the store paths it refers to), so the same
 * host gives the same paths and another host's libc gives other paths. Items are written to a temp dir and renamed
 * into place, then left read-only like a real store (files 0444/0555, dirs 0555); an existing item is kept as is.
 *
 * Run: `npx node examples/make-store.ts` (prints the profile's store path).
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { nix32Encode } from "../src/store/path.ts";

export const STORE_DIR = "/gnu/store";
export const GREETING = "Hello from layerpack!";

/** 32-char store hash of some bytes: sha256 folded to 20 bytes (as Nix compresses hashes), in nix32. */
export function storeHash(...parts: (string | Uint8Array)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  const full = h.digest();
  const folded = new Uint8Array(20);
  for (let i = 0; i < full.length; i++) folded[i % 20]! ^= full[i]!;
  return nix32Encode(folded);
}

export type DraftEntry =
  | { type: "file"; data: Buffer; executable: boolean }
  | { type: "symlink"; target: string };

/** An item before it is written: relative path -> entry (directories are implied by the paths). */
export interface ItemDraft {
  name: string;
  entries: Map<string, DraftEntry>;
}

/** Hash input: name, then every entry in sorted order with its type, executable bit and bytes or target. */
function itemPath(draft: ItemDraft): string {
  const h = createHash("sha256");
  h.update(`layerpack-example\0${draft.name}\0`);
  for (const rel of [...draft.entries.keys()].sort()) {
    const e = draft.entries.get(rel)!;
    if (e.type === "file") {
      h.update(`${rel}\0file\0${e.executable ? "x" : "-"}\0${e.data.length}\0`);
      h.update(e.data);
    } else {
      h.update(`${rel}\0symlink\0${e.target}\0`);
    }
  }
  return `${STORE_DIR}/${storeHash(h.digest())}-${draft.name}`;
}

/** Makes a tree writable again (store items are read-only) and removes it. */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const unlock = (p: string): void => {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return;
    fs.chmodSync(p, 0o755);
    for (const name of fs.readdirSync(p)) unlock(path.join(p, name));
  };
  unlock(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Sets directory modes to 0555 bottom-up, so a store item is read-only like in Guix. */
function lockDirs(dir: string): void {
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    if (ent.isDirectory()) lockDirs(path.join(dir, ent.name));
  }
  fs.chmodSync(dir, 0o555);
}

/** Writes a draft into `<storeRoot><dir>/<hash>-<name>` unless it is already there; returns the logical path. */
function writeItem(storeRoot: string, draft: ItemDraft): string {
  const logical = itemPath(draft);
  const final = path.join(storeRoot, logical);
  if (fs.existsSync(final)) return logical;
  const tmp = path.join(storeRoot, STORE_DIR, `.tmp-${process.pid}-${path.basename(logical)}`);
  removeTree(tmp);
  try {
    fs.mkdirSync(tmp, { recursive: true });
    for (const rel of [...draft.entries.keys()].sort()) {
      const e = draft.entries.get(rel)!;
      const host = path.join(tmp, rel);
      fs.mkdirSync(path.dirname(host), { recursive: true });
      if (e.type === "file") {
        fs.writeFileSync(host, e.data);
        fs.chmodSync(host, e.executable ? 0o555 : 0o444);
      } else {
        fs.symlinkSync(e.target, host);
      }
    }
    lockDirs(tmp);
    fs.renameSync(tmp, final);
  } catch (err) {
    removeTree(tmp);
    throw err;
  }
  return logical;
}

interface HostLibrary {
  soname: string;
  hostPath: string;
}

/** The shell's ELF interpreter and shared libraries, from `ldd`. */
function sharedLibraries(binary: string): { interpreter: HostLibrary; libs: HostLibrary[] } {
  let out: string;
  try {
    out = execFileSync("ldd", [binary], { encoding: "utf8" });
  } catch (cause) {
    throw new Error(`running ldd ${binary}: ${(cause as Error).message} (install Debian's libc-bin)`, { cause });
  }
  let interpreter: HostLibrary | undefined;
  const libs: HostLibrary[] = [];
  for (const line of out.split("\n")) {
    const arrow = /^\s*(\S+) => (\/\S+) \(/.exec(line);
    if (arrow) {
      libs.push({ soname: arrow[1]!, hostPath: arrow[2]! });
      continue;
    }
    const interp = /^\s*(\/\S+) \(/.exec(line);
    if (interp) interpreter = { soname: path.basename(interp[1]!), hostPath: interp[1]! };
  }
  if (!interpreter) throw new Error(`ldd ${binary}: no ELF interpreter found; the example needs a dynamically linked shell`);
  return { interpreter, libs };
}

/** Libraries that come from glibc itself and so belong in the glibc item. */
const GLIBC_LIB = /^(ld-linux.*|ld64.*|lib(c|m|dl|pthread|rt|resolv|util|crypt|anl|nsl|mvec)\.so\.\d+)$/;

function copyHostFile(hostPath: string): DraftEntry {
  const real = fs.realpathSync(hostPath);
  const st = fs.statSync(real);
  return { type: "file", data: fs.readFileSync(real), executable: (st.mode & 0o100) !== 0 };
}

/** The shell to pack: /bin/sh's real file (dash on Debian), else bash. */
function hostShell(): string {
  for (const candidate of ["/bin/sh", "/bin/bash"]) {
    if (fs.existsSync(candidate)) return fs.realpathSync(candidate);
  }
  throw new Error("no /bin/sh or /bin/bash on this host to build the example store from");
}

export interface ExampleStore {
  /** Chroot-style root: items live under `<storeRoot>/gnu/store/`. */
  storeRoot: string;
  /** Symlink to the profile item's logical path, as `guix package -p` leaves. */
  profileLink: string;
  /** Logical store paths of every item, sorted. */
  items: string[];
  /** Logical paths by role. */
  glibc: string;
  shell: string;
  hello: string;
  profile: string;
  /** File name of the ELF interpreter in glibc's and the profile's lib/ (e.g. ld-linux-x86-64.so.2). */
  loaderName: string;
}

export interface MakeExampleStoreOptions {
  /** Where to put the profile link; default `<outDir>/profile`. */
  profileLink?: string;
}

/** Builds (or reuses) the example store under `outDir`; idempotent, and the same host gives the same paths. */
export function makeExampleStore(outDir: string, options: MakeExampleStoreOptions = {}): ExampleStore {
  const storeRoot = path.resolve(outDir);
  fs.mkdirSync(path.join(storeRoot, STORE_DIR), { recursive: true });
  const shellBin = hostShell();
  const shellName = path.basename(shellBin);
  const { interpreter, libs } = sharedLibraries(shellBin);

  // glibc: the loader plus the glibc libraries; every other library is an item of its own.
  const glibc: ItemDraft = { name: "glibc", entries: new Map() };
  glibc.entries.set(`lib/${interpreter.soname}`, copyHostFile(interpreter.hostPath));
  const others = new Map<string, ItemDraft>();
  for (const lib of libs) {
    if (GLIBC_LIB.test(lib.soname)) {
      glibc.entries.set(`lib/${lib.soname}`, copyHostFile(lib.hostPath));
    } else {
      const name = lib.soname.replace(/\.so(\.\d+)*$/, "");
      others.set(lib.soname, { name, entries: new Map([[`lib/${lib.soname}`, copyHostFile(lib.hostPath)]]) });
    }
  }
  const glibcPath = writeItem(storeRoot, glibc);
  const libItem = new Map<string, string>(); // soname -> logical item path
  for (const lib of libs) libItem.set(lib.soname, GLIBC_LIB.test(lib.soname) ? glibcPath : writeItem(storeRoot, others.get(lib.soname)!));

  const shell: ItemDraft = { name: shellName, entries: new Map() };
  shell.entries.set(`bin/${shellName}`, copyHostFile(shellBin));
  if (shellName !== "sh") shell.entries.set("bin/sh", { type: "symlink", target: shellName });
  for (const [soname, item] of libItem) shell.entries.set(`lib/${soname}`, { type: "symlink", target: `${item}/lib/${soname}` });
  const shellPath = writeItem(storeRoot, shell);

  const script = `#!${shellPath}/bin/sh\necho "${GREETING}"\nif [ $# -gt 0 ]; then echo "arguments: $*"; fi\n`;
  const hello: ItemDraft = {
    name: "hello",
    entries: new Map([["bin/hello", { type: "file", data: Buffer.from(script), executable: true }]]),
  };
  const helloPath = writeItem(storeRoot, hello);

  // The profile's lib/ holds the loader and libraries so /lib64 and /lib can point at it inside the image.
  const profile: ItemDraft = { name: "profile", entries: new Map() };
  profile.entries.set("bin/hello", { type: "symlink", target: `${helloPath}/bin/hello` });
  profile.entries.set("bin/sh", { type: "symlink", target: `${shellPath}/bin/sh` });
  profile.entries.set(`bin/${shellName}`, { type: "symlink", target: `${shellPath}/bin/${shellName}` });
  profile.entries.set(`lib/${interpreter.soname}`, { type: "symlink", target: `${glibcPath}/lib/${interpreter.soname}` });
  for (const [soname, item] of libItem) profile.entries.set(`lib/${soname}`, { type: "symlink", target: `${item}/lib/${soname}` });
  const profilePath = writeItem(storeRoot, profile);

  // The link is replaced atomically so a concurrent reader never sees it missing.
  const profileLink = path.resolve(options.profileLink ?? path.join(storeRoot, "profile"));
  const current = fs.existsSync(profileLink) || isSymlink(profileLink) ? safeReadlink(profileLink) : undefined;
  if (current !== profilePath) {
    const tmpLink = `${profileLink}.tmp-${process.pid}`;
    fs.rmSync(tmpLink, { force: true });
    fs.symlinkSync(profilePath, tmpLink);
    fs.renameSync(tmpLink, profileLink);
  }

  const items = [glibcPath, ...new Set(libItem.values()), shellPath, helloPath, profilePath];
  return {
    storeRoot,
    profileLink,
    items: [...new Set(items)].sort(),
    glibc: glibcPath,
    shell: shellPath,
    hello: helloPath,
    profile: profilePath,
    loaderName: interpreter.soname,
  };
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function safeReadlink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const here = import.meta.dirname;
  const store = makeExampleStore(path.join(here, ".store"), { profileLink: path.join(here, "profile") });
  console.log(`example store: ${store.storeRoot} (${store.items.length} items under ${STORE_DIR})`);
  console.log(`profile: ${path.relative(process.cwd(), store.profileLink) || store.profileLink} -> ${store.profile}`);
}
