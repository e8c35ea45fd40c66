/**
 * Temp file names that say who owns them, so a later run can collect what a killed run (SIGKILL, power loss) left:
 * `<prefix>-<owner>-<random>`, where the owner is `<host>.<pid>.<start>` — this machine's name, the process id and
 * the process's start time (from /proc), which together tell a dead owner from a live one even when pids are
 * reused. Files of another host (a cache shared between containers) are never judged here: they are left to
 * `cache prune`'s age rule.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

const host = () => os.hostname().replace(/[^A-Za-z0-9]/g, "_");
let self: string | undefined;

/** This process's owner tag. */
export function ownerTag(): string {
  self ??= `${host()}.${process.pid}.${startTime(process.pid) ?? "0"}`;
  return self;
}

/** `<prefix>-<owner>-<random>`: a fresh temp name owned by this process. */
export function tempName(prefix: string): string {
  return `${prefix}-${ownerTag()}-${randomBytes(6).toString("hex")}`;
}

/** Whether `name` (made by tempName) belongs to a process of this host that is no longer running. */
export function isStale(name: string): boolean {
  const m = /-([A-Za-z0-9_]+)\.(\d+)\.(\d+)-[0-9a-f]{12}(?=\.|$)/.exec(name);
  if (!m || m[1] !== host()) return false;
  const pid = Number(m[2]);
  return pid !== process.pid && startTime(pid) !== m[3];
}

/** Removes the entries of `dir` that `stale` says a dead process left; returns how many. Never throws. */
export function collectStale(dir: string, stale: (name: string) => boolean): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!stale(name)) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed++;
    } catch {
      // not ours to remove after all (permissions): prune will tell
    }
  }
  return removed;
}
