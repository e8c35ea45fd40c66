/**
 * `mkdir -p` one level at a time. Node's own recursive mkdirSync never returns under /proc (each mkdir there fails
 * with ENOENT, which it takes for a missing parent and retries for ever), and a cache or output directory is a
 * path anyone can set.
 */
import * as fs from "node:fs";
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
