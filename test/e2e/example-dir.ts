/** A temp directory holding the example store (read-only, like a real one) and configs that pack it. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";

export function setUpExample(prefix: string): { dir: string; ex: ExampleStore } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, ex: makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") }) };
}

export function removeExample(dir: string | undefined): void {
  if (!dir) return;
  // The store is read-only like a real one; make it writable again so it can be removed.
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes `<dir>/<name>.yaml` packing the example store by scan, tagged `test`, with `body` appended. */
export function exampleConfig(dir: string, name: string, body: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `name: ${name}\ntag: test\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\n${body}\n`);
  return file;
}
