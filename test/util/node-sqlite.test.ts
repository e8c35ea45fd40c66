/** nodeSqlite drops Node's "SQLite is experimental" warning, for the library as for the command, and no other. */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { expect, it } from "vitest";

it("loads node:sqlite without its ExperimentalWarning; other warnings still print", () => {
  const module = path.resolve(import.meta.dirname, "../../src/util/node-sqlite.ts");
  const script = `import { nodeSqlite } from ${JSON.stringify(module)};\nconst db = new (nodeSqlite().DatabaseSync)(":memory:");\ndb.close();\nprocess.emitWarning("still here", "ExperimentalWarning");\n`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/SQLite/);
  expect(r.stderr).toMatch(/ExperimentalWarning: still here/);
});
