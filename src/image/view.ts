/**
 * Looks paths up in the image's final file system view (store items of the closure, the root system, the
 * customisation entries on top)
 * without building it, so the entrypoint can be checked before anything is written.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { aboutConfigKey, PlanError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { KeyedWarning } from "./types.ts";
import type { CustomEntry } from "../plan/types.ts";
import type { Closure, RootSystemEntry } from "../store/types.ts";

type Node = { type: "directory" | "file" | "symlink"; mode: number; target?: string } | undefined;

export class ImageView {
  readonly #closure: Closure;
  readonly #items: Set<string>;
  readonly #entries = new Map<string, CustomEntry>();
  readonly #implicitDirs = new Set<string>();
  readonly #rootSystem = new Map<string, RootSystemEntry>();

  constructor(closure: Closure, entries: CustomEntry[]) {
    this.#closure = closure;
    this.#items = new Set(closure.items.map((i) => i.path));
    for (const e of entries) this.#entries.set(e.path, e);
    for (const p of [...entries.map((e) => e.path), closure.store.dir]) {
      for (let d = path.posix.dirname(p); d !== "/"; d = path.posix.dirname(d)) this.#implicitDirs.add(d);
    }
    this.#implicitDirs.add(closure.store.dir);
    for (const e of closure.rootSystem?.entries ?? []) this.#rootSystem.set(e.path, e);
  }

  #node(p: string): Node {
    const entry = this.#entries.get(p);
    if (entry) {
      if (entry.type === "symlink") return { type: "symlink", mode: 0o777, target: entry.target };
      return { type: entry.type, mode: parseInt(entry.mode, 8) };
    }
    const low = this.#rootSystem.get(p);
    if (low) {
      if (low.type === "symlink") return { type: "symlink", mode: 0o777, target: low.target! };
      return { type: low.type === "directory" ? "directory" : "file", mode: low.type === "file" ? low.mode : 0 };
    }
    const dir = this.#closure.store.dir;
    if (p.startsWith(`${dir}/`)) {
      const item = p.split("/").slice(0, dir.split("/").length + 1).join("/");
      if (!this.#items.has(item)) return undefined;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(this.#closure.store.root, p));
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) return { type: "symlink", mode: 0o777, target: fs.readlinkSync(path.join(this.#closure.store.root, p)) };
      return { type: st.isDirectory() ? "directory" : "file", mode: st.mode & 0o7777 };
    }
    return this.#implicitDirs.has(p) || p === "/" ? { type: "directory", mode: 0o755 } : undefined;
  }

  /** Follows symlinks like the kernel would; returns the final path and node, or why it fails. */
  resolve(p: string): { path: string; node: NonNullable<Node> } | { error: string } {
    let pending = p.split("/").filter(Boolean);
    let current = "/";
    for (let hops = 0; pending.length > 0; ) {
      const name = pending.shift()!;
      if (name === ".") continue;
      if (name === "..") {
        current = path.posix.dirname(current);
        continue;
      }
      const next = path.posix.join(current, name);
      const node = this.#node(next);
      if (!node) return { error: `${next} does not exist in the image` };
      if (node.type === "symlink") {
        if (++hops > 40) return { error: `too many levels of symbolic links at ${next}` };
        const target = node.target!;
        pending = [...target.split("/").filter(Boolean), ...pending];
        current = target.startsWith("/") ? "/" : current;
        continue;
      }
      if (pending.length > 0 && node.type !== "directory") return { error: `${next} is not a directory` };
      current = next;
    }
    const node = this.#node(current);
    return node ? { path: current, node } : { error: `${current} does not exist in the image` };
  }

  /**
   * Throws a PlanError (about the key `entrypoint`) unless `entrypoint` resolves to an executable regular file in
   * the image; `written` is the config's spelling, named when it differs (relative to the profile).
   */
  checkEntrypoint(entrypoint: string, written: string = entrypoint): void {
    const found = this.resolve(entrypoint);
    const why = "error" in found ? found.error : found.node.type !== "file" ? `${found.path} is a ${found.node.type}, not a file` : (found.node.mode & 0o111) === 0 ? `${found.path} is not executable` : undefined;
    if (why === undefined) return;
    const relative = written === entrypoint ? "" : ` (${written} is relative to the profile)`;
    const what = why.startsWith(`${entrypoint} `) ? why : `${entrypoint}: ${why}`;
    throw aboutConfigKey(new PlanError(`entrypoint: ${what}${relative}`), ["entrypoint"]);
  }

  /**
   * Warnings for the links `symlinks` and `paths` make whose target is not in the image (a typo: /bin=bni).
   * Targets under the file systems a runtime mounts (/proc, /dev, ...) are not looked for.
   */
  danglingLinks(spec: Pick<ImageSpec, "symlinks" | "paths">): KeyedWarning[] {
    const out: KeyedWarning[] = [];
    const check = (key: (string | number)[], link: string): void => {
      const entry = this.#entries.get("/" + link.split("/").filter((c) => c !== "" && c !== ".").join("/"));
      if (entry?.type !== "symlink") return;
      const target = entry.target.startsWith("/") ? entry.target : path.posix.join(path.posix.dirname(entry.path), entry.target);
      if (RUNTIME_MOUNTS.some((m) => target === m || target.startsWith(`${m}/`))) return;
      const found = this.resolve(entry.path);
      if (!("error" in found)) return;
      // The common case, the target itself missing, said without its path twice.
      const why = found.error === `${path.posix.normalize(target)} does not exist in the image` ? "not in the image" : found.error;
      out.push({ key, text: `${entry.path} -> ${entry.target}: ${why}, so the link dangles; check the target` });
    };
    spec.symlinks.forEach((s, i) => check(["symlinks", i], s.slice(0, Math.max(0, s.indexOf("=")))));
    spec.paths.forEach((p, i) => p.type === "symlink" && check(["paths", i], p.path));
    return out;
  }
}

/** What the runtime mounts over the image: links into them are resolved when the container runs. */
const RUNTIME_MOUNTS = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/run"];
