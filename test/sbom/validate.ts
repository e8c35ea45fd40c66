/**
 * The formats' published JSON Schemas, compiled with ajv: SPDX 2.3 from the copy in ./schema (no npm package
 * ships it; see its README), CycloneDX 1.6 from @cyclonedx/cyclonedx-library's res/schema, with its spdx and
 * jsf schemas under the names bom-1.6 refers to them by.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";

const require = createRequire(import.meta.url);
type Plugin = (ajv: Ajv, options?: unknown) => Ajv;
const addFormats = require("ajv-formats") as Plugin;
const addDraft2019Formats = require("ajv-formats-draft2019") as Plugin;

export const SPDX_SCHEMA_FILE = path.join(import.meta.dirname, "schema", "spdx-2.3.schema.json");
export const SPDX_SCHEMA_SHA256 = "239208b7ac287b3cf5d9a9af23f9d69863971102a5e1587a27a398b43490b89b";
export const CDX_SCHEMA_DIR = path.join(path.dirname(require.resolve("@cyclonedx/cyclonedx-library/package.json")), "res", "schema");

const readJson = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;

function newAjv(): Ajv {
  // strict off: both schemas use keywords and formats ajv's strict mode rejects (they are not ours to fix).
  const ajv = new Ajv({ strict: false, allErrors: true, loadSchema: undefined });
  addFormats(ajv);
  addDraft2019Formats(ajv); // idn-email, iri-reference, ... which CycloneDX uses
  return ajv;
}

export function spdxValidator(): ValidateFunction {
  return newAjv().compile(readJson(SPDX_SCHEMA_FILE));
}

export function cyclonedxValidator(): ValidateFunction {
  const ajv = newAjv();
  ajv.addSchema(readJson(path.join(CDX_SCHEMA_DIR, "spdx.SNAPSHOT.schema.json")), "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json");
  ajv.addSchema(readJson(path.join(CDX_SCHEMA_DIR, "jsf-0.82.SNAPSHOT.schema.json")), "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json");
  return ajv.compile(readJson(path.join(CDX_SCHEMA_DIR, "bom-1.6.SNAPSHOT.schema.json")));
}

/** The errors, readable, for expect(...).toEqual([]). */
export function errorsOf(validate: ValidateFunction, doc: unknown): string[] {
  return validate(doc) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}
