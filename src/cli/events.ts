/**
 * The JSON Lines events of `build --json`, `push --json` and `watch --json`: one vocabulary (README, "JSON
 * events"), every event with `type` and `time` (ISO 8601). Kept free of heavy imports: cli.ts uses it for errors.
 */
import { LayerpackError, SpecError } from "../errors.ts";
import type { BuildResult } from "../image/build.ts";
import { jsonText } from "../util/format.ts";

export type JsonEvent = { type: string } & Record<string, unknown>;

/** The line for an event, stamped with the time now. */
export function jsonLine(event: JsonEvent): string {
  return `${jsonText({ ...event, time: new Date().toISOString() })}\n`;
}

/** `build-done`: what was built, the same for a build and each rebuild of watch. */
export function buildDone(result: BuildResult, seconds: number): JsonEvent {
  return {
    type: "build-done",
    output: result.output,
    imageId: result.imageId,
    repoTag: result.repoTag,
    repoTags: result.repoTags,
    layers: result.layers,
    ...result.stats,
    ...(result.push ? { push: result.push } : {}),
    ...(result.sbomFiles?.length ? { sbomFiles: result.sbomFiles } : {}),
    ...(result.warnings?.length ? { warnings: result.warnings } : {}),
    seconds: Number(seconds.toFixed(3)),
  };
}

/** A failure: `error` (the command failed) or `build-failed` (watch goes on), with where in the config. */
export function failure(err: unknown, type: "error" | "build-failed" = "error"): JsonEvent {
  const e = err as Partial<SpecError> & Error;
  const where = err instanceof SpecError ? { file: e.file, keyPath: e.keyPath, line: e.line, column: e.column } : {};
  const message = err instanceof LayerpackError ? err.message : `internal error: ${e?.message ?? String(err)}`;
  return { type, message, ...Object.fromEntries(Object.entries(where).filter(([, v]) => v !== undefined)) };
}
