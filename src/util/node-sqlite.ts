/**
 * node:sqlite, loaded on first use (most builds read or write no store database). Loading it makes Node warn that
 * SQLite is experimental, which says nothing to a user of layerpack — of the command or of the library, whose
 * callers never chose SQLite — so that one warning, emitted while the module loads, is dropped; any other is kept.
 */
export function nodeSqlite(): typeof import("node:sqlite") {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (String(warning).startsWith("SQLite is an experimental feature")) return;
    return (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");
  } finally {
    process.emitWarning = emitWarning;
  }
}
