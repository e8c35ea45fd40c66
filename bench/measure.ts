/**
 * Timing and memory of a command for the benchmarks: wall time from spawn to exit, and peak memory sampled from
 * /proc every 20 ms over the command's whole process tree (no GNU time needed; very short-lived children may be
 * missed).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..");

export interface Measurement {
  wallSeconds: number;
  /** Largest VmHWM of any single process of the command's tree. */
  peakRssMb: number;
  /** Largest sampled sum of VmRSS over the tree (pipelines run their processes at once). */
  peakTreeRssMb: number;
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
    const child = spawn(cmd, args, { cwd: REPO, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
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
        exitCode: code ?? 1,
        stderrTail: stderr.trim().split("\n").slice(-8).join("\n"),
      });
    });
  });
}

