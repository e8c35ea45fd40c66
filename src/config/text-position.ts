/**
 * Where a key stands in a TS/JS config's source, for messages: the module is run, not parsed, so its values carry
 * no positions. Found by text, conservatively: strings and comments are blanked first (but for quoted property
 * names), each key of the path must be the only property of its name inside the value of the key before it (an
 * object or list literal), and the whole text for the first. Anything less certain (a key built at run time, spread
 * from an import, repeated in a list, or a value that is not a literal) gets no position rather than a wrong one.
 */
import type { KeyPath } from "./key-path.ts";

export function textPosition(text: string, keyPath: KeyPath): { line: number; column: number } | undefined {
  const masked = maskStrings(text);
  let [from, to] = [0, masked.length];
  let at = -1;
  for (let i = 0; i < keyPath.length; i++) {
    const key = keyPath[i];
    if (typeof key !== "string") continue; // a list index: its entries are searched as one range
    const found = properties(masked, key, { from, to });
    if (found.length !== 1) return undefined;
    at = found[0]!.at;
    if (i === keyPath.length - 1) break;
    const value = skipSpace(masked, found[0]!.valueAt);
    const close = masked[value] === "{" || masked[value] === "[" ? matching(masked, value) : -1;
    if (close < 0) return undefined;
    [from, to] = [value + 1, close];
  }
  if (at < 0) return undefined;
  const before = text.slice(0, at);
  return { line: before.split("\n").length, column: at - before.lastIndexOf("\n") };
}

const isWord = (c: string | undefined) => c !== undefined && /[\w$]/.test(c);

/** `key:` or `"key":` written as a property between `from` and `to`: where it starts and where its value does. */
function properties(s: string, key: string, { from, to }: { from: number; to: number }): { at: number; valueAt: number }[] {
  const out: { at: number; valueAt: number }[] = [];
  for (const form of [key, `"${key}"`, `'${key}'`]) {
    for (let i = s.indexOf(form, from); i >= 0 && i + form.length <= to; i = s.indexOf(form, i + 1)) {
      if (form === key && (isWord(s[i - 1]) || s[i - 1] === "." || isWord(s[i + key.length]))) continue;
      // `const layers: number = 7` is a typed declaration, not a property.
      if (/\b(?:const|let|var)\s+$/.test(s.slice(Math.max(0, i - 12), i))) continue;
      const colon = skipSpace(s, i + form.length);
      if (s[colon] === ":" && colon < to) out.push({ at: i, valueAt: colon + 1 });
    }
  }
  return out;
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i]!)) i++;
  return i;
}

/** The bracket closing the one at `open` (strings already blanked), or -1. */
function matching(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === "{" || c === "[" || c === "(") depth++;
    else if (c === "}" || c === "]" || c === ")") if (--depth === 0) return i;
  }
  return -1;
}

/** The text with comments and string contents as spaces (lines kept), but for strings used as property names. */
function maskStrings(text: string): string {
  const out = text.split("");
  const blank = (a: number, b: number) => {
    for (let k = a; k < b; k++) if (out[k] !== "\n") out[k] = " ";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      blank(i, stop);
      i = stop - 1;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      // A property name ("max": ...) stays; any other string's content cannot be mistaken for a key.
      if (c === "`" || text[skipSpace(text, j + 1)] !== ":") blank(i + 1, j);
      i = j;
    }
  }
  return out.join("");
}
