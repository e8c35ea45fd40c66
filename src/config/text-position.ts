/**
 * Where a key stands in a TS/JS config's source, for messages: the module is run, not parsed, so its values carry
 * no positions. Found by text: each key of the path must follow the one before it, written as a property
 * (`max:`, `"max":`), and the last must be the only one of its name from there on. Anything less certain (a key
 * built at run time, spread from an import, or repeated in a list) gets no position rather than a wrong one.
 */
import type { KeyPath } from "./format.ts";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function textPosition(text: string, keyPath: KeyPath): { line: number; column: number } | undefined {
  const keys = keyPath.filter((k): k is string => typeof k === "string");
  if (keys.length === 0) return undefined;
  let from = 0;
  let at = -1;
  for (const [i, key] of keys.entries()) {
    const re = new RegExp(`(?<![\\w$.])(["']?)${escape(key)}\\1\\s*:`, "g");
    re.lastIndex = from;
    const m = re.exec(text);
    if (!m) return undefined;
    if (i === keys.length - 1 && re.exec(text)) return undefined;
    at = m.index;
    from = m.index + m[0].length;
  }
  const before = text.slice(0, at);
  const line = before.split("\n").length;
  return { line, column: at - before.lastIndexOf("\n") };
}
