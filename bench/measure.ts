/**
 * Timing and memory of a command for the benchmarks: wall time from spawn to exit, CPU time of the whole tree, and
 * peak memory sampled from /proc every 20 ms over the command's process tree (no GNU time needed; very short-lived
 * children may be missed). CPU time comes from a bash wrapper that, after the command, reads its own cutime and
 * cstime (every descendant it and they waited for): unlike wall time it hardly moves when others share the cores.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..");
const CPU_TAG = "@@measure-cpu@@";

export interface Measurement {
  wallSeconds: number;
  /** Largest VmHWM of any single process of the command's tree. */
  peakRssMb: number;
  /** Largest sampled sum of VmRSS over the tree (pipelines run their processes at once). */
  peakTreeRssMb: number;
  /** User + system CPU seconds of the command and all its descendants. */
  cpuSeconds: number;
  exitCode: number;
  stderrTail: string;
}

/** ppid of every process, from /proc/<pid>/stat (the comm field may hold spaces and parentheses). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  for (const queue = [root]; queue.length > 0; ) {
    const pid = queue.pop()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function statusKb(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { hwm: field("VmHWM"), rss: field("VmRSS") };
  } catch {
    return undefined;
  }
}

/** Runs a command, sampling the memory of its process tree, and times it from spawn to exit. */
export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    // Fields 16 and 17 of /proc/<pid>/stat (1-based): cutime, cstime, in clock ticks (100 per second on Linux).
    const wrapper = `"$@"; rc=$?; read -r -a s < /proc/$$/stat; echo "${CPU_TAG} \${s[15]} \${s[16]}" >&2; exit $rc`;
    const child = spawn("bash", ["-c", wrapper, "measure", cmd, ...args], { cwd: REPO, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let cpuSeconds = Number.NaN;
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      const m = new RegExp(`${CPU_TAG} (\\d+) (\\d+)`).exec(stderr);
      if (m) {
        cpuSeconds = (Number(m[1]) + Number(m[2])) / 100;
        stderr = stderr.replace(m[0], "");
      }
    });
    let hwmKb = 0;
    let treeKb = 0;
    const sample = (): void => {
      if (child.pid === undefined) return;
      let sum = 0;
      for (const pid of processTree(child.pid)) {
        const s = statusKb(pid);
        if (!s) continue;
        hwmKb = Math.max(hwmKb, s.hwm);
        sum += s.rss;
      }
      treeKb = Math.max(treeKb, sum);
    };
    const timer = setInterval(sample, 20);
    child.on("error", (err) => {
      clearInterval(timer);
      reject(new Error(`starting ${cmd}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      clearInterval(timer);
      resolve({
        wallSeconds: (performance.now() - start) / 1000,
        peakRssMb: hwmKb / 1024,
        peakTreeRssMb: treeKb / 1024,
        cpuSeconds,
        exitCode: code ?? 1,
        stderrTail: stderr.trim().split("\n").slice(-8).join("\n"),
      });
    });
  });
}

