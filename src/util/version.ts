/** layerpack's own version, from its package.json (two levels up from src/util/ and from dist/util/ alike). */
import * as fs from "node:fs";

let cached: string | undefined;

export function layerpackVersion(): string {
  cached ??= (JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  return cached;
}
