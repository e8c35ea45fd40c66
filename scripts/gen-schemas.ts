/**
 * Writes the JSON Schemas in schemas/ from the zod schemas (the single source of truth).
 *   node scripts/gen-schemas.ts           write them
 *   node scripts/gen-schemas.ts --check   exit 1 if a committed file differs from what would be generated
 *   --dir <dir>                           another directory than schemas/ (for tests)
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { layerPlanSchema } from "../src/plan/types.ts";
import { imageSpecSchema } from "../src/config/schema.ts";
import { STRING_FIELDS } from "../src/config/text.ts";

export const SCHEMA_DIR = fileURLToPath(new URL("../schemas/", import.meta.url));

type Json = Record<string, unknown>;

/** The loader takes a bare number in these string fields as the text written (`tag: 1.10`, text.ts), so editors must
 * not flag it: each becomes "the string, or a number". */
function numbersAsText(json: Json): Json {
  const props = json.properties as Record<string, Json>;
  for (const [field, each] of STRING_FIELDS) {
    const holder = props[field!];
    if (holder === undefined) throw new Error(`STRING_FIELDS names ${field}, which the schema lacks`);
    const key = each === undefined ? undefined : holder.type === "array" ? "items" : "additionalProperties";
    const node = (key === undefined ? holder : holder[key]) as Json;
    const { description, ...text } = node;
    const either = { ...(description !== undefined ? { description } : {}), anyOf: [text, { type: "number", description: "a bare number is read as the text written: 1.10 stays 1.10" }] };
    if (key === undefined) props[field!] = either;
    else holder[key] = either;
  }
  return json;
}

function render(schema: z.ZodType, io: "input" | "output", title: string, description: string): string {
  const generated = z.toJSONSchema(schema, { io, target: "draft-2020-12" }) as Json;
  const json = schema === imageSpecSchema ? numbersAsText(generated) : generated;
  // Title and description first, for readers of the file; the rest in zod's (stable) order.
  return `${JSON.stringify({ $schema: json.$schema, title, description, ...json }, null, 2)}\n`;
}

/** File name in schemas/ -> its generated content. */
export function generateSchemas(): Record<string, string> {
  return {
    // What users write (defaults optional), so editors validate configs.
    "image-spec.schema.json": render(
      imageSpecSchema,
      "input",
      "layerpack image spec",
      "image.config.{yaml,yml,json} / .layerpackrc / package.json#layerpack. Generated from src/config/schema.ts by `npm run schema`; do not edit.",
    ),
    "plan.schema.json": render(
      layerPlanSchema,
      "output",
      "layerpack layer plan",
      "Plan files written by `layerpack plan --write` (image.plan.yaml) and `layerpack plan --json`. Generated from src/plan/types.ts by `npm run schema`; do not edit.",
    ),
  };
}

/** Names of the files in `dir` that are missing or differ from the generated content. */
export function staleSchemas(dir = SCHEMA_DIR): string[] {
  return Object.entries(generateSchemas())
    .filter(([name, content]) => {
      try {
        return readFileSync(path.join(dir, name), "utf8") !== content;
      } catch {
        return true;
      }
    })
    .map(([name]) => name);
}

function main(args: string[]): number {
  const at = args.indexOf("--dir");
  const dir = at >= 0 && args[at + 1] !== undefined ? path.resolve(args[at + 1]!) : SCHEMA_DIR;
  if (args.includes("--check")) {
    const stale = staleSchemas(dir);
    for (const name of stale) console.error(`${path.join(dir, name)} is stale: run npm run schema`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const [name, content] of Object.entries(generateSchemas())) {
    const file = path.join(dir, name);
    writeFileSync(`${file}.tmp`, content);
    renameSync(`${file}.tmp`, file);
    console.log(`wrote ${file}`);
  }
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
