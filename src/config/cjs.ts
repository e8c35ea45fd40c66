/**
 * CommonJS configs (.cjs, .cts, and .ts/.js without import/export), run by a small loader of our own instead of
 * Node's: Node's require() inside a module that a load hook supplied resolves without the hooks, so it would
 * neither find this running layerpack (global installs, npx) nor give fresh instances on reload. Here every load
 * gets new module objects for the config's local files (tracked as dependencies), TypeScript is stripped the same
 * way as for ES modules, and packages (under node_modules, or layerpack itself) are required the normal way.
 */
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import vm from "node:vm";

export interface CjsLoad {
  /** Local files loaded so far (the dependency set of this load). */
  seen: Set<string>;
  /** Module objects of this load, by file. */
  modules: Map<string, { exports: unknown }>;
  /** Whether a file is the config's own (reloaded) or shared (a package, this library). */
  isLocal: (file: string) => boolean;
  /** Source as the module should run it (types stripped). */
  sourceOf: (file: string, source: string) => string;
  /** A bare specifier that is not installed: the running library for layerpack, else a thrown explanation. */
  missing: (specifier: string, from: string, error: unknown) => string;
  /** The error for a relative require of a file that does not exist (located at the require by the caller). */
  notFound: (specifier: string, from: string, tried: readonly string[]) => Error;
  /** The error for a relative require of an ES module (which this loader cannot run), else undefined. */
  esModule: (specifier: string, from: string, file: string) => Error | undefined;
}

const EXTENSIONS = ["", ".ts", ".cts", ".js", ".cjs", ".json", "/index.ts", "/index.js"];

/** Run `file` as a CommonJS module of `load`; returns its module.exports. */
export function requireCjs(file: string, load: CjsLoad): unknown {
  const cached = load.modules.get(file);
  if (cached) return cached.exports;
  load.seen.add(file);
  const module = { exports: {} as unknown, id: file, filename: file, loaded: false };
  load.modules.set(file, module);
  if (file.endsWith(".json")) {
    module.exports = JSON.parse(readFileSync(file, "utf8"));
    return module.exports;
  }
  const source = load.sourceOf(file, readFileSync(file, "utf8"));
  const run = vm.compileFunction(source, ["exports", "require", "module", "__filename", "__dirname"], { filename: file });
  run.call(module.exports, module.exports, requireFrom(file, load), module, file, path.dirname(file));
  module.loaded = true;
  return module.exports;
}

function requireFrom(parent: string, load: CjsLoad): NodeJS.Require {
  const native = createRequire(parent);
  const require = ((specifier: string) => {
    const relative = specifier.startsWith("./") || specifier.startsWith("../") || path.isAbsolute(specifier);
    if (!relative) {
      let resolved: string;
      try {
        resolved = native.resolve(specifier);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw e;
        resolved = load.missing(specifier, parent, e);
      }
      return native(resolved);
    }
    const file = resolveLocal(specifier, parent, load);
    if (!load.isLocal(file)) return native(file);
    const esm = load.modules.has(file) ? undefined : load.esModule(specifier, parent, file);
    if (esm) throw esm;
    return requireCjs(file, load);
  }) as NodeJS.Require;
  return Object.assign(require, { resolve: native.resolve, cache: native.cache, main: undefined, extensions: native.extensions });
}

function resolveLocal(specifier: string, parent: string, load: CjsLoad): string {
  const base = path.resolve(path.dirname(parent), specifier);
  for (const ext of EXTENSIONS) {
    if (statSync(base + ext, { throwIfNoEntry: false })?.isFile()) return base + ext;
  }
  // The code a config's own try/catch around require() looks for.
  throw Object.assign(load.notFound(specifier, parent, EXTENSIONS.filter((e) => e !== "")), { code: "MODULE_NOT_FOUND" });
}
