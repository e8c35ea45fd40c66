/**
 * A data config's text before YAML sees it, and the one YAML check we do ourselves:
 * - bytes must be UTF-8: Node's decoder would turn other bytes (Latin-1 file names, say) silently into U+FFFD, and
 *   the image would hold names nobody wrote. The first bad byte is reported by line and column;
 * - duplicate keys, found with one set per mapping: the yaml package's own uniqueKeys check compares every key with
 *   every other (a 100 000-key mapping took minutes).
 */
import { isMap, isScalar, isSeq, visit, type Document, type LineCounter } from "yaml";

/** The text, or the 1-based line and column (in characters) of the first byte that is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { line: number; column: number } {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    const bad = firstInvalid(bytes);
    const before = new TextDecoder().decode(bytes.subarray(0, bad));
    const lastLine = before.lastIndexOf("\n");
    return { line: before.split("\n").length, column: [...before.slice(lastLine + 1)].length + 1 };
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalid(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    // overlong forms, surrogates and code points past U+10FFFF
    const c1 = b[i + 1] ?? 0;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return i;
    i += n;
  }
  return b.length;
}

/** Every key that repeats one before it in the same mapping, with its position. */
export function duplicateKeys(doc: Document.Parsed, lines: LineCounter): { key: string; line: number; column: number }[] {
  const out: { key: string; line: number; column: number }[] = [];
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) {
          const at = lines.linePos((pair.key as { range?: [number, number, number] } | null)?.range?.[0] ?? 0);
          out.push({ key, line: at.line, column: at.col });
        }
        seen.add(key);
      }
    },
  });
  return out;
}

/** String fields where YAML's reading of a plain scalar as a number is not what anyone meant (`tag: 1.2`). */
export const STRING_FIELDS: (string | "*")[][] = [["tag"], ["tags", "*"], ["labels", "*"], ["env", "*"]];

/**
 * Puts back the source text of plain scalars YAML read as numbers in string fields, where that text is the
 * version-like string the user wrote (`1.2`, `1.0`, `010`, `-3`); others (`1e3`, `0x1f`, `.inf`) are ambiguous and
 * come back as issues that show the quoted text to write. `root` is the config's mapping node (JSON is read as
 * YAML, so its numbers keep their text too) and `data` its JS value, which this mutates.
 */
export function numbersAsText(root: unknown, data: unknown, lines: LineCounter): { keyPath: string; message: string; line: number; column: number }[] {
  const issues: { keyPath: string; message: string; line: number; column: number }[] = [];
  if (!isMap(root) || typeof data !== "object" || data === null) return issues;
  for (const [field, each] of STRING_FIELDS) {
    const node = root.get(field, true);
    const holder = data as Record<string, unknown>;
    const visitScalar = (scalar: unknown, set: (v: string) => void, keyPath: string) => {
      if (!isScalar(scalar) || typeof scalar.value !== "number" || scalar.type !== "PLAIN") return;
      const text = String(scalar.source ?? "");
      if (/^[-+]?\d[\d.]*$/.test(text)) return set(text);
      const at = lines.linePos(scalar.range?.[0] ?? 0);
      issues.push({ keyPath, message: `YAML reads ${text} as a number; write it as a string: "${text}"`, line: at.line, column: at.col });
    };
    if (each === undefined) visitScalar(node, (v) => (holder[field!] = v), field!);
    else if (isMap(node) || isSeq(node)) {
      const target = holder[field!] as Record<string | number, unknown>;
      (node.items as unknown[]).forEach((item, i) => {
        if (isMap(node)) {
          const pair = item as { key: unknown; value: unknown };
          const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
          visitScalar(pair.value, (v) => (target[key] = v), `${field}.${key}`);
        } else visitScalar(item, (v) => (target[i] = v), `${field}[${i}]`);
      });
    }
  }
  return issues;
}

/**
 * Where a `.json` config stops being JSON, if it does: it is read by the YAML parser (for positions), which would
 * also take YAML (`name: x`, comments, single quotes, trailing commas) from a file that says it is JSON. One pass
 * with an explicit stack, so that nesting depth costs no call stack.
 */
export function jsonSyntaxError(text: string): { offset: number; message: string } | undefined {
  const closers: string[] = [];
  type Want = "value" | "value-or-close" | "key" | "key-or-close" | "colon" | "after-value";
  let want: Want = "value";
  let i = 0;
  const fail = (message: string) => ({ offset: i, message });
  const skipSpace = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    const c = text[i];
    if (c === undefined) return want === "after-value" && closers.length === 0 ? undefined : fail(closers.length > 0 ? `unexpected end of the file (a "${closers.at(-1)}" is missing)` : "the file holds no JSON value");
    if (want === "after-value") {
      if (closers.length === 0) return fail("unexpected text after the JSON value");
      if (c === ",") want = closers.at(-1) === "}" ? "key" : "value";
      else if (c === closers.at(-1)) closers.pop();
      else return fail(`expected "," or "${closers.at(-1)}"`);
      i++;
      continue;
    }
    if (want === "colon") {
      if (c !== ":") return fail('expected ":" after the key');
      i++;
      want = "value";
      continue;
    }
    if ((want === "key-or-close" && c === "}") || (want === "value-or-close" && c === "]")) {
      closers.pop();
      i++;
      want = "after-value";
      continue;
    }
    if (want === "key" || want === "key-or-close") {
      if (c !== '"') return fail(`expected a key in double quotes${c === "}" ? ' (JSON has no trailing comma)' : ""}`);
      const end = jsonStringEnd(text, i);
      if (typeof end === "object") return end;
      i = end;
      want = "colon";
      continue;
    }
    // a value
    if (c === "{" || c === "[") {
      closers.push(c === "{" ? "}" : "]");
      want = c === "{" ? "key-or-close" : "value-or-close";
      i++;
      continue;
    }
    if (c === '"') {
      const end = jsonStringEnd(text, i);
      if (typeof end === "object") return end;
      i = end;
    } else {
      const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
      literal.lastIndex = i;
      const m = literal.exec(text);
      if (!m) return fail(c === "]" ? "expected a value (JSON has no trailing comma)" : c === "'" ? "strings are in double quotes in JSON" : `expected a JSON value, not ${JSON.stringify(c)}`);
      i += m[0].length;
    }
    want = "after-value";
  }
}

/** The offset after the JSON string starting at `start`, or where and why it is not one. */
function jsonStringEnd(text: string, start: number): number | { offset: number; message: string } {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return { offset: i, message: "a control character (a line break, a tab) inside a string; write it as \\n, \\t" };
    if (c === 0x5c) {
      const next = text[i + 1];
      if (next !== undefined && '"\\/bfnrt'.includes(next)) i++;
      else if (next === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
      else return { offset: i, message: `the escape \\${next ?? ""} is not JSON` };
    }
  }
  return { offset: start, message: "this string has no closing quote" };
}
