/**
 * `perms: [{ path: <glob>, uid, gid, mode }]` (nix2container's perms): ownership and mode overrides for the entries of
 * any layer whose absolute image path matches the glob. Globs: `*` and `?` within one path component, `**` across
 * components (`/a/**` matches everything below /a, not /a itself), `[...]` classes (`[!...]` negated), `\` escapes.
 * Rules apply in order; a later rule overrides the fields it sets. A glob that matches nothing is a warning for the
 * caller to show, never printed here.
 */
import type { Perm } from "../config/schema.ts";
import type { KeyedWarning } from "./types.ts";

export interface Owner {
  mode: number;
  uid: number;
  gid: number;
}

/** A glob as an anchored RegExp over absolute paths (a trailing / is ignored). */
export function compileGlob(glob: string): RegExp {
  const g = glob.length > 1 ? glob.replace(/\/+$/, "") : glob;
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === "*") {
      if (g[i + 1] === "*") {
        i++;
        // "**/" also matches zero directories: /a/**/b matches /a/b.
        if (g[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else {
          re += ".*";
        }
      } else {
        re += "[^/]*";
      }
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[") {
      const end = g.indexOf("]", i + 2);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = g.slice(i + 1, end);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^/" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "\\" && i + 1 < g.length) {
      re += g[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
  }
  return new RegExp(`^${re}$`, "s");
}

/** The glob's part before its first wildcard, cut after the last `/`: every path it matches starts with this. */
export function literalPrefix(glob: string): string {
  const at = glob.search(/[*?[\\]/);
  const lit = at < 0 ? glob : glob.slice(0, at);
  return at < 0 ? lit : lit.slice(0, lit.lastIndexOf("/") + 1);
}

/** Whether a rule could match something at or below `dir` (an absolute directory path). */
export function mayMatchUnder(glob: string, dir: string): boolean {
  const prefix = literalPrefix(glob);
  const d = dir.endsWith("/") ? dir : `${dir}/`;
  return d.startsWith(prefix) || prefix.startsWith(d) || `${prefix}/` === d;
}

export class PermsMatcher {
  readonly #rules: { glob: string; re: RegExp; uid?: number; gid?: number; mode?: number }[];
  /** Globs that matched at least one entry. */
  readonly matched = new Set<string>();

  constructor(rules: readonly Perm[]) {
    this.#rules = rules.map((r) => {
      const rule: { glob: string; re: RegExp; uid?: number; gid?: number; mode?: number } = { glob: r.path, re: compileGlob(r.path) };
      if (r.uid !== undefined) rule.uid = r.uid;
      if (r.gid !== undefined) rule.gid = r.gid;
      if (r.mode !== undefined) rule.mode = parseInt(r.mode, 8);
      return rule;
    });
  }

  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** The owner and mode of the entry at absolute path `p` after the rules; `base` when none matches. */
  apply(p: string, base: Owner): Owner {
    if (this.#rules.length === 0) return base;
    const path = p.length > 1 ? p.replace(/\/+$/, "") : p;
    let out = base;
    for (const r of this.#rules) {
      if (!r.re.test(path)) continue;
      this.matched.add(r.glob);
      out = { mode: r.mode ?? out.mode, uid: r.uid ?? out.uid, gid: r.gid ?? out.gid };
    }
    return out;
  }
}

/** One warning per rule whose glob matched no entry in any layer. */
export function unmatchedPermsWarnings(rules: readonly Perm[], matched: ReadonlySet<string>): KeyedWarning[] {
  return rules
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => !matched.has(r.path))
    .map(({ r, i }) => ({ key: ["perms", i], text: `${r.path} matches nothing in the image; check the path (globs: * ? ** [...])` }));
}
