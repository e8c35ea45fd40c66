/**
 * `mkdir -p` one level at a time. Node's own recursive mkdirSync never returns under /proc (each mkdir there fails
 * with ENOENT, which it takes for a missing parent and retries for ever), and a cache or output directory is a
 * path anyone can set.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = fs.statSync(d, { throwIfNoEntry: false });
    if (st !== undefined) {
      // What exists must be a directory, as mkdir would have said.
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: "ENOTDIR", path: d });
      break;
    }
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // Made meanwhile by another build: fine when it is a directory now.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !fs.statSync(d).isDirectory()) throw err;
    }
  }
}

type Env = Record<string, string | undefined>;

/**
 * The user's home directory: $HOME when it is an absolute path, else the password database's, else none (a uid
 * without an entry, as `docker run -u 1234` gives). An empty or relative HOME (HOME= in a CI step) would make
 * ~/.cache and ~/.docker/config.json the current directory's — a checked-out repository's files taken for the
 * user's credentials.
 */
export function homeDir(env: Env): string | undefined {
  if (env.HOME && path.isAbsolute(env.HOME)) return env.HOME;
  try {
    const home = os.userInfo().homedir;
    return path.isAbsolute(home) ? home : undefined;
  } catch {
    return undefined;
  }
}

/** An XDG base directory variable, which the XDG spec says to ignore unless it is an absolute path. */
export function xdgDir(env: Env, name: "XDG_CACHE_HOME" | "XDG_CONFIG_HOME" | "XDG_RUNTIME_DIR"): string | undefined {
  const value = env[name];
  return value && path.isAbsolute(value) ? value : undefined;
}
