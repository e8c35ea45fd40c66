/**
 * Unreadable inputs. Root reads any file, so when the suite runs as root (as CI does) the command line is run as
 * the unprivileged user `nobody` through setpriv; otherwise as the current user.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync, execFileSync } from "node:child_process";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
const asRoot = process.getuid?.() === 0;
const canDrop = !asRoot || requireTool("setpriv", "util-linux");

function runUnprivileged(args: string[], cwd: string) {
  const cmd = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: "utf8", env: { ...process.env, HOME: cwd } });
  return { status: r.status, stderr: r.stderr };
}

describe.runIf(canDrop)("unreadable inputs", () => {
  let dir: string;
  let ex: ExampleStore;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-unreadable-"));
    ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    fs.mkdirSync(path.join(dir, "out"));
    // The unprivileged user needs to reach the tree and write the output directory.
    execFileSync("chmod", ["755", dir]);
    execFileSync("chmod", ["777", path.join(dir, "out")]);
  });
  afterAll(() => {
    execFileSync("chmod", ["-R", "u+w", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a config without read permission is named", () => {
    const cfg = path.join(dir, "secret.yaml");
    fs.writeFileSync(cfg, "name: x\nprofile: ./profile\noutput: { path: ./out/x.tar }\n", { mode: 0o000 });
    fs.chmodSync(cfg, 0o000);
    const r = runUnprivileged(["build", cfg], dir);
    expect(r.stderr).toMatch(/cannot read config .*secret\.yaml: permission denied/);
    expect(r.status).toBe(1);
  });

  it("an unreadable file in a store item is named, and no output is left", () => {
    const root = path.join(dir, "locked-store");
    fs.cpSync(path.join(dir, "store"), root, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", root]);
    const secret = path.join(root, ex.hello, "secret");
    fs.writeFileSync(secret, "x");
    fs.chmodSync(secret, 0o000);
    const cfg = path.join(dir, "locked.yaml");
    fs.writeFileSync(
      cfg,
      `name: x\nstore: { dir: /gnu/store, root: ./locked-store }\nroots: ["${ex.hello}"]\nclosure: { from: scan }\nsymlinks: []\noutput: { path: ./out/x.tar }\n`,
    );
    const r = runUnprivileged(["build", cfg], dir);
    expect(r.stderr).toMatch(new RegExp(`reading ${ex.hello}/secret: EACCES`));
    expect(r.status).toBe(1);
    expect(fs.readdirSync(path.join(dir, "out"))).toEqual([]);
  });
});
