/**
 * Turning zod issues into located, one-line messages: key paths (`paths[1].mode`), the YAML/JSON node an issue is
 * about (line:column), and messages that say what to write instead.
 */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from "yaml";
import type { z } from "zod";
import { LayerpackError, SpecError } from "../errors.ts";
import { closest, nearest } from "../util/suggest.ts";
import { textPosition } from "./text-position.ts";
import { formatKeyPath, type KeyPath } from "./key-path.ts";

export { formatKeyPath, type KeyPath };

/** One validation problem, located as far as the source allows. */
export interface SpecIssue {
  keyPath: string;
  message: string;
  line?: number;
  column?: number;
}

/** "file:line:col: key.path: message", leaving out whatever is unknown. */
export function formatIssue(file: string, issue: SpecIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  return issue.keyPath === "" ? `${where}: ${issue.message}` : `${where}: ${issue.keyPath}: ${issue.message}`;
}

/** Where a key path points in a parsed document: the node, or for `asKey` the map key itself. */
export interface Located {
  node: Node | undefined;
  /** True when the whole path was found (otherwise `node` is the deepest existing ancestor). */
  exact: boolean;
}

export function locate(root: Node | null | undefined, path: KeyPath, asKey = false): Located {
  let node: Node | undefined = root ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) return { node, exact: false };
      if (last && asKey && isScalar(pair.key)) return { node: pair.key, exact: true };
      const value = pair.value as Node | null;
      // `key:` with no value has no node of its own: point at the key.
      node = value ?? (pair.key as Node);
      if (value === null) return { node, exact: last };
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Node | undefined;
      if (!item) return { node, exact: false };
      node = item;
    } else {
      return { node, exact: false };
    }
  }
  return { node, exact: true };
}

/** 1-based line and column of a node's start. */
export function positionOf(node: Node | undefined, lines: LineCounter): { line: number; column: number } | undefined {
  const start = node?.range?.[0];
  if (start === undefined) return undefined;
  const { line, col } = lines.linePos(start);
  return { line, column: col };
}

type Issue = z.core.$ZodIssue;

/** zod reports a union failure as one issue holding each branch's issues; keep the branch that got furthest. */
function flatten(issue: Issue, prefix: KeyPath = []): Issue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    const branches = issue.errors.map((branch) => branch.flatMap((i) => flatten(i, path)));
    // The branch whose issues sit deepest matched the input's shape best (e.g. `store` written as an object).
    const depth = (b: Issue[]) => Math.max(...b.map((i) => i.path.length));
    const best = branches.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    if (depth(best) > path.length) return best;
  }
  return [{ ...issue, path } as Issue];
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  // JSON has no Infinity (YAML reads 1e400 and .inf as it): JSON.stringify would say null.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(data: unknown, path: KeyPath): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** Keys whose string values are often written as bare numbers in YAML (`mode: 755`, `user: 1000`). */
function quotable(path: KeyPath): boolean {
  const top = path[0];
  return path.at(-1) === "mode" || ["env", "labels", "user", "tag", "cmd", "entrypointArgs"].includes(String(top));
}

/** A message for one (flattened) issue, in the user's terms. */
function boundMessage(issue: Extract<Issue, { code: "too_small" | "too_big" }>): string {
  const n = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
  const inclusive = issue.inclusive !== false;
  const small = issue.code === "too_small";
  if (issue.origin === "string") return small && n === 1 ? "must not be empty" : `must be ${small ? "at least" : "at most"} ${n} characters`;
  if (issue.origin === "array" || issue.origin === "set") return small && n === 1 ? "must list at least one entry" : `must list ${small ? "at least" : "at most"} ${n} entries`;
  return `must be ${small ? (inclusive ? "at least" : "greater than") : inclusive ? "at most" : "less than"} ${n}`;
}

function messageOf(issue: Issue, data: unknown): string {
  switch (issue.code) {
    case "invalid_type": {
      const value = valueAt(data, issue.path);
      if (value === undefined) return `is required (${issue.expected})`;
      // The schema's own message where it gives one (layers.max says its range).
      if (!/^Invalid input/.test(issue.message)) return issue.message;
      // A number of the wrong kind: zod's "expected int, got number 1.5" said plainly.
      if (typeof value === "number" && !Number.isFinite(value)) return `must be a finite number, not ${value}`;
      if (typeof value === "number" && issue.expected === "int") return `must be a whole number, not ${value}`;
      const hint = typeof value === "number" && issue.expected === "string" && quotable(issue.path) ? ` (quote it: "${value}")` : "";
      return `expected ${issue.expected}, got ${describeValue(value)}${hint}`;
    }
    case "invalid_value": {
      // The schema's own message where it gives one (platform names say which OCI name is meant).
      if (!/^Invalid (option|input)/.test(issue.message)) return issue.message;
      const value = valueAt(data, issue.path);
      const words = issue.values.filter((v): v is string => typeof v === "string");
      const near = typeof value === "string" ? nearest(value, words) : undefined;
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}${near !== undefined ? ` (did you mean "${near}"?)` : ""}`;
    }
    case "too_small":
    case "too_big":
      // The schema's own message where it gives one; zod's default ("Too small: expected ...") said plainly.
      return /^Too (small|big)/.test(issue.message) ? boundMessage(issue) : issue.message;
    case "invalid_key": {
      // A record key the key schema refuses (env["A=B"]): its own message, not zod's "Invalid key in record".
      const own = issue.issues.find((i) => !/^Invalid|^Too (small|big)/.test(i.message));
      return own?.message ?? "is not a valid key";
    }
    case "invalid_union":
      if (issue.discriminator !== undefined) {
        const options = (issue as { options?: unknown[] }).options ?? [];
        const list = options.map((v) => JSON.stringify(v)).join(", ");
        // The issue's path already names the discriminator key (paths[0].type).
        const value = valueAt(data, issue.path);
        if (value === undefined) return `is required: one of ${list}`;
        const near = typeof value === "string" ? nearest(value, options.filter((v): v is string => typeof v === "string")) : undefined;
        return `must be one of ${list}${near !== undefined ? ` (did you mean "${near}"?)` : ""}`;
      }
      return `does not match any allowed form (${issue.message})`;
    default:
      return issue.message;
  }
}

export interface IssueContext {
  /** The data that was validated (to describe wrong values). */
  data: unknown;
  /** Parsed document (YAML/JSON) for positions; absent for TS/JS configs. */
  doc?: Document.Parsed;
  /** A TS/JS config's source text: positions found by text (text-position.ts). */
  text?: string;
  /** Path of the config object inside the document (`["layerpack"]` for package.json). */
  base?: KeyPath;
  lines?: LineCounter;
  /** The schema that was used, to suggest the key meant by an unknown one. */
  schema?: z.ZodType;
}

/** A schema's definition, looking through defaults, optionals and refinements (zod's wrappers). */
function defOf(schema: z.ZodType): Record<string, unknown> {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  const inner = (def.innerType ?? def.in) as z.ZodType | undefined;
  return inner ? defOf(inner) : def;
}

/**
 * The keys an object schema at `path` accepts (looking through defaults, optionals, arrays and unions). A
 * discriminated union whose `data` names one of its options gives that option's keys, not every option's.
 */
export function keysAt(schema: z.ZodType, path: KeyPath, data?: unknown): string[] {
  const def = defOf(schema);
  if (def.type === "union") {
    const options = def.options as z.ZodType[];
    const chosen = typeof def.discriminator === "string" && path.length === 0 ? optionFor(options, def.discriminator, data) : undefined;
    return [...new Set((chosen ? [chosen] : options).flatMap((o) => keysAt(o, path, data)))];
  }
  const child = (key: string | number): unknown => (data !== null && typeof data === "object" ? (data as Record<string | number, unknown>)[key] : undefined);
  if (def.type === "array") return typeof path[0] === "number" ? keysAt(def.element as z.ZodType, path.slice(1), child(path[0])) : [];
  if (def.type !== "object") return [];
  const shape = def.shape as Record<string, z.ZodType>;
  if (path.length === 0) return Object.keys(shape);
  const next = shape[String(path[0])];
  return next ? keysAt(next, path.slice(1), child(String(path[0]))) : [];
}

/** The option of a discriminated union whose discriminator literal is `data`'s, if any. */
function optionFor(options: z.ZodType[], discriminator: string, data: unknown): z.ZodType | undefined {
  if (data === null || typeof data !== "object") return undefined;
  const value = (data as Record<string, unknown>)[discriminator];
  return options.find((o) => {
    const shape = objectShape(o);
    const literal = shape?.[discriminator] as unknown as { _zod: { def: { values?: unknown[] } } } | undefined;
    return literal?._zod.def.values?.includes(value) ?? false;
  });
}

/** The shape of an object schema, looking through refinements. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const def = defOf(schema);
  return def.type === "object" ? (def.shape as Record<string, z.ZodType>) : undefined;
}

/** ` (did you mean "entrypoint"?)` for a near miss, else nothing. */
function suggest(key: string, known: string[]): string {
  const best = closest(key, known, Math.max(1, Math.floor(key.length / 4)));
  return best !== undefined ? ` (did you mean "${best}"?)` : "";
}

/** ` (not for type "file", which takes ...)` when another option of the union at `path` knows the key. */
function elsewhere(ctx: IssueContext, { path, key, known }: { path: KeyPath; key: string; known: string[] }): string {
  if (!ctx.schema || known.includes(key) || !keysAt(ctx.schema, path).includes(key)) return "";
  const field = discriminatorAt(ctx.schema, path);
  const value = valueAt(ctx.data, path);
  const type = field !== undefined && value !== null && typeof value === "object" ? (value as Record<string, unknown>)[field] : undefined;
  return typeof type === "string" ? ` (not for ${field} ${JSON.stringify(type)}, which takes ${known.map((k) => JSON.stringify(k)).join(", ")})` : "";
}

/** The discriminator of the union at `path`, when there is one. */
function discriminatorAt(schema: z.ZodType, path: KeyPath): string | undefined {
  const def = defOf(schema);
  if (path.length === 0) return def.type === "union" && typeof def.discriminator === "string" ? def.discriminator : undefined;
  if (def.type === "array") return typeof path[0] === "number" ? discriminatorAt(def.element as z.ZodType, path.slice(1)) : undefined;
  const next = def.type === "object" ? (def.shape as Record<string, z.ZodType>)[String(path[0])] : undefined;
  return next ? discriminatorAt(next, path.slice(1)) : undefined;
}

const sameKeyPath = (a: KeyPath, b: KeyPath) => a.length === b.length && a.every((seg, i) => seg === b[i]);

/** All issues of a failed parse, one per problem (an unknown-keys issue becomes one per key), in source order. */
export function describeIssues(error: z.ZodError, ctx: IssueContext): SpecIssue[] {
  const out: (SpecIssue & { offset: number })[] = [];
  const add = (path: KeyPath, message: string, asKey: boolean) => {
    let pos: { line: number; column: number } | undefined;
    let offset = Number.MAX_SAFE_INTEGER;
    if (ctx.doc && ctx.lines) {
      const { node } = locate(ctx.doc.contents, [...(ctx.base ?? []), ...path], asKey);
      pos = positionOf(node, ctx.lines);
      offset = node?.range?.[0] ?? offset;
    } else if (ctx.text !== undefined) {
      pos = textPosition(ctx.text, path);
    }
    out.push({ keyPath: formatKeyPath(path), message, ...pos, offset });
  };
  const issues = error.issues.flatMap((i) => flatten(i));
  for (const issue of issues) {
    // .int()'s safe-integer bound (1e20) says nothing the key's own bounds do not: left out when they are there too.
    if ((issue.code === "too_big" || issue.code === "too_small") && issue.origin === "int" && issues.some((o) => o !== issue && sameKeyPath(o.path, issue.path))) continue;
    if (issue.code === "unrecognized_keys") {
      const known = ctx.schema ? keysAt(ctx.schema, issue.path, ctx.data) : [];
      for (const key of issue.keys) add([...issue.path, key], `unknown key "${key}"${elsewhere(ctx, { path: issue.path, key, known }) || suggest(key, known)}`, true);
    } else {
      add(issue.path, messageOf(issue, ctx.data), issue.code === "invalid_key");
    }
  }
  // Stable: source order when positions are known, else zod's order (sort is stable).
  out.sort((a, b) => a.offset - b.offset);
  return out.map(({ offset: _offset, ...rest }) => rest);
}

/** Where a loaded config has a key (LoadResult.locate). */
export type Locate = (key: readonly (string | number)[]) => { shown: string; line?: number; column?: number };

/** A warning about a key, as errors are given: `image.config.yaml:9:5: perms[0]: text` (`perms[0]: text` unlocated). */
export function atKey(locate: Locate | undefined, key: readonly (string | number)[], text: string): string {
  const keyPath = formatKeyPath(key as KeyPath);
  return locate ? `${placeOf(locate, key).where}: ${keyPath}: ${text}` : `${keyPath}: ${text}`;
}

/** `file:line:column` of a key, or just the file where it has no position (a TS config). */
function placeOf(locate: Locate, key: readonly (string | number)[]): { where: string; line?: number; column?: number } {
  const { shown, line, column } = locate(key);
  return line === undefined ? { where: shown } : { where: `${shown}:${line}:${column}`, line, column };
}

/**
 * A failure of a later stage about a key of this config (LayerpackError.configKey: a host file it names) as a
 * SpecError at the key: `image.config.yaml:7:13: paths[0].source: ...`. Anything else is returned as it is.
 */
export function locateConfigError(loaded: { path: string; locate: Locate }, err: unknown): unknown {
  if (!(err instanceof LayerpackError) || err instanceof SpecError || err.configKey === undefined) return err;
  const keyPath = formatKeyPath(err.configKey as KeyPath);
  const { where, line, column } = placeOf(loaded.locate, err.configKey);
  // The stages' messages start with the key's name (`rootSystem: ...`) when nobody locates them.
  const text = err.message.startsWith(`${keyPath}: `) ? err.message.slice(keyPath.length + 2) : err.message.replace(new RegExp(`^${String(err.configKey[0])}:? `), "");
  return new SpecError(`${where}: ${keyPath}: ${text}`, { file: loaded.path, keyPath, line, column }, { cause: err });
}
