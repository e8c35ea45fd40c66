import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { Ajv2020 } from "ajv/dist/2020.js";
import YAML from "yaml";
import { generateSchemas, SCHEMA_DIR, staleSchemas } from "../../scripts/gen-schemas.ts";
import { loadSpec } from "../../src/config/load.ts";
import { MINIMAL_YAML, tmpConfigDir } from "./helpers.ts";

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

  test("an editor's verdict (ajv on the schema) is the loader's, for YAML and JSON configs", async () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(generateSchemas()["image-spec.schema.json"]!));
    const cases = [
      "tag: 1.10\ntags: [1.2, latest]\nenv: { LANG: 1 }\nlabels: { version: 2.0 }\n",
      "architecture: arm64\nvariant: v8\nos: linux\n",
      "architecture: x86_64\n",
      "architecture: aarch64\n",
      "os: gnu\n",
      "tag: [1]\n",
      "tags: [{ a: 1 }]\n",
      "env: { A: [1] }\n",
    ];
    for (const extra of cases) {
      for (const [name, text] of [["image.config.yaml", MINIMAL_YAML + extra], ["image.config.json", JSON.stringify(YAML.parse(MINIMAL_YAML + extra)).replace(/"tag":"1.1"/, '"tag":1.10')]] as const) {
        const cwd = tmpConfigDir({ [name]: text });
        const loaded = await loadSpec({ cwd, env: {} }).then(() => true, () => false);
        expect(validate(YAML.parse(text)), `${name}: ${extra}`).toBe(loaded);
      }
    }
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
