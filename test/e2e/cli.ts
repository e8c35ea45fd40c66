/** Runs the real command line (`node bin/layerpack.js`, on the Node 24 from devDependencies) as a user would. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");

/** Tests never touch the user's cache: each test process gets its own, removed at exit. */
const CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-test-cache-"));
process.on("exit", () => fs.rmSync(CACHE, { recursive: true, force: true }));

export function layerpack(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    cwd: opts.cwd,
    env: { ...process.env, LAYERPACK_CACHE_DIR: CACHE, ...opts.env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
