/**
 * Temp file owner tags: a file is taken for a dead build's only when its owner is of this host, boot and PID
 * namespace and gone; files of a build in another PID namespace sharing the directory (containers on one cache
 * volume) are never collected, however their pids look from here.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { collectStale, isStale, ownerTag, tempName } from "../../src/util/temp.ts";

const TEMP_TS = path.resolve(import.meta.dirname, "../../src/util/temp.ts");
const hasProc = fs.existsSync("/proc/self/ns/pid");
const canUnshare = hasProc && spawnSync("unshare", ["-Urpf", "--mount-proc", "true"]).status === 0;

/** A pid no process has now: a child's, once it has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

/** `name` (this process's) as another owner would have it: some of its owner fields changed. */
function withOwner(name: string, change: { scope?: string; pid?: number | string; start?: string }): string {
  const [host, scope, pid, start] = ownerTag().split(".") as [string, string, string, string];
  return name.replace(ownerTag(), [host, change.scope ?? scope, change.pid ?? pid, change.start ?? start].join("."));
}

describe.runIf(hasProc)("temp file owners", () => {
  it("collects a dead owner's files of this namespace, never this process's or a live one's", () => {
    const mine = tempName("layer-0");
    expect(isStale(mine)).toBe(false);
    expect(isStale(withOwner(mine, { pid: deadPid() }))).toBe(true);
    // pid 1 is running, but started at another time: the owner's pid was reused.
    expect(isStale(withOwner(mine, { pid: 1, start: "999999999999" }))).toBe(true);
  });

  it("leaves files of another boot or PID namespace, and names without a scope (older versions), to prune", () => {
    const mine = tempName("layer-0");
    expect(isStale(withOwner(mine, { pid: deadPid(), scope: "0123456789abcdef" }))).toBe(false);
    expect(isStale(withOwner(mine, { pid: deadPid(), scope: "0" }))).toBe(false);
    const [host] = ownerTag().split(".");
    expect(isStale(`layer-0-${host}.${deadPid()}.12345-0123456789ab`)).toBe(false);
  });

  it.runIf(canUnshare)("never collects the file of a build running in another PID namespace with the same hostname", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-temp-"));
    // A build in a container of its own: same hostname, its own PID namespace (where it is pid 1).
    const script = `import(${JSON.stringify(TEMP_TS)}).then((t) => { console.log(t.tempName("layer-0")); process.stdin.resume(); });`;
    const child = spawn("unshare", ["-Urpf", "--mount-proc", process.execPath, "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      const name = await new Promise<string>((resolve, reject) => {
        child.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()));
        child.once("exit", () => reject(new Error("the child exited before naming a temp file")));
      });
      expect(name).toMatch(/^layer-0-/);
      fs.writeFileSync(path.join(dir, name), "in progress");
      expect(isStale(name)).toBe(false);
      expect(collectStale(dir, isStale)).toBe(0);
      expect(fs.readdirSync(dir)).toEqual([name]);
    } finally {
      child.stdin.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
