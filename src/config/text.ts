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
