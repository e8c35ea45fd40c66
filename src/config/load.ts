/**
 * The load stage: find the config (cosmiconfig, in the working directory only), read it (YAML/JSON with source
 * positions, or TS/JS by importing it), validate it with the one zod schema, fill `created`, and resolve host paths
 * against the config file's directory.
 *
 * Decisions:
 * - The search looks in `cwd` only, never in parent directories: a config found three levels up would build an image
 *   nobody asked for. Pass `configPath` for anything else.
 * - Host paths (profile, relative roots, store.root, closure.file, output.path — default ./<name>.tar, and "-" for
 *   standard output kept as is) come back absolute, resolved against
 *   the config file's directory. `paths[].source` stays as written: it goes into the reviewable plan, and the
 *   executor resolves it with `resolveFrom(configDir, source)`.
 * - `created` is always set in the result: as written, else SOURCE_DATE_EPOCH, else 1970-01-01T00:00:01Z.
 *   An empty SOURCE_DATE_EPOCH counts as unset.
 */
import { constants as fsConstants, readFileSync, statSync } from "node:fs";
import { access } from "node:fs/promises";
import { readUserBytes } from "../util/read-file.ts";
import { yamlNodeBound } from "../util/yaml-size.ts";
import { isRecord } from "../util/json.ts";
import path from "node:path";
import { LineCounter, isMap, parseDocument, type Document } from "yaml";
import { SpecError } from "../errors.ts";
import { describeIssues, formatIssue, locate, positionOf, type KeyPath, type Locate } from "./format.ts";
import { textPosition } from "./text-position.ts";
import { CONFIG_TIMEOUT_MS, errorLocation, importConfigModule, startConfigThread } from "./import.ts";
import type { Worker } from "node:worker_threads";
import { decodeUtf8, duplicateKeys, jsonSyntaxError, numbersAsText } from "./text.ts";
import { MAX_CONFIG_DEPTH, NotData, plainData } from "./plain-data.ts";
import { imageSpecSchema, MAX_TAR_SECONDS, type ImageSpec } from "./schema.ts";
import { timeoutMs, TIMEOUT_RULE } from "../util/seconds.ts";

/** Where the search looks, in this order, inside the working directory. */
export const SEARCH_PLACES = [
  "image.config.ts",
  "image.config.mts",
  "image.config.cts",
  "image.config.js",
  "image.config.mjs",
  "image.config.cjs",
  "image.config.yaml",
  "image.config.yml",
  "image.config.json",
  ".layerpackrc",
  ".layerpackrc.json",
  ".layerpackrc.yaml",
  ".layerpackrc.yml",
  "package.json",
] as const;

/** The key holding the config inside package.json. */
export const PACKAGE_PROP = "layerpack";

export const DEFAULT_CREATED = "1970-01-01T00:00:01Z";

/** A loaded spec: `created` is always filled in. */
export type LoadedSpec = ImageSpec & { created: string };

export interface LoadOptions {
  /** Directory to search and to resolve `configPath` against; default process.cwd(). */
  cwd?: string;
  /** Explicit config file; no search. */
  configPath?: string;
  /** Environment for SOURCE_DATE_EPOCH; default process.env. */
  env?: Record<string, string | undefined>;
  /** Stops loading a TS/JS config module (Ctrl-C). */
  signal?: AbortSignal | undefined;
}

export interface LoadResult {
  config: LoadedSpec;
  /** Absolute path of the config file (package.json for package.json#layerpack). */
  path: string;
  /** Files whose change should trigger a reload: the config file, then the local modules a TS/JS config imported. */
  dependencies: string[];
  /** Directory relative paths in the config are resolved against. */
  configDir: string;
  /** The file as messages name it, and the line:column of a key's value where the file has positions (YAML/JSON). */
  locate: Locate;
  /** What the caller should say: a found config that other config files beside it shadow. */
  warnings: string[];
}


/** Resolve a path from the config against the config file's directory (absolute paths are only normalised). */
export function resolveFrom(configDir: string, p: string): string {
  return path.resolve(configDir, p);
}

type Kind = "yaml" | "json" | "package" | "module";

function kindOf(file: string): Kind | undefined {
  const base = path.basename(file);
  if (base === "package.json") return "package";
  const ext = path.extname(base);
  if (ext === ".json") return "json";
  if (ext === ".yaml" || ext === ".yml" || ext === "" || base === ".layerpackrc") return "yaml";
  if ([".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"].includes(ext)) return "module";
  return undefined;
}

/** What a config file holds before validation. */
interface Source {
  data: unknown;
  doc?: Document.Parsed;
  lines?: LineCounter;
  base?: KeyPath;
  dependencies: string[];
}

export async function loadSpec(options: LoadOptions = {}): Promise<LoadResult> {
  // loadSpec("image.yaml") from JavaScript would otherwise search the directory and load another config.
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`loadSpec takes an options object, e.g. loadSpec({ configPath: ${JSON.stringify(String(options))} }), not ${options === null ? "null" : typeof options}`);
  }
  const cwd = path.resolve(options.cwd ?? process.cwd());
  // A search usually finds image.config.ts: the thread that loads it boots meanwhile (on another core).
  const thread = options.configPath === undefined ? startConfigThread() : undefined;
  let file: string;
  let shown: string;
  let source: Source;
  try {
    file = options.configPath === undefined ? await search(cwd) : path.resolve(cwd, options.configPath);
    shown = displayPath(cwd, file);
    source = await readSource(file, shown, { env: options.env ?? process.env, signal: options.signal, thread });
  } finally {
    // Used or not (a YAML config, no config, an unreadable file), the thread's work is done.
    void thread?.terminate();
  }
  const spec = validate(source, file, shown);
  const created = spec.created ?? createdFromEnv(options.env ?? process.env, file, shown);
  const configDir = path.dirname(file);
  return {
    config: resolvePaths({ ...spec, created }, configDir),
    path: file,
    dependencies: [file, ...source.dependencies.filter((d) => d !== file)],
    configDir,
    warnings: options.configPath === undefined ? shadowed(cwd, file) : [],
    locate: (key) => {
      if (!source.doc || !source.lines) {
        const text = moduleText(file);
        return { shown, ...(text !== undefined ? textPosition(text, key) : undefined) };
      }
      const { node } = locate(source.doc.contents, [...(source.base ?? []), ...key]);
      return { shown, ...positionOf(node, source.lines) };
    },
  };
}

/** The file name as messages show it: relative to cwd when inside it. */
function displayPath(cwd: string, file: string): string {
  const rel = path.relative(cwd, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/** A searched-for config beside others: the first in SEARCH_PLACES wins, which is easy to miss after a conversion. */
function shadowed(cwd: string, found: string): string[] {
  const others = SEARCH_PLACES.filter((p) => p !== "package.json" && path.join(cwd, p) !== found && statSync(path.join(cwd, p), { throwIfNoEntry: false })?.isFile());
  if (others.length === 0) return [];
  return [`using ${displayPath(cwd, found)}, the first config found; ${others.join(", ")} ${others.length === 1 ? "is" : "are"} not read (remove ${others.length === 1 ? "it" : "them"}, or give the config to use)`];
}

/** Marks "found" for cosmiconfig without loading: reading happens once, below, with positions. */
const FOUND = { found: true };

async function search(cwd: string): Promise<string> {
  // cosmiconfig opens package.json as it starts (for its own settings) and what it finds with readFile: a FIFO there
  // would block for ever, past Ctrl-C, and /dev/zero never end. So first, anything in a search place that is not a
  // regular file is named the way an explicit config is; a package.json that is not JSON is said where it breaks.
  // (Directories and unreadable files are skipped, as cosmiconfig skips them.)
  let packageJson: unknown;
  for (const place of SEARCH_PLACES) {
    const file = path.join(cwd, place);
    const st = statSync(file, { throwIfNoEntry: false });
    if (st === undefined || st.isDirectory()) continue;
    if (!st.isFile()) await readText(file, place);
    if (place === "package.json") packageJson = packageData(file);
  }
  // Only a search needs cosmiconfig (and the loaders it brings): an explicit config path never loads it.
  const { cosmiconfig } = await import("cosmiconfig");
  const explorer = cosmiconfig(PACKAGE_PROP, {
    searchPlaces: [...SEARCH_PLACES],
    searchStrategy: "none",
    packageProp: PACKAGE_PROP,
    cache: false,
    loaders: {
      ".ts": () => FOUND,
      ".mts": () => FOUND,
      ".cts": () => FOUND,
      ".cjs": () => FOUND,
      ".js": () => FOUND,
      ".mjs": () => FOUND,
      ".yaml": () => FOUND,
      ".yml": () => FOUND,
      noExt: () => FOUND,
      // package.json counts only when it has the key.
      ".json": (file, content) => {
        if (path.basename(file) !== "package.json") return FOUND;
        // Parsed above (cosmiconfig reads it again; the text is the same unless it changed in between).
        const data = packageJson ?? packageData(file);
        return isRecord(data) && PACKAGE_PROP in data ? { [PACKAGE_PROP]: FOUND } : {};
      },
    },
  });
  let result;
  try {
    result = await explorer.search(cwd);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError(`searching for a config in ${cwd}: ${(e as Error).message}`, { file: (e as { filepath?: string }).filepath }, { cause: e });
  }
  if (result) return result.filepath;
  // cosmiconfig skips empty and unreadable files; name them rather than claim there is no config.
  for (const place of SEARCH_PLACES.filter((p) => p !== "package.json")) {
    const file = path.join(cwd, place);
    const exists = await access(file, fsConstants.F_OK).then(() => true, () => false);
    if (exists) return file;
  }
  throw new SpecError(
    `no config found in ${cwd}: create image.config.ts or image.config.yaml there, or pass the config file's path ` +
      `(looked for ${SEARCH_PLACES.slice(0, -1).join(", ")} and package.json#${PACKAGE_PROP})`,
  );
}

/**
 * package.json as npm reads it (JSON.parse: a byte-order mark dropped, a repeated key allowed), for whether it holds
 * the config; undefined when it cannot be read (npm's problem, not ours: skipped, as cosmiconfig skips it). Not JSON:
 * said where, instead of cosmiconfig's parser's stack trace.
 */
function packageData(file: string): unknown {
  let text: string;
  try {
    text = readUserBytes(file, MAX_CONFIG_BYTES).toString("utf8").replace(/^\uFEFF/, "");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const bad = jsonSyntaxError(text) ?? { offset: 0, message: (cause as Error).message };
    const before = text.slice(0, bad.offset);
    const line = before.split("\n").length;
    const column = bad.offset - before.lastIndexOf("\n");
    throw new SpecError(`package.json:${line}:${column}: not JSON: ${bad.message}`, { file, line, column }, { cause });
  }
}


/** Config files are small: anything near this is a mistake or an attack, not a config. */
const MAX_CONFIG_BYTES = 16 << 20;
const MAX_CONFIG_NODES = 200_000;

async function readText(file: string, shown: string): Promise<string> {
  let bytes: Buffer;
  try {
    // Not readFile: a FIFO would block its open for ever, past Ctrl-C, and /dev/zero never ends.
    bytes = readUserBytes(file, MAX_CONFIG_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new SpecError(`cannot read config ${shown}: ${why}`, { file }, { cause: e });
  }
  const decoded = decodeUtf8(bytes);
  if ("text" in decoded) return decoded.text;
  const { line, column } = decoded;
  throw new SpecError(`${shown}:${line}:${column}: the file is not UTF-8 text (save it as UTF-8)`, { file, line, column });
}

/** Parse YAML (JSON is parsed the same way) keeping node positions; syntax errors and duplicate keys are fatal. */
function parseData(text: string, file: string, { shown, json }: { shown: string; json: boolean }): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter();
  const bad = json && text.trim() !== "" ? jsonSyntaxError(text) : undefined;
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (bad) {
    const { line, col } = lines.linePos(bad.offset);
    const hint = path.basename(file) === "package.json" ? "" : " (a .json config is JSON; YAML goes in .yaml)";
    throw new SpecError(`${shown}:${line}:${col}: not JSON: ${bad.message}${hint}`, { file, line, column: col });
  }
  // The parser's recursion ends on the call stack's limit (and says so more than once): say what in the file does it.
  const tooDeep = doc.errors.find((err) => /call stack|stack overflow/i.test(err.message));
  const issues = (tooDeep ? [tooDeep] : doc.errors).map((err) => {
    const { line, col } = lines.linePos(err.pos[0]);
    const message = err === tooDeep ? `nested too deeply (a config is at most ${MAX_CONFIG_DEPTH} levels deep)` : (err.message.split("\n")[0] ?? err.message);
    return { keyPath: "", message, line, column: col };
  });
  if (issues.length === 0) {
    for (const d of duplicateKeys(doc, lines)) issues.push({ keyPath: "", message: `duplicate key ${JSON.stringify(d.key)} (each key may appear once)`, line: d.line, column: d.column });
  }
  if (issues.length > 0) {
    const first = issues[0]!;
    const shownIssues = issues.slice(0, 20).map((i) => formatIssue(shown, i));
    if (issues.length > 20) shownIssues.push(`${shown}: ... and ${issues.length - 20} more`);
    throw new SpecError(shownIssues.join("\n"), { file, line: first.line, column: first.column });
  }
  return { doc, lines };
}

/** LAYERPACK_CONFIG_TIMEOUT (seconds), else the default. */
function configTimeout(env: Record<string, string | undefined>, file: string, shown: string): number {
  const raw = env.LAYERPACK_CONFIG_TIMEOUT;
  if (raw === undefined || raw.trim() === "") return CONFIG_TIMEOUT_MS;
  const ms = timeoutMs(raw);
  if (ms === undefined) throw new SpecError(`${shown}: LAYERPACK_CONFIG_TIMEOUT must be ${TIMEOUT_RULE}, not ${JSON.stringify(raw)}`, { file });
  return ms;
}

async function readSource(file: string, shown: string, { env, signal, thread }: { env: Record<string, string | undefined>; signal: AbortSignal | undefined; thread: Worker | undefined }): Promise<Source> {
  const kind = kindOf(file);
  if (kind === undefined) {
    throw new SpecError(`${shown}: unsupported config file type; use .ts, .mts, .cts, .js, .mjs, .cjs, .yaml, .yml or .json`, { file });
  }
  if (kind === "module") {
    await readText(file, shown); // same "missing"/"unreadable" errors as for data files
    try {
      const loaded = await importConfigModule(file, { timeoutMs: configTimeout(env, file, shown), signal, thread });
      if (loaded.kind === "missing") {
        throw new SpecError(`${shown}: the config module has no default export; write \`export default defineConfig({ ... })\``, { file });
      }
      // The schema would say "expected object, got function": say what to write instead.
      if (loaded.kind === "function") throw new SpecError(`${shown}: the default export is a function; export the config object itself: \`export default defineConfig({ ... })\``, { file });
      if (loaded.kind === "promise") {
        throw new SpecError(`${shown}: the default export is a Promise; await it in the module (top-level await) and export the result: \`export default defineConfig(await ...)\``, { file });
      }
      if (loaded.kind !== "value") {
        const text = moduleText(file);
        const at = text === undefined ? undefined : textPosition(text, loaded.path);
        const issue = { keyPath: loaded.keyPath === "" ? "the default export" : loaded.keyPath, message: loaded.message, ...at };
        throw new SpecError(formatIssue(shown, issue), { file, ...(loaded.keyPath ? { keyPath: loaded.keyPath } : {}), ...at });
      }
      // A TS or JS file without `export default` in a CommonJS project (npm init's default) runs as a script whose
      // module.exports is {}: say what is missing, not that `name` is required.
      if (isRecord(loaded.data) && Object.keys(loaded.data).length === 0 && !/\bexport\s+default\b|\bmodule\.exports\b|\bexports\.[A-Za-z_$]/.test(moduleText(file) ?? "")) {
        throw new SpecError(`${shown}: the config module exports nothing; write \`export default defineConfig({ ... })\``, { file });
      }
      return { data: loaded.data, dependencies: loaded.dependencies };
    } catch (e) {
      if (e instanceof SpecError) throw e;
      // A syntax error where Node says it is; any other error where it was thrown (in the config or an import).
      const at = errorLocation(e);
      const what = at?.syntax ? `syntax error: ${(e as Error).message.trim().split("\n")[0]!.replace(/^x /, "")}` : `loading the config module failed: ${(e as Error).message}`;
      if (!at) throw new SpecError(`${shown}: ${what}`, { file }, { cause: e });
      const where = at.file === file ? shown : displayPath(path.dirname(file), at.file);
      throw new SpecError(`${where}:${at.line}:${at.column}: ${what}`, { file: at.file, line: at.line, column: at.column }, { cause: e });
    }
  }
  const text = await readText(file, shown);
  // A config is a few hundred lines; the parser holds ~1 KB per node (yaml-size.ts).
  if (yamlNodeBound(text) > MAX_CONFIG_NODES) {
    throw new SpecError(`${shown}: it has more than ${MAX_CONFIG_NODES.toLocaleString("en-US")} lines and list items; a config is far smaller (generate a long list in a TS config instead)`, { file });
  }
  const { doc, lines } = parseData(text, file, { shown, json: kind !== "yaml" });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    const message = e instanceof RangeError ? `nested too deeply (a config is at most ${MAX_CONFIG_DEPTH} levels deep)` : (e as Error).message;
    throw new SpecError(`${shown}: ${message}`, { file }, { cause: e });
  }
  // maxAliasCount bounds the uses of aliases, not what they expand to: a 2 MiB string used 990 times is 2 GB.
  if (expandedSize(data, MAX_CONFIG_BYTES) > MAX_CONFIG_BYTES) {
    throw new SpecError(`${shown}: its values come to more than ${MAX_CONFIG_BYTES >> 20} MiB (aliases *name counted each time they are used); a config is far smaller`, { file });
  }
  if (kind === "package" && (!isRecord(data) || !(PACKAGE_PROP in data))) {
    throw new SpecError(`${shown}: has no "${PACKAGE_PROP}" key holding the config`, { file });
  }
  if (doc.contents === null) throw new SpecError(`${shown}: the config file is empty`, { file, line: 1, column: 1 });
  const base = kind === "package" ? [PACKAGE_PROP] : [];
  try {
    plainData(kind === "package" ? (data as Record<string, unknown>)[PACKAGE_PROP] : data);
  } catch (e) {
    if (!(e instanceof NotData)) throw e;
    const at = positionOf(locate(doc.contents, [...base, ...e.path]).node, lines);
    throw new SpecError(formatIssue(shown, { keyPath: e.keyPath, message: e.message, ...at }), { file, keyPath: e.keyPath, ...at });
  }
  // `tag: 1.10` means the text 1.10 in YAML, JSON and package.json alike (the JSON Schema says so for editors).
  const root = kind === "package" ? (isMap(doc.contents) ? doc.contents.get(PACKAGE_PROP, true) : undefined) : doc.contents;
  const config = kind === "package" ? (data as Record<string, unknown>)[PACKAGE_PROP] : data;
  const issues = numbersAsText(root, config, lines);
  if (issues.length > 0) throw new SpecError(issues.map((i) => formatIssue(shown, i)).join("\n"), { file, keyPath: issues[0]!.keyPath, line: issues[0]!.line, column: issues[0]!.column });
  if (kind === "package") return { data: config, doc, lines, base, dependencies: [] };
  return { data, doc, lines, dependencies: [] };
}

/** The size of a value with every alias expanded (strings by length, other values as 1), counted up to `stop`. */
function expandedSize(value: unknown, stop: number): number {
  let size = 0;
  const walk = (v: unknown, depth: number): void => {
    if (size > stop) return;
    if (typeof v === "string") size += v.length;
    else if (v === null || typeof v !== "object" || depth > 64) size += 1;
    else for (const [k, x] of Object.entries(v)) {
      size += k.length + 1;
      walk(x, depth + 1);
    }
  };
  walk(value, 0);
  return size;
}

function validate(source: Source, file: string, shown: string): ImageSpec {
  const result = imageSpecSchema.safeParse(source.data);
  if (result.success) return result.data;
  const text = source.doc === undefined ? moduleText(file) : undefined;
  const issues = describeIssues(result.error, { ...source, schema: imageSpecSchema, ...(text !== undefined ? { text } : {}) });
  const first = issues[0];
  throw new SpecError(
    issues.map((i) => formatIssue(shown, i)).join("\n"),
    { file, keyPath: first?.keyPath || undefined, line: first?.line, column: first?.column },
    { cause: result.error },
  );
}

/** A module config's source, for positions in its errors; none when it cannot be read now. */
function moduleText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** SOURCE_DATE_EPOCH (integer seconds) as RFC 3339 without fractional seconds, else the default. */
function createdFromEnv(env: Record<string, string | undefined>, file: string, shown: string): string {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === "") return DEFAULT_CREATED;
  const seconds = /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
  // Up to what a tar header's 11 octal digits hold (2242-03-16T12:56:31Z).
  if (!Number.isSafeInteger(seconds) || seconds > MAX_TAR_SECONDS) {
    throw new SpecError(
      `${shown}: created: SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a whole number of seconds since 1970, up to 8589934591 (2242, what tar headers hold) ` +
        `(unset it, or set \`created\` in the config)`,
      { file, keyPath: "created" },
    );
  }
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** `<name>.tar` (a layout: `<name>`), the name's slashes as dashes: team/web writes team-web.tar. */
export function defaultOutputName(spec: Pick<ImageSpec, "name" | "output">): string {
  const base = spec.name.replaceAll("/", "-");
  return spec.output.format === "oci-layout" ? base : `${base}.tar`;
}

/** A new spec with host paths made absolute (see the decisions at the top). */
function resolvePaths(spec: LoadedSpec, dir: string): LoadedSpec {
  const output = spec.output.format === "registry" || spec.output.path === "-" ? spec.output : { ...spec.output, path: resolveFrom(dir, spec.output.path ?? defaultOutputName(spec)) };
  const out: LoadedSpec = { ...spec, output };
  if (spec.profile !== undefined) out.profile = resolveFrom(dir, spec.profile);
  if (spec.roots !== undefined) out.roots = spec.roots.map((r) => resolveFrom(dir, r));
  if (typeof spec.store === "object") out.store = { ...spec.store, root: resolveFrom(dir, spec.store.root) };
  if (spec.closure.file !== undefined) out.closure = { ...spec.closure, file: resolveFrom(dir, spec.closure.file) };
  return out;
}
