/**
 * Large stores for the report tests, made by code: a closure from bench/closures.ts (a distribution-shaped DAG of
 * any size) written as a Nix closureInfo directory (registration with NAR sizes, so nothing is hashed) plus an
 * empty file per item in a chroot-style store, and a config that reads it. 4000 items take well under a second.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { distroClosure, storePath, updateClosure } from "../../bench/closures.ts";
import type { Closure } from "../../src/store/types.ts";
import { byBytes } from "../../src/util/bytes.ts";

/** Store item names no report may let through as markup (no `/`: a store name cannot hold one). */
export const HOSTILE_NAMES = [`x<img src=x onerror=alert(1)>`, `"'><svg onload=alert(2)>&amp;<!--`];

/** A closure of `items` items (two of them with hostile names), and the same after updating a library. */
export function bigClosures(items: number, seed = 7): { old: Closure; updated: Closure } {
  const d = distroClosure({ items: items - HOSTILE_NAMES.length, totalBytes: 3 * 1024 ** 3, seed });
  const profile = d.closure.profile!;
  const hostile = HOSTILE_NAMES.map((name, i) => ({ path: storePath(name), narSize: 40_000_000 + i * 7_000_000, references: [] as string[] }));
  const withHostile: Closure = {
    ...d.closure,
    items: [...d.closure.items.map((it) => (it.path === profile ? { ...it, references: [...it.references, ...hostile.map((h) => h.path)].sort(byBytes) } : it)), ...hostile].sort((a, b) =>
      byBytes(a.path, b.path),
    ),
  };
  // A library in the middle of the graph: some dependents change, most items stay.
  const libs = withHostile.items.filter((it) => /-lib\d+-/.test(it.path));
  const target = libs[Math.floor(libs.length / 2)]!.path;
  return { old: withHostile, updated: updateClosure(withHostile, target, seed + 100) };
}

/**
 * Writes `closure` under `dir`: the items as empty files in `dir/store` (shared by several closures), the
 * closureInfo in `dir/<config>-closure`, and the config `dir/<config>.yaml` for image `name`; returns its path.
 */
export function writeClosureConfig(dir: string, config: string, name: string, closure: Closure): string {
  const storeRoot = path.join(dir, "store");
  fs.mkdirSync(path.join(storeRoot, closure.store.dir), { recursive: true });
  for (const it of closure.items) {
    const host = path.join(storeRoot, it.path);
    if (!fs.existsSync(host)) fs.writeFileSync(host, "");
  }
  const info = path.join(dir, `${config}-closure`);
  fs.mkdirSync(info, { recursive: true });
  const records = closure.items.map((it) => {
    const hash = createHash("sha256").update(it.path).digest("hex");
    return [it.path, hash, String(it.narSize), "", String(it.references.length), ...it.references].join("\n");
  });
  fs.writeFileSync(path.join(info, "registration"), `${records.join("\n")}\n`);
  fs.writeFileSync(path.join(info, "store-paths"), `${closure.items.map((it) => it.path).join("\n")}\n`);
  const file = path.join(dir, `${config}.yaml`);
  fs.writeFileSync(
    file,
    [
      `name: ${name}`,
      `store: { dir: ${closure.store.dir}, root: ./store }`,
      `roots: [${JSON.stringify(closure.profile ?? closure.roots[0])}]`,
      `closure: { from: nix-closure-info, file: ./${config}-closure }`,
      "architecture: amd64",
      "layers: { max: 100 }",
      `output: { path: ./${config}.tar }`,
      "",
    ].join("\n"),
  );
  return file;
}
