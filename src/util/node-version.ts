/**
 * Imported first by the library's entry (src/index.ts): on a Node older than layerpack needs, importing it fails
 * with one clear line instead of an error about a missing export. bin/layerpack.js checks the same for the command
 * (in syntax an old Node parses); keep the two minimums equal. For this to run, no module may import by name what
 * an old Node lacks (node:module's registerHooks): a missing named export fails before any code runs.
 */
const MINIMUM = [22, 15, 0] as const;

const have = process.versions.node.split(".").map(Number);
const i = MINIMUM.findIndex((m, k) => have[k] !== m);
if (i >= 0 && (have[i] ?? 0) < MINIMUM[i]!) {
  throw new Error(`layerpack needs Node >= ${MINIMUM.join(".")} (22, 24 or 26 LTS); this is ${process.versions.node}`);
}
