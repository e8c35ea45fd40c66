/**
 * A config is plain data: strings, numbers, booleans, null, lists and mappings. A module can export anything and
 * YAML's tags make other values too (`!!binary` a Uint8Array, `!!set` a Set, `!!omap` a Map); zod would call most
 * of them "a mapping" or take a Uint8Array for a record of numbers, so they are named here, by key, before it.
 */
import { formatKeyPath, type KeyPath } from "./key-path.ts";

/** Deeper than any config needs, shallow enough for every walk over it (schema, positions) to stay off the stack's end. */
export const MAX_CONFIG_DEPTH = 64;

/** Thrown for a value that is not plain data, with where it is. */
export class NotData extends Error {
  readonly path: KeyPath;
  constructor(path: KeyPath, what: string, message = `${what} is not a config value (a config holds strings, numbers, booleans, lists and mappings)`) {
    super(message);
    this.path = path;
  }
  get keyPath(): string {
    return formatKeyPath(this.path);
  }
}

/** What a value that is not plain data is, in a user's words. */
function kindOf(value: object): string {
  if (ArrayBuffer.isView(value)) return "binary data (YAML's !!binary, a Buffer or typed array)";
  if (value instanceof Map) return "a Map (YAML's !!omap or !!pairs)";
  if (value instanceof Set) return "a Set (YAML's !!set)";
  if (value instanceof Date) return "a Date";
  return `a ${(value as object).constructor?.name ?? "class"} object`;
}

/** `value` copied if it is plain data (checked all the way down), else NotData at the first value that is not. */
export function plainData(value: unknown, at: KeyPath = [], seen = new Set<object>()): unknown {
  if (value === null || typeof value !== "object") {
    if (typeof value === "function") throw new NotData(at, "a function");
    if (typeof value === "symbol") throw new NotData(at, "a symbol");
    if (typeof value === "bigint") throw new NotData(at, "a BigInt");
    return value;
  }
  if (seen.has(value)) throw new NotData(at, "a reference back to an enclosing value");
  // Named at its top-level key: the full path would be 64 segments long.
  if (at.length >= MAX_CONFIG_DEPTH) throw new NotData(at.slice(0, 1), "", `nested deeper than ${MAX_CONFIG_DEPTH} levels; no config needs that`);
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v, i) => plainData(v, [...at, i], seen));
    const proto: unknown = Object.getPrototypeOf(value);
    if (typeof (value as { then?: unknown }).then === "function") throw new NotData(at, "a Promise");
    if (proto !== Object.prototype && proto !== null) throw new NotData(at, kindOf(value));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plainData(v, [...at, k], seen);
    return out;
  } finally {
    seen.delete(value);
  }
}
