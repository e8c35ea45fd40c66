/**
 * The package update the rebuild and registry-cache benchmarks simulate: a store item copied under a new hash
 * (`storeHash(item, name, "v2")`), so both benchmarks update the same item to the same new store paths.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { removeTree, storeHash, STORE_DIR } from "../examples/make-store.ts";

/** Copies a store item under a new hash, replacing `replace` pairs in link targets and file contents. */
export function copyItem(o: { root: string; item: string; name: string; replace: [string, string][]; tweak?: (rel: string) => Buffer | undefined }): string {
  const target = `${STORE_DIR}/${storeHash(o.item, o.name, "v2")}-${o.name}`;
  const src = path.join(o.root, o.item);
  const dst = path.join(o.root, target);
  if (fs.existsSync(dst)) return target;
  const temp = `${dst}.tmp`;
  removeTree(temp);
  const sub = (s: string) => o.replace.reduce((acc, [a, b]) => acc.split(a).join(b), s);
  const walk = (rel: string) => {
    const from = path.join(src, rel);
    const to = path.join(temp, rel);
    const st = fs.lstatSync(from);
    if (st.isSymbolicLink()) fs.symlinkSync(sub(fs.readlinkSync(from)), to);
    else if (st.isDirectory()) {
      fs.mkdirSync(to, { recursive: true });
      for (const n of fs.readdirSync(from).sort()) walk(path.join(rel, n));
    } else {
      const data = o.tweak?.(rel) ?? fs.readFileSync(from);
      const text = data.toString("latin1");
      fs.writeFileSync(to, o.replace.some(([a]) => text.includes(a)) ? Buffer.from(sub(text), "latin1") : data, { mode: st.mode & 0o777 });
    }
  };
  walk("");
  fs.renameSync(temp, dst);
  return target;
}
