#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 24 strips types natively, so there is no build step.

import { enableCompileCache } from "node:module";

// V8's code cache on disk (under the OS temp dir) makes every run after the first start faster.
enableCompileCache?.();

// node:sqlite (used read-only for store databases) still announces itself as experimental on every run; that
// warning says nothing to a user of this tool. Every other warning is kept.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  if (String(warning).startsWith("SQLite is an experimental feature")) return;
  return emitWarning.call(process, warning, ...rest);
};

const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
