/**
 * Generates a realistic, deterministic chroot-style store for the build benchmark: hundreds of items (shared
 * libraries, applications, data packages) in a dependency DAG with real references (store paths inside binaries
 * and text files, symlinks into other items), tens of thousands of files, many symlinks, heavy-tailed (log-normal,
 * sigma 2.5) item sizes from bytes to ~100 MB, pseudo-random (incompressible) binaries and compressible text; plus a profile referencing the
 * applications and every item nobody else refers to, so the profile's closure is the whole store.
 *
 * Layout of `--out DIR`: root/gnu/store/<items>, profile -> /gnu/store/<hash>-profile, image.yaml (layerpack
 * config), store.json (parameters and every item with its size and references; written last, so its presence
 * means the store is complete).
 *
 * With `--like FILE` (a `nix path-info --json -r` output, e.g. ../shared/closures/debian-w2.pathinfo.json) the items
 * are those of the file instead: one per path (the profile item aside), its references the file's, its size the
 * file's narSize scaled so the store holds `--size-mb` in all (so the file's largest items dominate as they do
 * there); names, kinds (lib… → library, …-data/…-common/fonts/locales → data, else application) and file counts
 * follow from them. The file's own profile is replaced by the generated one (its closure is the whole store too).
 *
 * Run: `npx node bench/gen-store.ts [--size-mb 1024] [--out bench/.work/store-1024] [--items 400] [--files N] [--seed 1]
 *        [--like ../shared/closures/debian-w2.pathinfo.json]`
 */
import { createCipheriv, createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { removeTree, storeHash } from "../examples/make-store.ts";
import { narDigest } from "../src/store/nar.ts";
import { databaseFor, type NarFacts } from "../src/database/index.ts";

export const GENERATOR_VERSION = 2;
const STORE_DIR = "/gnu/store";
const MB = 1024 * 1024;
const CHUNK = 4 * MB;

export interface GenParams {
  sizeMb: number;
  items: number;
  files: number;
  seed: number;
  /** Item sizes and references follow this closure (see `likeClosure`); `items` is then its item count. */
  like?: LikeSource;
}

/** A closure to imitate: the file's name and digest (so a changed file regenerates the store) and its items. */
export interface LikeSource {
  file: string;
  sha256: string;
}

interface LikeItem {
  name: string;
  narSize: number;
  references: number[];
}

export type ItemKind = "lib" | "app" | "data" | "profile";

export interface GenItem {
  path: string;
  kind: ItemKind;
  /** Apparent bytes of its regular files. */
  bytes: number;
  files: number;
  symlinks: number;
  /** Store paths it refers to (not itself), sorted. */
  references: string[];
}

export interface GeneratedStore {
  version: number;
  params: GenParams;
  storeDir: string;
  /** Chroot-style root: items live under `<storeRoot>/gnu/store/`. */
  storeRoot: string;
  profileLink: string;
  profile: string;
  configPath: string;
  totalBytes: number;
  fileCount: number;
  symlinkCount: number;
  items: GenItem[];
}

export function defaultParams(sizeMb: number, likeFile?: string): GenParams {
  const files = Math.max(2000, Math.round(sizeMb * 39));
  if (likeFile === undefined) return { sizeMb, items: 400, files, seed: 1 };
  const like = { file: path.basename(likeFile), sha256: createHash("sha256").update(fs.readFileSync(likeFile)).digest("hex") };
  return { sizeMb, items: readLike(likeFile).length, files, seed: 1, like };
}

const likeFiles = new Map<string, string>();

/** Where `defaultParams` found the file of a `like` source (the store's parameters keep only its name). */
function likePath(like: LikeSource): string {
  const file = likeFiles.get(like.sha256);
  if (!file) throw new Error(`gen-store: the closure file ${like.file} was not given (defaultParams(size, file) reads it)`);
  return file;
}

/** The items of a `nix path-info --json -r` output (a list or an object keyed by path), the profile left out. */
function readLike(file: string): LikeItem[] {
  const raw = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  type Info = { path?: string; narSize: number; references?: string[] };
  const infos: [string, Info][] = Array.isArray(raw) ? (raw as Info[]).map((i) => [i.path!, i]) : Object.entries(raw as Record<string, Info>);
  const name = (p: string) => path.basename(p).slice(33);
  const kept = infos.filter(([p]) => name(p) !== "profile").sort(([a], [b]) => (a < b ? -1 : 1));
  const index = new Map(kept.map(([p], i) => [p, i]));
  likeFiles.set(createHash("sha256").update(fs.readFileSync(file)).digest("hex"), file);
  return kept.map(([p, info]) => ({
    name: name(p),
    narSize: info.narSize,
    references: [...new Set((info.references ?? []).filter((r) => r !== p && index.has(r)).map((r) => index.get(r)!))].sort((a, b) => a - b),
  }));
}

function likeKind(name: string): "lib" | "app" | "data" {
  if (/^lib/.test(name)) return "lib";
  if (/(-data|-common|fonts?-|locales|tzdata)/.test(name)) return "data";
  return "app";
}

/** The plans of a `like` store: the file's items, sizes scaled to the total, references as they are. */
function planLike(rng: Rng, p: GenParams, like: LikeItem[]): Plan[] {
  const bases = new Set<string>();
  const plans: Plan[] = like.map((it, i) => {
    let base = it.name.replace(/^lib/, "").replace(/[^A-Za-z0-9]+/g, "").slice(0, 24) || word(rng);
    while (bases.has(base)) base += word(rng, 1);
    bases.add(base);
    const name = it.name.replace(/[^A-Za-z0-9+._-]/g, "_");
    const path_ = `${STORE_DIR}/${storeHash(`bench-like-${p.seed}-${i}-${name}`)}-${name}`;
    return { index: i, kind: likeKind(it.name), name, base, path: path_, bytes: 0, files: 0, deps: it.references };
  });
  const sizes = distribute(p.sizeMb * MB, like.map((it) => it.narSize), Number.MAX_SAFE_INTEGER);
  assignFiles(rng, p, plans, sizes);
  return plans;
}

/** Spreads the store's file count over the items (more files in bigger items, more still in data packages). */
function assignFiles(rng: Rng, p: GenParams, plans: Plan[], sizes: number[]): void {
  const factor = { lib: 1, app: 1.5, data: 3 };
  const fileWeights = plans.map((pl, i) => Math.max(1, sizes[i]!) ** 0.4 * factor[pl.kind] * Math.exp(rng.normal() * 0.5));
  const files = distribute(Math.max(0, p.files - plans.length), fileWeights, Number.MAX_SAFE_INTEGER);
  plans.forEach((pl, i) => {
    pl.bytes = sizes[i]!;
    pl.files = files[i]! + 1;
  });
}

/** mulberry32: tiny, fast and deterministic; good enough for shaping data (the bulk bytes come from AES-CTR). */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed * 0x9e3779b9) >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }
}

const SYLLABLES = ["ar", "bel", "cor", "dun", "el", "fin", "gar", "hul", "is", "jor", "kal", "lum", "mor", "nex", "ol", "pra", "quin", "ros", "sil", "tav", "ur", "vex", "wil", "xan", "yor", "zel"];
const WORDS = ["the", "of", "buffer", "stream", "config", "value", "return", "struct", "error", "init", "module", "table", "index", "const", "static", "void", "size", "name", "data", "path", "option", "default", "version", "license", "copyright", "free", "software", "you", "can", "redistribute", "it", "and", "or", "modify", "under", "terms", "general", "public"];

function word(rng: Rng, syllables = 2 + rng.int(2)): string {
  let w = "";
  for (let i = 0; i < syllables; i++) w += rng.pick(SYLLABLES);
  return w;
}

/** A few MB of text (C-ish lines, prose, key = value) that slices of text files are cut from. */
function textPool(rng: Rng, bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  while (n < bytes) {
    const len = 3 + rng.int(12);
    const ws: string[] = [];
    for (let i = 0; i < len; i++) ws.push(rng.next() < 0.7 ? rng.pick(WORDS) : word(rng));
    const style = rng.int(3);
    const line = style === 0 ? `  ${ws.join(" ")};` : style === 1 ? ws.join(" ") : `${ws[0]}_${ws[1]} = ${ws.slice(2).join(" ")}`;
    lines.push(line);
    n += line.length + 1;
  }
  return Buffer.from(lines.join("\n") + "\n");
}

/** Splits `total` into parts proportional to `weights`, each capped at `cap` (the excess goes to the others). */
function distribute(total: number, weights: number[], cap: number): number[] {
  const out = weights.map(() => 0);
  const capped = new Set<number>();
  for (;;) {
    const free = weights.map((w, i) => (capped.has(i) ? 0 : w));
    const sum = free.reduce((a, b) => a + b, 0);
    const left = total - [...capped].length * cap;
    let changed = false;
    // Cumulative rounding: the parts add up to exactly `left`.
    let acc = 0;
    let prev = 0;
    for (let i = 0; i < weights.length; i++) {
      if (capped.has(i)) continue;
      acc += free[i]!;
      const upTo = sum > 0 ? Math.round((left * acc) / sum) : 0;
      out[i] = upTo - prev;
      prev = upTo;
      if (out[i]! > cap) {
        capped.add(i);
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (const i of capped) out[i] = cap;
  return out;
}

interface Plan {
  index: number;
  kind: Exclude<ItemKind, "profile">;
  name: string;
  base: string;
  path: string;
  bytes: number;
  files: number;
  deps: number[];
}

function planItems(rng: Rng, p: GenParams): Plan[] {
  if (p.like) return planLike(rng, p, readLike(likePath(p.like)));
  const names = new Set<string>();
  const plans: Plan[] = [];
  for (let i = 0; i < p.items; i++) {
    const early = i < p.items / 2;
    const r = rng.next();
    const kind: Plan["kind"] = i < 2 ? "lib" : r < (early ? 0.7 : 0.2) ? "lib" : r < (early ? 0.85 : 0.7) ? "app" : "data";
    let base = i === 0 ? "glibc" : i === 1 ? "gcc-lib" : word(rng);
    while (names.has(base)) base = word(rng);
    names.add(base);
    const version = `${1 + rng.int(9)}.${rng.int(20)}.${rng.int(10)}`;
    const name = kind === "lib" && i > 1 ? `lib${base}-${version}` : kind === "data" ? `${base}-data-${version}` : `${base}-${version}`;
    const depCount = kind === "lib" ? 1 + rng.int(4) : kind === "app" ? 2 + rng.int(10) : rng.int(3);
    const deps = new Set<number>();
    if (i > 0 && kind !== "data") deps.add(0);
    // Popular items are early ones: u^2.5 skews the choice toward index 0.
    for (let k = 0; k < depCount && i > 0; k++) deps.add(Math.floor(i * rng.next() ** 2.5));
    const path_ = `${STORE_DIR}/${storeHash(`bench-${p.seed}-${i}-${name}`)}-${name}`;
    plans.push({ index: i, kind, name, base, path: path_, bytes: 0, files: 0, deps: [...deps].sort((a, b) => a - b) });
  }
  const total = p.sizeMb * MB;
  const sizes = distribute(total, plans.map(() => Math.exp(rng.normal() * 2.5)), Math.min(100 * MB, Math.floor(total * 0.12)));
  assignFiles(rng, p, plans, sizes);
  return plans;
}

interface FileSpec {
  rel: string;
  size: number;
  binary: boolean;
  executable: boolean;
}

/** Paths for an item's files: the largest file is the main one (library, program); extension-less files only
 * appear in directories that hold no subdirectories, so a file never collides with a directory. */
function layoutFiles(rng: Rng, pl: Plan): { files: FileSpec[]; links: [string, string][] } {
  const weights = Array.from({ length: pl.files }, () => Math.exp(rng.normal() * 2));
  const sizes = distribute(pl.bytes, weights, Number.MAX_SAFE_INTEGER).sort((a, b) => b - a);
  const used = new Set<string>();
  const unique = (rel: string): string => {
    let r = rel;
    for (let k = 1; used.has(r); k++) r = rel.replace(/(\.[a-z0-9]+)?$/, `-${k}$1`);
    used.add(r);
    return r;
  };
  const files: FileSpec[] = [];
  const links: [string, string][] = [];
  const dirs = Array.from({ length: 1 + rng.int(6) }, () => word(rng, 1 + rng.int(2)));
  sizes.forEach((size, k) => {
    const r = rng.next();
    let f: FileSpec;
    if (pl.kind === "lib") {
      if (k === 0) {
        const so = `lib/lib${pl.base}.so.${1 + rng.int(5)}`;
        f = { rel: unique(`${so}.${rng.int(9)}.${rng.int(9)}`), size, binary: true, executable: true };
        links.push([unique(so), path.basename(f.rel)], [unique(`lib/lib${pl.base}.so`), path.basename(so)]);
      } else if (r < 0.5) f = { rel: unique(`include/${pl.base}/${word(rng)}.h`), size, binary: false, executable: false };
      else if (r < 0.8) f = { rel: unique(`lib/${pl.base}/${rng.pick(dirs)}/${word(rng)}.so`), size, binary: true, executable: true };
      else f = { rel: unique(`share/doc/${pl.name}/${word(rng).toUpperCase()}`), size, binary: false, executable: false };
    } else if (pl.kind === "app") {
      if (k === 0 || r < 0.1) {
        const prog = k === 0 ? pl.base : word(rng);
        f = { rel: unique(`bin/${prog}`), size, binary: true, executable: true };
        if (rng.next() < 0.4) links.push([unique(`bin/${word(rng, 1)}-${prog}`), path.basename(f.rel)]);
      } else if (r < 0.3) f = { rel: unique(`libexec/${pl.base}/${word(rng)}`), size, binary: true, executable: true };
      else if (r < 0.45) f = { rel: unique(`share/man/man1/${word(rng)}.1`), size, binary: false, executable: false };
      else f = { rel: unique(`share/${pl.base}/${rng.pick(dirs)}/${word(rng)}.${rng.pick(["scm", "py", "conf", "dat", "png"])}`), size, binary: r > 0.75, executable: false };
    } else {
      const depth = 1 + rng.int(3);
      const sub = Array.from({ length: depth }, () => rng.pick(dirs)).join("/");
      f = { rel: unique(`share/${pl.base}/${sub}/${word(rng)}.${rng.pick(["txt", "xml", "ttf", "bin", "json"])}`), size, binary: r < 0.5, executable: false };
    }
    files.push(f);
    // Relative links between an item's own files ("many symlinks").
    if (k > 0 && rng.next() < 0.08) links.push([unique(f.rel.replace(/(\.[a-z0-9]+)?$/, "-link$1")), path.basename(f.rel)]);
  });
  return { files, links };
}

/** Writes `size` bytes: binary from an AES-CTR keystream (incompressible), text sliced from the pool; the
 * references are patched in near the start (binary, NUL-terminated like a RUNPATH) or as a header (text). */
function writeFile(host: string, spec: FileSpec, refs: string[], ctx: { cipher: ReturnType<typeof createCipheriv>; pool: Buffer; rng: Rng; zero: Buffer }): number {
  const fd = fs.openSync(host, "w", spec.executable ? 0o555 : 0o444);
  let written = 0;
  try {
    if (spec.binary) {
      const size = Math.max(spec.size, refs.reduce((n, r) => n + r.length + 1, 0));
      while (written < size) {
        const buf = ctx.cipher.update(ctx.zero.subarray(0, Math.min(CHUNK, size - written)));
        if (written === 0) {
          let off = Math.min(64, Math.max(0, buf.length - refs.reduce((n, r) => n + r.length + 1, 0)));
          for (const r of refs) off += buf.write(`${r}\0`, off, "latin1");
        }
        written += fs.writeSync(fd, buf);
      }
    } else {
      const header = Buffer.from(refs.map((r) => `prefix=${r}\n`).join(""));
      written += fs.writeSync(fd, header);
      let at = ctx.rng.int(ctx.pool.length);
      while (written < spec.size) {
        const n = Math.min(spec.size - written, ctx.pool.length - at);
        written += fs.writeSync(fd, ctx.pool, at, n);
        at = 0;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** Generates the store into `out` (which must not exist or be empty). */
export function generateStore(out: string, params: GenParams): GeneratedStore {
  const outDir = path.resolve(out);
  const storeRoot = path.join(outDir, "root");
  const storeHost = path.join(storeRoot, STORE_DIR);
  fs.mkdirSync(storeHost, { recursive: true });
  const rng = new Rng(params.seed);
  const pool = textPool(rng, 4 * MB);
  const zero = Buffer.alloc(CHUNK);
  const plans = planItems(rng, params);
  const referrers = new Set<number>();
  const items: GenItem[] = [];

  for (const pl of plans) {
    const { files, links } = layoutFiles(rng, pl);
    const key = createHash("sha256").update(`bench-${params.seed}-${pl.path}`).digest();
    const ctx = { cipher: createCipheriv("aes-256-ctr", key, Buffer.alloc(16)), pool, rng, zero };
    // Each dependency is referenced once: by a symlink (lib/deps/<name>) or inside one of the item's files.
    const refsOf = new Map<number, string[]>();
    for (const d of pl.deps) {
      referrers.add(d);
      const dep = plans[d]!;
      if (rng.next() < 0.3) links.push([`lib/deps/${dep.name}`, dep.path]);
      else {
        const k = rng.int(files.length);
        refsOf.set(k, [...(refsOf.get(k) ?? []), dep.path]);
      }
    }
    const dirs = new Set<string>();
    const mkdir = (rel: string): void => {
      for (let d = path.dirname(rel); d !== "." && !dirs.has(d); d = path.dirname(d)) dirs.add(d);
      fs.mkdirSync(path.join(storeHost, path.basename(pl.path), path.dirname(rel)), { recursive: true });
    };
    let bytes = 0;
    files.forEach((f, k) => {
      mkdir(f.rel);
      bytes += writeFile(path.join(storeHost, path.basename(pl.path), f.rel), f, refsOf.get(k) ?? [], ctx);
    });
    for (const [rel, target] of links) {
      mkdir(rel);
      fs.symlinkSync(target, path.join(storeHost, path.basename(pl.path), rel));
    }
    lockItem(path.join(storeHost, path.basename(pl.path)), dirs);
    const references = pl.deps.map((d) => plans[d]!.path).sort();
    items.push({ path: pl.path, kind: pl.kind, bytes, files: files.length, symlinks: links.length, references });
  }

  // The profile: links to every application and every item nobody refers to, so its closure is everything.
  const profileName = "profile";
  const profileRefs = plans.filter((pl) => pl.kind === "app" || !referrers.has(pl.index));
  const profilePath = `${STORE_DIR}/${storeHash(`bench-${params.seed}-profile-${profileRefs.map((p) => p.path).join(",")}`)}-${profileName}`;
  const profileHost = path.join(storeHost, path.basename(profilePath));
  const profileDirs = new Set<string>(["bin", "share", "lib"]);
  for (const d of profileDirs) fs.mkdirSync(path.join(profileHost, d), { recursive: true });
  for (const pl of profileRefs) {
    const rel = pl.kind === "app" ? `bin/${pl.base}` : pl.kind === "lib" ? `lib/${pl.base}` : `share/${pl.base}`;
    const target = pl.kind === "app" ? `${pl.path}/bin/${pl.base}` : pl.path;
    fs.symlinkSync(target, path.join(profileHost, rel));
  }
  lockItem(profileHost, profileDirs);
  items.push({ path: profilePath, kind: "profile", bytes: 0, files: 0, symlinks: profileRefs.length, references: profileRefs.map((p) => p.path).sort() });
  items.sort((a, b) => (a.path < b.path ? -1 : 1));

  const profileLink = path.join(outDir, "profile");
  fs.symlinkSync(profilePath, profileLink);
  const configPath = path.join(outDir, "image.yaml");
  writeConfig(configPath, { storeRoot, profileLink, compression: "none", output: path.join(outDir, "image.tar") });
  const store: GeneratedStore = {
    version: GENERATOR_VERSION,
    params,
    storeDir: STORE_DIR,
    storeRoot,
    profileLink,
    profile: profilePath,
    configPath,
    totalBytes: items.reduce((n, i) => n + i.bytes, 0),
    fileCount: items.reduce((n, i) => n + i.files, 0),
    symlinkCount: items.reduce((n, i) => n + i.symlinks, 0),
    items,
  };
  fs.writeFileSync(path.join(outDir, "store.json"), JSON.stringify(store, null, 1) + "\n");
  return store;
}

/** Store items are read-only: directories 0555, deepest first (files were created 0444/0555). */
function lockItem(itemHost: string, dirs: Set<string>): void {
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) fs.chmodSync(path.join(itemHost, d), 0o555);
  fs.chmodSync(itemHost, 0o555);
}

/** A layerpack config for the generated store (absolute paths: the work dir is machine-local anyway). */
export function writeConfig(
  file: string,
  o: {
    storeRoot: string;
    profileLink: string;
    compression: "none" | "gzip" | "zstd";
    output: string;
    format?: "docker-archive" | "oci-layout" | "oci-archive";
    /** A references graph (writeGraph) to read the closure from; sizes then come from walking the items. */
    graph?: string;
    /** A store database (ensureDatabase) to read the closure from, sizes included; wins over `graph`. */
    database?: string;
  },
): void {
  const spec = {
    name: "bench",
    tag: "latest",
    store: { dir: STORE_DIR, root: o.storeRoot },
    profile: o.profileLink,
    closure: o.database ? { from: "database", file: o.database } : o.graph ? { from: "guix-graph", file: o.graph } : { from: "scan" },
    layers: { max: 100 },
    compression: o.compression,
    output: o.format ? { format: o.format, path: o.output } : { path: o.output },
  };
  fs.writeFileSync(file, stringify(spec));
}

/**
 * Writes the store's references graph (the format of Guix's #:references-graphs and Nix's exportReferencesGraph:
 * per item its path, an empty deriver line, the number of references and the references) and returns its path.
 */
export function writeGraph(store: GeneratedStore, file: string): string {
  const lines = store.items.flatMap((i) => [i.path, "", String(i.references.length), ...i.references]);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/**
 * The store's own database, where Guix keeps it (root/var/guix/db/db.sqlite, so `closure: {from: auto}` finds it
 * too): every item with its references and its NAR hash and size, as a Guix or Nix host has them. Written once per
 * generated store (hashing every item takes a few seconds) and reused; returns its path.
 */
export function ensureDatabase(store: GeneratedStore): string {
  const file = path.join(store.storeRoot, "var/guix/db/db.sqlite");
  const made = fs.statSync(file, { throwIfNoEntry: false });
  if (made && made.mtimeMs >= fs.statSync(path.join(path.dirname(store.storeRoot), "store.json")).mtimeMs) return file;
  const nar: Record<string, NarFacts> = {};
  const items = store.items.map((it) => {
    nar[it.path] = narDigest(path.join(store.storeRoot, it.path), { label: it.path });
    return { path: it.path, narSize: nar[it.path]!.size, references: [...it.references].sort() };
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp`;
  fs.writeFileSync(temp, databaseFor("guix-database", { items }, { nar, registrationTime: 1 }));
  fs.renameSync(temp, file);
  return file;
}

/** The directory name under bench/.work of a generated store: `store-<size>` or `store-<closure>-<size>`. */
export function storeDirName(params: GenParams): string {
  return params.like ? `store-${params.like.file.replace(/\.pathinfo\.json$|\.json$/, "")}-${params.sizeMb}` : `store-${params.sizeMb}`;
}

/** The store in `out` when it was generated with the same parameters and version, else undefined. */
export function loadGenerated(out: string, params: GenParams): GeneratedStore | undefined {
  try {
    const store = JSON.parse(fs.readFileSync(path.join(out, "store.json"), "utf8")) as GeneratedStore;
    const same = store.version === GENERATOR_VERSION && JSON.stringify(store.params) === JSON.stringify(params);
    return same ? store : undefined;
  } catch {
    return undefined;
  }
}

/** Reuses `out` when it holds the same store, else regenerates it from scratch. */
export function ensureStore(out: string, params: GenParams): { store: GeneratedStore; reused: boolean } {
  const existing = loadGenerated(out, params);
  if (existing) return { store: existing, reused: true };
  removeTree(out);
  return { store: generateStore(out, params), reused: false };
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const opt = { type: "string" } as const;
  const { values } = parseArgs({ options: { "size-mb": { ...opt, default: "1024" }, out: opt, items: opt, files: opt, seed: opt, like: opt } });
  const sizeMb = Number(values["size-mb"]);
  const d = defaultParams(sizeMb, values.like);
  const params: GenParams = { ...d, items: Number(values.items ?? d.items), files: Number(values.files ?? d.files), seed: Number(values.seed ?? d.seed) };
  if (values.like && values.items) {
    console.error("gen-store: --items comes from the --like file");
    process.exit(2);
  }
  if (![params.sizeMb, params.items, params.files, params.seed].every((v) => Number.isInteger(v) && v > 0)) {
    console.error("gen-store: --size-mb, --items, --files and --seed must be positive integers");
    process.exit(2);
  }
  const t0 = performance.now();
  const { store, reused } = ensureStore(values.out ?? path.join(import.meta.dirname, ".work", storeDirName(params)), params);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`${reused ? "reused" : "generated"} ${store.items.length} items, ${store.fileCount} files, ${store.symlinkCount} symlinks, ${(store.totalBytes / MB).toFixed(0)} MiB in ${secs}s`);
  console.log(`config: ${store.configPath}`);
}
