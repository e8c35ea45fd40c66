/**
 * Importing a TS/JS config with Node's own loader (Node 24 strips types). Each load gets a fresh module instance,
 * and so do the local files it imports, so a reload sees edits; those files are returned as dependencies for
 * watch mode. A resolve hook, active only inside a config's import graph, does both, and lets a config outside this
 * package's checkout `import { defineConfig } from "layerpack"` when no installed layerpack can be found:
 * it then gets this copy of the library.
 */
import { registerHooks } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const QUERY = "layerpack-config";
const LIBRARY_DIR = fileURLToPath(new URL("../", import.meta.url));
const LIBRARY_ENTRY = new URL("../index.ts", import.meta.url).href;

/** Files seen per load, by load token. */
const loads = new Map<string, Set<string>>();
let loadCount = 0;
let hooked = false;

function tokenOf(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith("file:")) return undefined;
  return new URL(url).searchParams.get(QUERY) ?? undefined;
}

function isLocalFile(url: string): boolean {
  if (!url.startsWith("file:")) return false;
  const file = fileURLToPath(url);
  // Library code and installed packages are shared, not reloaded: one copy of each module per process.
  return !file.startsWith(LIBRARY_DIR) && !file.split(path.sep).includes("node_modules");
}

function installHooks(): void {
  if (hooked) return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const token = tokenOf(context.parentURL);
      if (token === undefined) return nextResolve(specifier, context);
      let resolved;
      try {
        resolved = nextResolve(specifier, context);
      } catch (e) {
        if (specifier === "layerpack" && (e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND") {
          return { url: LIBRARY_ENTRY, shortCircuit: true };
        }
        throw e;
      }
      if (!isLocalFile(resolved.url)) return resolved;
      const url = new URL(resolved.url);
      loads.get(token)?.add(fileURLToPath(url));
      url.searchParams.set(QUERY, token);
      return { ...resolved, url: url.href };
    },
  });
}

/** Import `file` afresh; returns its module namespace and the local files it imported (sorted). */
export async function importConfigModule(file: string): Promise<{ exports: unknown; dependencies: string[] }> {
  installHooks();
  const token = `${process.pid}-${++loadCount}`; // no dot: a trailing ".N" reads as a file extension to some tools
  const seen = new Set<string>();
  loads.set(token, seen);
  try {
    const url = pathToFileURL(file);
    url.searchParams.set(QUERY, token);
    const exports: unknown = await import(url.href);
    return { exports, dependencies: [...seen].sort() };
  } finally {
    loads.delete(token);
  }
}
