/**
 * Secrets a registry client holds (passwords, identity tokens, bearer tokens) and the forms a server may echo them
 * in: raw, base64 (as in `Authorization: Basic`, also at any offset inside longer base64), base64url, and the
 * escaped forms of textForms. Every message the client makes goes through `redact` before anyone sees it.
 */

export const REDACTED = "[redacted]";

/**
 * Shorter secrets are not redacted: replacing every "1" of a one-character password would garble every message
 * (host names, ports, digests) while hiding nothing a guess would not find.
 */
const MIN_LENGTH = 4;

/** base64 of `data` at each of the three alignments it can have inside a longer base64 text. */
function base64Forms(data: Buffer): string[] {
  const forms = [data.toString("base64")];
  for (let k = 0; k < 3; k++) {
    const text = Buffer.concat([Buffer.alloc(k), data]).toString("base64").replace(/=+$/, "");
    // Drop the characters that also encode the padding bytes before, or whatever follows after.
    const head = [0, 2, 3][k]!;
    const tail = (k + data.length) % 3 === 0 ? 0 : 1;
    forms.push(text.slice(head, text.length - tail));
  }
  return forms;
}

const lowerPercent = (t: string): string => t.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
const asciiJson = (t: string, upper: boolean): string =>
  JSON.stringify(t)
    .slice(1, -1)
    .replace(/[^\u0000-\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/\\u([0-9a-f]{4})/g, (m, h: string) => (upper ? `\\u${h.toUpperCase()}` : m));

/**
 * The texts a server may echo a secret as: raw; percent-encoded as encodeURIComponent and as forms do (+ for a
 * space), in upper and lower case hex; JSON-escaped, also with \uXXXX for non-ASCII (Python's default) and
 * escaped twice (a JSON detail re-encoded); its UTF-8 bytes read as Latin-1; hex.
 */
function textForms(t: string): string[] {
  const bytes = Buffer.from(t);
  // Encoders differ in what they leave alone: JS's encodeURIComponent and URLSearchParams, and every byte but the
  // unreserved ones (Python's quote with safe="", or with its default safe="/").
  const strict = (keep: RegExp) => [...bytes].map((b) => (keep.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
  const percent = [encodeURIComponent(t), new URLSearchParams({ s: t }).toString().slice(2), strict(/^[A-Za-z0-9_.~-]$/), strict(/^[A-Za-z0-9_.~/-]$/)];
  const json = JSON.stringify(t).slice(1, -1);
  return [
    t,
    ...percent.flatMap((u) => [u, lowerPercent(u), u.replace(/%20/g, "+"), lowerPercent(u).replace(/%20/g, "+")]),
    json,
    asciiJson(t, false),
    asciiJson(t, true),
    JSON.stringify(json).slice(1, -1),
    bytes.toString("latin1"),
    bytes.toString("hex"),
    bytes.toString("hex").toUpperCase(),
  ];
}

export class Secrets {
  readonly #forms = new Set<string>();
  #sorted: string[] | undefined;

  /** Adds a secret; `basicUser` also covers base64 of `user:secret` (a Basic Authorization header). */
  add(secret: string | undefined, basicUser?: string): void {
    if (secret === undefined || secret === "") return;
    // `user:pw` is worth hiding even when `pw` alone is too short to.
    const raw = [secret, ...(basicUser !== undefined ? [`${basicUser}:${secret}`] : [])].filter((s) => s.length >= MIN_LENGTH);
    for (const s of raw) {
      const bytes = Buffer.from(s);
      const forms = [...textForms(s), ...base64Forms(bytes), bytes.toString("base64url")];
      for (const f of forms) if (f.length >= MIN_LENGTH) this.#forms.add(f);
    }
    this.#sorted = undefined;
  }

  redact(text: string): string {
    if (this.#forms.size === 0) return text;
    // Longest first, so a Basic header is replaced whole rather than around a shorter form inside it.
    this.#sorted ??= [...this.#forms].sort((a, b) => b.length - a.length);
    let out = text;
    for (const f of this.#sorted) if (out.includes(f)) out = out.split(f).join(REDACTED);
    return out;
  }

  /** A copy of an error's cause chain with redacted messages (the CLI prints causes too); keeps `code`. */
  redactCause(err: unknown, depth = 0): Error | undefined {
    if (!(err instanceof Error) || depth > 5) return undefined;
    const copy = new Error(this.redact(err.message), { cause: this.redactCause(err.cause, depth + 1) });
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") Object.assign(copy, { code });
    return copy;
  }
}
