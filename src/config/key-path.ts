/** Key paths into a config, and how messages show them (apart from format.ts: the config thread needs no yaml). */
export type KeyPath = readonly PropertyKey[];

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `["paths", 1, "mode"]` -> `paths[1].mode`; keys that are not identifiers are quoted: `labels["a.b"]`. */
export function formatKeyPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && IDENTIFIER.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}
