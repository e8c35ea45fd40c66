/**
 * JSON from images and registries. Real documents nest a few levels (a config's Labels, an index of manifests);
 * one nested thousands of levels deep parses, but overflows the stack of whatever walks it later (printing,
 * comparing, copying). Such a document is refused here, with the parse errors, before anything sees it.
 */
export const MAX_JSON_DEPTH = 64;

/** JSON.parse, throwing a SyntaxError too when the value nests deeper than MAX_JSON_DEPTH. */
export function parseShallowJson(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > MAX_JSON_DEPTH) throw new SyntaxError(`it nests deeper than ${MAX_JSON_DEPTH} levels`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return value;
}

/** A JSON object (not null, not an array): what a parsed document's mapping is. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
