/** Bytes for people: 1023 B, 1.5 KiB, 12.0 MiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

// C0 controls but newline and tab, DEL and the C1 controls (U+009B is a CSI in some terminals); and the invisible
// format characters that reorder text or join it invisibly (bidirectional marks and overrides, zero-width joiners,
// BOM). The zero-width space stays: markdownCell uses it to break what GitHub would link.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200c-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
const escaped = (c: string): string => {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

/**
 * Text for a terminal with control characters shown as \xNN (the invisible format characters as \uNNNN): names
 * and comments come from images and stores anyone may have made, and an escape sequence in them could retitle or
 * clear the terminal or recolour the output.
 */
export const printable = (s: string): string => s.replace(CONTROL, escaped);

/**
 * JSON text with the characters printable escapes written as \uNNNN: JSON.stringify escapes C0 controls but leaves
 * DEL, the C1 controls and U+202E & co. raw. Outside strings JSON is ASCII, so every one of them is inside a string,
 * and the text parses back to the same value.
 */
export const jsonPrintable = (json: string): string => json.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** JSON.stringify for what a command prints (names and comments come from images anyone made): jsonPrintable. */
export const jsonText = (value: unknown, indent?: number): string => jsonPrintable(JSON.stringify(value, null, indent));

/** printable, and on one line: a newline in a value could forge a line of output (a fake "unchanged"). */
export const oneLine = (s: string): string => printable(s).replace(/[\n\t]/g, escaped);

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/**
 * A Markdown table cell (pull request comments): no pipes, no line breaks, no HTML (GitHub renders `<details>` or
 * `<img>` in a cell), and no emphasis, code span or link syntax, so a store name cannot turn into a link, an image,
 * a mention or bold "APPROVED". Control characters are shown as \xNN, as in the terminal.
 */
export function markdownCell(text: string): string {
  return (
    oneLine(text)
      .replace(/[&<>]/g, (c) => HTML_ENTITIES[c]!)
      .replace(/([\\|`*_[\]~])/g, "\\$1")
      // What GitHub links by itself (www., URLs, e-mail addresses, @mentions, #references) gets a zero-width space.
      .replace(/(www)(\.)/gi, "$1\u200b$2")
      .replace(/:\/\//g, ":\u200b//")
      .replace(/[@#]/g, "$&\u200b")
  );
}

/** Mebibytes for messages about limits: 0.5 MiB, 16 MiB. */
export const mib = (n: number): string => `${Math.round((n / (1 << 20)) * 10) / 10} MiB`;

/** What a file that is not the regular file (or directory) expected is, for messages: "a FIFO", "a device", ... */
export function fileKind(st: { isSymbolicLink(): boolean; isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

/** `1 layer`, `2 layers`: counts in messages read as English. */
export function count(n: number | bigint, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 || n === 1n ? one : many}`;
}
