import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { generateSchemas, SCHEMA_DIR, staleSchemas } from "../../scripts/gen-schemas.ts";
import { tmpConfigDir } from "./helpers.ts";

const SCRIPT = fileURLToPath(new URL("../../scripts/gen-schemas.ts", import.meta.url));

function runScript(args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: "utf8" });
}

describe("generated JSON Schemas", () => {
  test("the committed files in schemas/ are up to date (run `npm run schema` if not)", () => {
    for (const [name, content] of Object.entries(generateSchemas())) {
      expect(readFileSync(path.join(SCHEMA_DIR, name), "utf8"), `schemas/${name} is stale: run npm run schema`).toBe(content);
    }
  });

  test("the image spec schema describes what users write: only name is required", () => {
    const schema = JSON.parse(generateSchemas()["image-spec.schema.json"]!);
    expect(schema.required).toEqual(["name"]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.layers.properties.max).toMatchObject({ maximum: 127, minimum: 1, default: 100 });
  });

  test("generation is stable", () => {
    expect(generateSchemas()).toEqual(generateSchemas());
  });

  test("--check fails on a stale or missing file and passes after writing", () => {
    const dir = tmpConfigDir();
    expect(staleSchemas(dir)).toEqual(["image-spec.schema.json", "plan.schema.json"]);
    const missing = runScript(["--check", "--dir", dir]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("image-spec.schema.json is stale: run npm run schema");
    expect(runScript(["--dir", dir]).status).toBe(0);
    expect(runScript(["--check", "--dir", dir]).status).toBe(0);
    writeFileSync(path.join(dir, "plan.schema.json"), "{}\n");
    const stale = runScript(["--check", "--dir", dir]);
    expect([stale.status, staleSchemas(dir)]).toEqual([1, ["plan.schema.json"]]);
  });
});
