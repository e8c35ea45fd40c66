/**
 * Importing a TS/JS config with Node's own module loader, on every supported Node and in any project: a resolve and
 * a load hook, active only inside a config's import graph (its URLs carry a load token), do four things.
 * - Fresh module instances per load, for the config and the local files it imports, so a reload sees edits; those
 *   files are returned as dependencies for watch mode.
 * - TypeScript (.ts, .mts, .cts) is stripped by Node's own `stripTypeScriptTypes` (Node 22 does not strip files by
 *   default), and the module format follows the file, not the project's package.json: .mts/.mjs are ES modules,
 *   .cts/.cjs CommonJS, and .ts/.js are ES modules when they use import/export syntax, as a TS user writes them in a
 *   `"type": "commonjs"` project too.
 * - `import { defineConfig } from "layerpack"` gets the project's installed layerpack, else this running copy (a
 *   global install or npx); any other package that is not installed gets a message saying how to install it.
 * - Relative imports may leave out the extension (`./base` for ./base.ts), as TS users write them.
 */
import { readFileSync } from "node:fs";
// Not by name: on a Node without them the library's import would fail before its version check (util/node-version.ts).
import * as nodeModule from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";
import vm from "node:vm";
import { Worker } from "node:worker_threads";
import { requireCjs } from "./cjs.ts";

const QUERY = "layerpack-config";
const LIBRARY_DIR = fileURLToPath(new URL("../", import.meta.url));
// src/config/import.ts in a checkout run by Node 24 or vitest, dist/config/import.js when installed.
const LIBRARY_ENTRY = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../index.ts" : "../index.js", import.meta.url));
// What `import { defineConfig } from "layerpack"` needs, without the whole library: in the loading thread the
// library is not loaded yet, and all of it costs ~120 ms (src/config/define.ts has no imports).
const DEFINE_ENTRY = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "./define.ts" : "./define.js", import.meta.url));
/** A module that may use more of the library than defineConfig: a namespace, default or dynamic import, a re-export. */
const WHOLE_LIBRARY = /import\s*\*\s*as\s+[\w$]+\s+from\s*["']layerpack["']|import\s*\(\s*["']layerpack["']|import\s+[\w$]+\s*(?:,[^;]*)?from\s*["']layerpack["']|export\s*\*[^;]*from\s*["']layerpack["']/;
const NAMED_IMPORT = /(?:import|export)\s*\{([^}]*)\}\s*from\s*["']layerpack["']/g;

/** Whether a module's (type-stripped) source needs more of "layerpack" than define.ts has. */
function needsWholeLibrary(source: string): boolean {
  if (WHOLE_LIBRARY.test(source)) return true;
  for (const m of source.matchAll(NAMED_IMPORT)) {
    const names = m[1]!.split(",").map((n) => n.trim().split(/\s+as\s+/)[0]!.trim()).filter((n) => n !== "" && !n.startsWith("type "));
    if (names.some((n) => n !== "defineConfig")) return true;
  }
  return false;
}
const SCRIPT = /\.(?:[cm]?[jt]s)$/;
const TYPESCRIPT = /\.[cm]?ts$/;
const EXTENSIONS = [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", "/index.ts", "/index.js"];

/** Files seen per load, by load token. */
const loads = new Map<string, Set<string>>();
let loadCount = 0;
let hooked = false;
/** The last local file the load hook supplied: the one a syntax error without a position is in. */
let lastLoaded: string | undefined;
/** Whether `"layerpack"` may resolve to DEFINE_ENTRY (the loading thread's first try; see importFresh). */
let defineOnly = false;
/** Local files whose source imports the library as a whole. */
const wholeLibrary = new Set<string>();

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

/** The arguments of the resolve hook, for resolving again. */
interface ResolveRequest {
  specifier: string;
  context: { parentURL?: string | undefined };
  nextResolve: (s: string, c?: object) => { url: string };
}

/** A config module's import that cannot be resolved (`e` says why): this running copy for layerpack, or the reason. */
function unresolved({ specifier, context, nextResolve }: ResolveRequest, e: unknown) {
  if ((e as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw e;
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    for (const ext of EXTENSIONS) {
      try {
        return nextResolve(specifier + ext, context);
      } catch {
        // try the next extension
      }
    }
    if (!context.parentURL?.startsWith("file:")) throw e;
    const from = fileURLToPath(context.parentURL);
    throw Object.assign(notFound(specifier, from, EXTENSIONS), { cause: e });
  }
  const from = context.parentURL ? fileURLToPath(context.parentURL) : "the config";
  return { url: pathToFileURL(missingPackage(specifier, from, e)).href, shortCircuit: true };
}

/** A package a config imports that is not installed: this running library for layerpack, else how to install it. */
function missingPackage(specifier: string, from: string, e: unknown): string {
  if (specifier === "layerpack") return LIBRARY_ENTRY;
  const name = /^(@[^/]+\/[^/]+|[^/]+)/.exec(specifier)?.[1];
  if (name === undefined || specifier.startsWith("/") || specifier.includes(":")) throw e;
  throw atSpecifier(new Error(`${path.basename(from)} imports '${specifier}', which is not installed here: run \`npm install --save-dev ${name}\``, { cause: e }), from, specifier);
}

/** A relative import or require of a file that does not exist, located at it. */
function notFound(specifier: string, from: string, tried: readonly string[]): Error {
  return atSpecifier(new Error(`${path.basename(from)} imports '${specifier}', which does not exist (nor with ${tried.join(", ")} added)`), from, specifier);
}

/** A CommonJS config's require of a local ES module: said so, located at it (run as CommonJS it would fail at `export`). */
function esModuleRequired(specifier: string, from: string, file: string): Error | undefined {
  if (file.endsWith(".json")) return undefined;
  const source = sourceOf(file, readFileSync(file, "utf8"));
  // Only what is an ES module by its name or by its import/export statements: a CommonJS file that fails to
  // compile (a syntax error) is run, so that its own error is reported where it is.
  const esm = /\.m[jt]s$/.test(file) || (formatOf(file, source) === "module" && /^\s*(?:import\b\s*[\w{*"']|export\b\s*[\w{*])/m.test(source));
  if (!esm) return undefined;
  const message = `${path.basename(from)} requires '${specifier}', an ES module (import/export): a CommonJS config cannot require it here; import it from an ES module config (.ts, .mts, .mjs), or write ${path.basename(file)} as CommonJS (.cts, .cjs)`;
  return atSpecifier(new Error(message), from, specifier);
}

/** `err`, located where `from` writes `specifier` (its first quoted occurrence), for thrownAt to report. */
function atSpecifier(err: Error, from: string, specifier: string): Error {
  let text: string;
  try {
    text = readFileSync(from, "utf8");
  } catch {
    return err;
  }
  const found = ['"', "'", "`"].map((q) => text.indexOf(`${q}${specifier}${q}`)).filter((i) => i >= 0);
  if (found.length === 0) return err;
  const i = Math.min(...found);
  const line = text.slice(0, i).split("\n").length;
  return Object.assign(err, { [LOCATION]: { file: from, line, column: i - text.lastIndexOf("\n", i - 1) } });
}

/** ESM unless the (stripped) source parses as a CommonJS function body and has no import/export. */
function formatOf(file: string, source: string): "module" | "commonjs" {
  if (/\.m[jt]s$/.test(file)) return "module";
  if (/\.c[jt]s$/.test(file)) return "commonjs";
  try {
    new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file });
    return "commonjs";
  } catch {
    // import/export or top-level await; a real syntax error surfaces from the ES module loader with its position
    return "module";
  }
}

function installHooks(): void {
  if (hooked) return;
  hooked = true;
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      const token = tokenOf(context.parentURL);
      if (token === undefined) return nextResolve(specifier, context);
      if (specifier === "layerpack" && defineOnly && !wholeLibrary.has(fileURLToPath(context.parentURL!))) {
        return { url: pathToFileURL(DEFINE_ENTRY).href, shortCircuit: true };
      }
      let resolved;
      try {
        resolved = nextResolve(specifier, context);
      } catch (e) {
        resolved = unresolved({ specifier, context, nextResolve }, e);
      }
      if (!isLocalFile(resolved.url)) return resolved;
      const url = new URL(resolved.url);
      loads.get(token)?.add(fileURLToPath(url));
      url.searchParams.set(QUERY, token);
      return { ...resolved, url: url.href, shortCircuit: true };
    },
    load(url, context, nextLoad) {
      if (tokenOf(url) === undefined) return nextLoad(url, context);
      const file = fileURLToPath(url);
      if (!SCRIPT.test(file)) return nextLoad(url, context);
      const source = sourceOf(file, readFileSync(file, "utf8"));
      if (needsWholeLibrary(source)) wholeLibrary.add(file);
      lastLoaded = file;
      return { format: formatOf(file, source), source, shortCircuit: true };
    },
  });
}

function sourceOf(file: string, source: string): string {
  return TYPESCRIPT.test(file) ? stripTypes(source, file) : source;
}

/**
 * Types become blanks, so every position in the module stays where it was in the file; only TS that has no such
 * form (enum, namespace, parameter properties) is transformed instead.
 */
function stripTypes(source: string, file: string): string {
  try {
    return nodeModule.stripTypeScriptTypes(source, { mode: "strip" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX") throw located(e, file);
    try {
      return nodeModule.stripTypeScriptTypes(source, { mode: "transform", sourceUrl: file });
    } catch (e2) {
      throw located(e2, file);
    }
  }
}

/** Where a syntax error is: a file, 1-based line and column. */
export interface SyntaxErrorLocation {
  file: string;
  line: number;
  column: number;
}

const LOCATION = Symbol("layerpack.syntaxErrorLocation");

const SYNTAX = Symbol("layerpack.syntaxError");

/** Where a config's error is (a syntax error's position, else where it was thrown), as the loading thread found it. */
export const errorLocation = (e: unknown): (SyntaxErrorLocation & { syntax: boolean }) | undefined => {
  const at = e instanceof Error ? (e as unknown as Record<symbol, SyntaxErrorLocation | undefined>)[LOCATION] : undefined;
  return at && { ...at, syntax: (e as unknown as Record<symbol, boolean | undefined>)[SYNTAX] === true };
};

/**
 * Attach the position to a syntax error in `file`. V8 keeps the position of an ES module's syntax error out of the
 * error (it prints it only for an uncaught one); for those (`reparse`), Node's TS parser, which reads JavaScript as
 * well, finds it again.
 */
function located(e: unknown, file: string, reparse = false): unknown {
  let stack = String((e as Error).stack ?? "");
  if (reparse) {
    try {
      nodeModule.stripTypeScriptTypes(readFileSync(file, "utf8"), { mode: "strip" });
    } catch (again) {
      stack = String((again as Error).stack ?? "");
    }
  }
  const at = caretPosition(stack);
  if (at && e instanceof Error) Object.assign(e, { [LOCATION]: { file, line: at.line, column: at.column } });
  return e;
}

/**
 * Node shows a syntax error's position only as a code frame in the stack: V8's (and Node 24's TS parser's)
 * "URL:LINE" + source line + caret line, or Node 22's TS parser's " LINE | source" + " : caret" lines.
 */
function caretPosition(stack: string): { line: number; column: number; url?: string } | undefined {
  const framed = /\n *(\d+) \| [^\n]*\n( *: *)\^/.exec(stack);
  if (framed) return { line: Number(framed[1]), column: framed[2]!.length - framed[2]!.indexOf(":") - 1 };
  // Node 24's TS parser shows the lines before the error too: the caret is under the last one shown.
  const v8 = /^(.*):(\d+)\n(?:[^\n]*\n)*?( *)\^/.exec(stack);
  if (v8) return { url: v8[1], line: Number(v8[2]), column: v8[3]!.length + 1 };
  return undefined;
}

/**
 * Where an error a config module threw was thrown: the first frame of its stack in the config or a local file it
 * imports (types are stripped to blanks, so the position is the file's).
 */
export function thrownAt(e: unknown): SyntaxErrorLocation | undefined {
  const known = e instanceof Error ? (e as unknown as Record<symbol, SyntaxErrorLocation | undefined>)[LOCATION] : undefined;
  if (known) return known;
  const stack = e instanceof Error ? (e.stack ?? "") : "";
  for (const m of stack.matchAll(/^\s+at (?:.*? \()?((?:file:\/\/|\/)[^\s()]+?):(\d+):(\d+)\)?$/gm)) {
    const url = m[1]!;
    const file = url.startsWith("file:") ? fileURLToPath(url.replace(/\?.*$/, "")) : url;
    if (!isLocalFile(pathToFileURL(file).href)) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

/** The position of a syntax error in a config module or a file it imports, when Node tells it. */
export function syntaxErrorLocation(e: unknown): SyntaxErrorLocation | undefined {
  if (!(e instanceof SyntaxError)) return undefined;
  const known = (e as unknown as Record<symbol, SyntaxErrorLocation | undefined>)[LOCATION];
  if (known) return known;
  const at = caretPosition(e.stack ?? "");
  if (at?.url === undefined) return undefined;
  if (path.isAbsolute(at.url)) return { file: at.url, line: at.line, column: at.column };
  if (!at.url.startsWith("file:")) return undefined;
  return { file: fileURLToPath(at.url.replace(/\?.*$/, "")), line: at.line, column: at.column };
}

/** How long a config module may take to load by default (LAYERPACK_CONFIG_TIMEOUT overrides it, in seconds). */
export const CONFIG_TIMEOUT_MS = 30_000;

/** Heap a config module may use while loading: far above any config, so a runaway one fails instead of the host. */
const CONFIG_HEAP_MB = 1024;

/** What the loading thread (import-worker.ts) sends back. */
export type WorkerReply =
  | { kind: "value"; data: unknown; dependencies: string[] }
  | { kind: "missing"; dependencies: string[] }
  | { kind: "function"; dependencies: string[] }
  | { kind: "promise"; dependencies: string[] }
  | { kind: "not-data"; path: (string | number)[]; keyPath: string; message: string; dependencies: string[] }
  | { kind: "error"; name: string; message: string; stack: string; at?: SyntaxErrorLocation; syntax?: boolean };

export type ConfigModule = Exclude<WorkerReply, { kind: "error" }>;

const WORKER = new URL(import.meta.url.endsWith(".ts") ? "./import-worker.ts" : "./import-worker.js", import.meta.url);

/** The loading thread's error as an Error here (a SyntaxError stays one), its position kept (errorLocation). */
function errorFrom(reply: Extract<WorkerReply, { kind: "error" }>): Error {
  const err = reply.name === "SyntaxError" ? new SyntaxError(reply.message) : new Error(reply.message);
  err.stack = reply.stack;
  if (reply.at) Object.assign(err, { [LOCATION]: reply.at, [SYNTAX]: reply.syntax === true });
  return err;
}

/** A thread ready to load one config module (see importConfigModule); started early, it boots while a search runs. */
export function startConfigThread(): Worker {
  // What a config prints goes to stderr: stdout carries the JSON events of --json and the image of -o -.
  const worker = new Worker(WORKER, { stdout: true, resourceLimits: { maxOldGenerationSizeMb: CONFIG_HEAP_MB } });
  worker.stdout.pipe(process.stderr, { end: false });
  // Not used (a YAML config was found): it must not keep the process alive.
  worker.unref();
  return worker;
}

export interface ImportOptions {
  timeoutMs?: number | undefined;
  /** Aborting (Ctrl-C) stops the load. */
  signal?: AbortSignal | undefined;
  /** A thread from startConfigThread, else one is started. */
  thread?: Worker | undefined;
}

/**
 * Import `file` afresh in a thread of its own; returns what its default export is (plain data) and the local files
 * it imported (sorted). A config that calls process.exit while loading gets an error instead of ending layerpack
 * with nothing built. One that does not finish loading — a top-level await that never settles, or a loop that never
 * yields — is stopped after the timeout, or when the signal aborts: it holds only its own thread.
 */
export function importConfigModule(file: string, { timeoutMs = CONFIG_TIMEOUT_MS, signal, thread }: ImportOptions = {}): Promise<ConfigModule> {
  const name = path.basename(file);
  return new Promise((resolve, reject) => {
    const worker = thread ?? startConfigThread();
    worker.ref();
    worker.postMessage({ file });
    let settled = false;
    const finish = (err: Error | undefined, value?: ConfigModule) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(
      () => finish(new Error(`${name} did not finish loading within ${timeoutMs / 1000} s (a top-level await that never settles, or a loop?); LAYERPACK_CONFIG_TIMEOUT sets the limit in seconds`)),
      timeoutMs,
    );
    const onAbort = () => finish(Object.assign(new Error(`loading ${name} was interrupted`), { name: "AbortError" }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (reply: WorkerReply) => (reply.kind === "error" ? finish(errorFrom(reply)) : finish(undefined, reply)));
    worker.once("error", (e: Error) => {
      const oom = (e as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY";
      finish(oom ? new Error(`${name} used more than ${CONFIG_HEAP_MB} MiB of memory while loading`, { cause: e }) : e);
    });
    // Ending before a reply with 0 (or 13, an unsettled top-level await): the config waits for nothing that could
    // ever settle it, and the thread ran out of things to do.
    worker.once("exit", (code) =>
      finish(new Error(code === 0 || code === 13 ? `${name} did not finish loading: a top-level await never settles (nothing is left that could settle it)` : `${name} ended its loading thread (exit code ${code}) before exporting a config`)),
    );
  });
}

/** Imports `file` afresh in this thread (import-worker.ts runs it in its own): its exports and local imports. */
export async function importFresh(file: string): Promise<{ exports: unknown; dependencies: string[] }> {
  if (!defineOnly) return importOnce(file);
  try {
    return await importOnce(file);
  } catch (e) {
    // The config imports more from "layerpack" than defineConfig in a way needsWholeLibrary did not see: linking
    // failed (before anything ran, for the static imports that module reads), so again with the whole library.
    if (!(e instanceof SyntaxError && /does not provide an export named/.test(e.message))) throw e;
    defineOnly = false;
    return importOnce(file);
  }
}

/** In the loading thread: `import { defineConfig } from "layerpack"` gets define.ts alone, unless more is needed. */
export function importDefineOnly(): void {
  defineOnly = true;
}

async function importOnce(file: string): Promise<{ exports: unknown; dependencies: string[] }> {
  installHooks();
  const token = `${process.pid}-${++loadCount}`; // no dot: a trailing ".N" reads as a file extension to some tools
  const seen = new Set<string>();
  loads.set(token, seen);
  lastLoaded = undefined;
  try {
    if (formatOf(file, sourceOf(file, readFileSync(file, "utf8"))) === "commonjs") {
      const load = { seen, modules: new Map(), isLocal: (f: string) => isLocalFile(pathToFileURL(f).href), sourceOf, missing: missingPackage, notFound, esModule: esModuleRequired };
      const exports = requireCjs(file, load) as { __esModule?: unknown; default?: unknown } | undefined;
      // A config compiled by tsc to CommonJS keeps its default export as exports.default.
      const config = exports?.__esModule && "default" in exports ? exports.default : exports;
      seen.delete(file);
      return { exports: { default: config }, dependencies: [...seen].sort() };
    }
    const url = pathToFileURL(file);
    url.searchParams.set(QUERY, token);
    const exports: unknown = await import(url.href);
    return { exports, dependencies: [...seen].sort() };
  } catch (e) {
    throw lastLoaded !== undefined && e instanceof SyntaxError && syntaxErrorLocation(e) === undefined ? located(e, lastLoaded, true) : e;
  } finally {
    loads.delete(token);
  }
}
