/**
 * Escaping for the report: every string in it (store names, reasons, labels, file names) comes from disk or the
 * command line and may hold markup. HTML text and attribute values, JSON inside a <script> data block, and
 * Markdown table cells each get their own escaping; nothing is ever inserted unescaped.
 */
import { createHash } from "node:crypto";

export { markdownCell } from "../util/format.ts";

/** C0 controls (but tab and newline) and DEL: parse errors in HTML, shown as U+FFFD. */
const CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text for an HTML element's content or a double- or single-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(CONTROLS, "\ufffd").replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

/**
 * JSON to put inside `<script type="application/json">`: `<`, `>` and `&` as \u escapes, so no `</script>` or
 * `<!--` can end or change the element; U+2028/2029 too (line terminators to older JavaScript parsers).
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** `'sha256-…'` of an inline script or style, for the Content-Security-Policy that allows exactly it. */
export function cspHash(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}
