/**
 * A data config's text before YAML sees it, and the one YAML check we do ourselves:
 * - bytes must be UTF-8: Node's decoder would turn other bytes (Latin-1 file names, say) silently into U+FFFD, and
 *   the image would hold names nobody wrote. The first bad byte is reported by line and column;
 * - duplicate keys, found with one set per mapping: the yaml package's own uniqueKeys check compares every key with
 *   every other (a 100 000-key mapping took minutes).
 */
import { isMap, isScalar, visit, type Document, type LineCounter } from "yaml";

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
