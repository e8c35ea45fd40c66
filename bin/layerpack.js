#!/usr/bin/env node
// The command's entry point: runs the compiled code in dist/ (built by `npm pack` through `prepack`, and by
// `npm run build` or `npm test` in a checkout); a checkout without dist/ runs its src/ on a Node that strips types.
// Written in syntax every Node since 10 parses, so that an old Node gets one clear line instead of a SyntaxError,
// and it answers --version without loading anything else: both are measured by bench/startup.ts.
import { existsSync, readFileSync } from "node:fs";

// Node 22 from 22.15 has everything used here (unflagged node:sqlite, zstd in node:zlib, module.registerHooks and
// module.stripTypeScriptTypes for TS configs); Node 23 is no LTS but has them too.
var MINIMUM = [22, 15, 0];
var version = process.versions.node;
var parts = version.split(".").map(Number);
var older = false;
for (var i = 0; i < 3; i++) {
  if (parts[i] !== MINIMUM[i]) {
    older = parts[i] < MINIMUM[i];
    break;
  }
}
if (older) {
  process.stderr.write("layerpack needs Node >= " + MINIMUM.join(".") + " (22, 24 or 26 LTS); this is " + version + "\n");
  process.exit(1);
}

var args = process.argv.slice(2);
if (args.indexOf("--version") !== -1 || args.indexOf("-V") !== -1 || args.indexOf("-v") !== -1) {
  var pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write("layerpack " + pkg.version + "\n");
} else {
  // No top-level await: Node 12-14.7 would read it as a SyntaxError before the check above could run.
  import("node:module")
    .then(function (nodeModule) {
      // V8's code cache on disk (under the OS temp dir) makes every run after the first start faster.
      if (nodeModule.enableCompileCache) nodeModule.enableCompileCache();
      quietExperimentalWarnings();
      return import("../dist/cli.js").catch(function (e) {
        if (!(e && e.code === "ERR_MODULE_NOT_FOUND" && String(e.message).indexOf("dist") !== -1)) throw e;
        // No install script builds dist/ (npm lists any as a script to approve): a checkout runs its sources.
        var src = new URL("../src/cli.ts", import.meta.url);
        if (!existsSync(src)) throw e;
        return import(src.href).catch(function (e2) {
          if (e2 && e2.code === "ERR_UNKNOWN_FILE_EXTENSION") {
            process.stderr.write("layerpack: dist/ is missing and this Node does not run TypeScript; in a checkout, run `npm run build` first\n");
            process.exit(1);
          }
          throw e2;
        });
      });
    })
    .then(function (cli) {
      return cli.main(args);
    })
    .then(function (status) {
      process.exitCode = status;
    });
}

// stripTypeScriptTypes (TS configs) announces itself as experimental on every run; that says nothing to a user of
// this tool. (node:sqlite's warning is dropped where it is loaded, src/util/node-sqlite.ts, for the library too.)
// Every other warning is kept.
function quietExperimentalWarnings() {
  var emitWarning = process.emitWarning;
  process.emitWarning = function (warning) {
    var text = String(warning);
    if (text.indexOf("stripTypeScriptTypes is an experimental feature") === 0) return;
    return emitWarning.apply(process, arguments);
  };
}
