/**
 * Temp file names that say who owns them, so a later run can collect what a killed run (SIGKILL, power loss) left:
 * `<prefix>-<owner>-<random>`, where the owner is `<host>.<scope>.<pid>.<start>` — this machine's name; a hash of
 * the boot id and the PID namespace, the only place a pid means anything; the process id; and the process's start
 * time (from /proc), which together tell a dead owner from a live one even when pids are reused. Only files of our
 * own scope are judged here: containers sharing a cache volume have PID namespaces of their own (and often one
 * hostname), where our pid 7 is not theirs, so their files — like files of another host, of older versions without
 * a scope, or of a scope /proc cannot tell ("0") — are left to `cache prune`'s age rule.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** A scope no name matches (see isStale): nothing is judged where /proc does not tell ours. */
const UNKNOWN_SCOPE = "0";

/** Boot and PID namespace, hashed; UNKNOWN_SCOPE unless /proc is this namespace's (else its pids are not ours). */
function readScope(): string {
  try {
    if (fs.readlinkSync("/proc/self") !== String(process.pid)) return UNKNOWN_SCOPE;
    const boot = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const pidNamespace = fs.readlinkSync("/proc/self/ns/pid");
    if (boot === "" || pidNamespace === "") return UNKNOWN_SCOPE;
    return createHash("sha256").update(`${boot}\0${pidNamespace}`).digest("hex").slice(0, 16);
  } catch {
    return UNKNOWN_SCOPE;
  }
}

const host = () => os.hostname().replace(/[^A-Za-z0-9]/g, "_");
let scope: string | undefined;
let self: string | undefined;

/** This process's owner tag. */
export function ownerTag(): string {
  scope ??= readScope();
  self ??= `${host()}.${scope}.${process.pid}.${startTime(process.pid) ?? "0"}`;
  return self;
}

/** `<prefix>-<owner>-<random>`: a fresh temp name owned by this process. */
export function tempName(prefix: string): string {
  return `${prefix}-${ownerTag()}-${randomBytes(6).toString("hex")}`;
}

/** Whether `pid` is a process of our namespace: EPERM (another user's) is one too; only ESRCH says none. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Whether `name` (made by tempName) belongs to a process of this host, boot and PID namespace that is gone. */
export function isStale(name: string): boolean {
  const m = /-([A-Za-z0-9_]+)\.([0-9a-f]{16})\.([1-9]\d*)\.(\d+)-[0-9a-f]{12}(?=\.|$)/.exec(name);
  const own = ownerTag();
  if (!m || m[1] !== host() || m[2] !== scope || own === `${m[1]}.${m[2]}.${m[3]}.${m[4]}`) return false;
  const pid = Number(m[3]);
  if (!running(pid)) return true;
  // Running with another start time: the pid was reused. Unreadable (/proc mounted hidepid): take it for the owner.
  const start = startTime(pid);
  return start !== undefined && start !== m[4];
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
