/** Temp config directories for the loader tests. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect } from "vitest";
import { SpecError } from "../../src/errors.ts";
import { loadSpec, type LoadOptions } from "../../src/config/load.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir holding `files` (name -> content), removed after the test. */
export function tmpConfigDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "layerpack-spec-"));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** The smallest valid config, as YAML lines to append to. */
export const MINIMAL_YAML = "name: hello\nprofile: ./profile\noutput: { path: ./hello.tar }\n";

/** Load and expect a SpecError; returns it for further checks. */
export async function loadError(options: LoadOptions): Promise<SpecError> {
  const result = await loadSpec({ env: {}, ...options }).then(
    (r) => r,
    (e: unknown) => e,
  );
  expect(result).toBeInstanceOf(SpecError);
  return result as SpecError;
}
