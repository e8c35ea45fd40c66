/**
 * The root system (`rootSystem: DIR`): a provisioned root file system (what `guix system image` puts beside the
 * store) listed once, metadata only, in tar --sort=name order. The listing feeds the planner (duplicate paths,
 * /etc/passwd to merge, the entrypoint check) and the layer writer, which reads each file's bytes once.
 *
 * Modes are kept, owners become root unless `keepOwners`, symlinks stay symlinks, sockets are refused (a tar
 * cannot hold them), devices and fifos are refused unless `allowDevices`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { atConfigKey, StoreError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { RootSystem, RootSystemEntry } from "./types.ts";
import { sortNames } from "./walk.ts";

/** The spec's `rootSystem` with defaults filled in. */
export function rootSystemOptions(spec: Pick<ImageSpec, "rootSystem">): { dir: string; keepOwners: boolean; allowDevices: boolean } | undefined {
  const rs = spec.rootSystem;
  if (rs === undefined) return undefined;
  return typeof rs === "string" ? { dir: rs, keepOwners: false, allowDevices: false } : rs;
}

/** Linux's encoding of st_rdev (glibc's gnu_dev_major/minor). */
function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return { devmajor: major, devminor: minor };
}

function readSmall(file: string): string | undefined {
  try {
    return fs.lstatSync(file).isFile() ? fs.readFileSync(file, "utf8") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lists the root system of `spec.rootSystem` (relative to `configDir`). Throws StoreError when the directory is
 * missing, unreadable, or holds a socket (or a device or fifo without allowDevices), naming the file and key.
 */
export function readRootSystem(spec: Pick<ImageSpec, "rootSystem">, configDir: string): RootSystem | undefined {
  const opts = rootSystemOptions(spec);
  if (opts === undefined) return undefined;
  // Every failure here is about the directory the config names: located there (see LayerpackError.configKey).
  return atConfigKey(typeof spec.rootSystem === "string" ? ["rootSystem"] : ["rootSystem", "dir"], () => listRootSystem(opts, configDir));
}

function listRootSystem(opts: NonNullable<ReturnType<typeof rootSystemOptions>>, configDir: string): RootSystem {
  const dir = path.resolve(configDir, opts.dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (cause) {
    throw new StoreError(`rootSystem: ${dir}: ${(cause as NodeJS.ErrnoException).code === "ENOENT" ? "no such directory" : (cause as Error).message}`, { cause });
  }
  if (!st.isDirectory()) throw new StoreError(`rootSystem: ${dir} is not a directory`);
  const entries: RootSystemEntry[] = [];
  const walk = (hostDir: string, imageDir: string): void => {
    let names: string[];
    try {
      names = sortNames(fs.readdirSync(hostDir));
    } catch (cause) {
      throw new StoreError(`rootSystem: reading directory ${hostDir}: ${(cause as Error).message}`, { cause });
    }
    for (const name of names) {
      const hostPath = path.join(hostDir, name);
      const imagePath = `${imageDir === "/" ? "" : imageDir}/${name}`;
      const entry = statEntry(hostPath, imagePath, opts);
      entries.push(entry);
      if (entry.type === "directory") walk(hostPath, imagePath);
    }
  };
  walk(dir, "/");
  const out: RootSystem = { source: opts.dir, dir, keepOwners: opts.keepOwners, allowDevices: opts.allowDevices, entries };
  const passwd = readSmall(path.join(dir, "etc/passwd"));
  const group = readSmall(path.join(dir, "etc/group"));
  if (passwd !== undefined) out.passwd = passwd;
  if (group !== undefined) out.group = group;
  return out;
}

function statEntry(hostPath: string, imagePath: string, opts: { keepOwners: boolean; allowDevices: boolean }): RootSystemEntry {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(hostPath);
  } catch (cause) {
    throw new StoreError(`rootSystem: reading ${hostPath}: ${(cause as Error).message}`, { cause });
  }
  const base = { path: imagePath, hostPath, mode: st.mode & 0o7777, size: 0, uid: opts.keepOwners ? st.uid : 0, gid: opts.keepOwners ? st.gid : 0 };
  if (st.isFile()) return { ...base, type: "file", size: st.size };
  if (st.isDirectory()) return { ...base, type: "directory" };
  if (st.isSymbolicLink()) {
    try {
      return { ...base, mode: 0o777, type: "symlink", target: fs.readlinkSync(hostPath) };
    } catch (cause) {
      throw new StoreError(`rootSystem: reading link ${hostPath}: ${(cause as Error).message}`, { cause });
    }
  }
  if (st.isSocket()) throw new StoreError(`rootSystem: ${hostPath} is a socket; a layer cannot hold sockets (remove it from the root system)`);
  const kind = st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : st.isFIFO() ? "fifo" : undefined;
  if (kind === undefined) throw new StoreError(`rootSystem: ${hostPath} is a special file of unknown type`);
  if (!opts.allowDevices) {
    throw new StoreError(
      `rootSystem: ${hostPath} is a ${kind === "fifo" ? "fifo" : "device node"}; remove it, or set rootSystem.allowDevices: true to pack it`,
    );
  }
  return kind === "fifo" ? { ...base, type: kind } : { ...base, type: kind, ...devNumbers(st.rdev) };
}
