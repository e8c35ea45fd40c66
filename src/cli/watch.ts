import { spawn, type ChildProcess } from "node:child_process";
import { Watcher, type WatchEvent } from "../watch/watch.ts";
import type { BuildResult } from "../image/build.ts";
import { formatError } from "../errors.ts";
import { buildDone, failure, jsonLine } from "./events.ts";
import { lazyCacheFromOptions, cacheOptions, cacheSourcesOption, formatBytes, UsageError, warn, type Command, type Io } from "./context.ts";
import { count } from "../util/format.ts";
import { jobsOption } from "./build.ts";

/** Whether a build has written the image yet: what a failed one keeps is said accordingly. */
interface WatchState {
  built: string | undefined;
}

const kept = (state: WatchState) => (state.built === undefined ? "nothing was written" : `the last good image, ${state.built}, is kept`);

function line(io: Io, e: WatchEvent, { json, state }: { json: boolean; state: WatchState }): void {
  if (e.type === "build-done") state.built = e.result.output;
  if (json) {
    const data = e.type === "build-failed" ? failure(e.error, "build-failed") : e.type === "build-done" ? buildDone(e.result, e.seconds) : e;
    io.out(jsonLine(data));
    return;
  }
  if (e.type === "build-done") {
    const s = e.result.stats;
    // Bytes of new layers: a config change rewrites the image with none, which "0 B written" misread.
    const what = s.upToDate ? "output up to date" : `${formatBytes(s.bytesWritten)} of new layers`;
    io.out(`built: ${count(s.rebuilt, "layer")} rebuilt, ${s.reused} reused, ${what}, ${e.seconds.toFixed(2)} s -> ${e.result.output}\n`);
    for (const warning of e.result.warnings ?? []) warn(io, warning);
  } else if (e.type === "build-failed") {
    io.err(`${formatError(e.error).trimEnd()}\nlayerpack: build failed; ${kept(state)}. Waiting for changes...\n`);
  }
}

/**
 * Runs --exec's command through the shell with the output path in $LAYERPACK_OUTPUT; a failure is reported, not
 * fatal. With --json its output goes to stderr: stdout carries nothing but the JSON lines.
 */
function runExec(io: Io, exec: { command: string; json: boolean; running: Set<ChildProcess> }, result: BuildResult): Promise<void> {
  const { command, json, running } = exec;
  return new Promise((resolve) => {
    // A process group of its own, so that stopping watch stops the command and whatever it started (sh -c's
    // children): signalling sh alone left them running, and watch waiting for them.
    const child = spawn("sh", ["-c", command], {
      cwd: io.cwd,
      detached: true,
      stdio: ["ignore", json ? "pipe" : "inherit", "inherit"],
      env: { ...io.env, LAYERPACK_OUTPUT: result.output, LAYERPACK_IMAGE_ID: result.imageId, LAYERPACK_REPO_TAG: result.repoTag },
    });
    running.add(child);
    child.on("exit", () => running.delete(child));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => io.err(d));
    child.on("error", (err) => {
      io.err(`layerpack: --exec: ${err.message}\n`);
      resolve();
    });
    // "exit", not "close": a command that leaves something running (`server &`) keeps its output open, and the
    // next build must not wait for that; what it prints later is still passed on.
    child.on("exit", (code, signal) => {
      if (code !== 0) io.err(`layerpack: --exec command exited with ${signal ?? code}\n`);
      resolve();
    });
  });
}

export const watchCommand: Command = {
  name: "watch",
  usage: `layerpack watch [config] [--exec CMD] [-o PATH] [--json] [--cache-dir DIR | --no-cache] [-j N] [--cache-from REF]... [--no-cache-from]

      --exec CMD        run CMD (with sh -c) after each successful build; $LAYERPACK_OUTPUT is the image path
  -o, --output PATH     override output.path
      --json            print one JSON line per event
      --cache-dir DIR   layer cache (default $LAYERPACK_CACHE_DIR, $XDG_CACHE_HOME/layerpack, ~/.cache/layerpack)
      --no-cache        build every layer afresh each time; the cache is neither read nor written
  -j, --jobs N          layers built at once (default: the number of cores)
      --cache-from REF  reuse layers a registry image's cache record holds (see build --help); repeatable
      --no-cache-from   ignore cache sources, the config's cache.from included
  Stop with Ctrl-C.`,
  maxPositionals: 1,
  options: { exec: { type: "string" }, output: { type: "string", short: "o" }, json: { type: "boolean" }, ...cacheOptions },
  async run({ io, values, positionals }) {
    if (values.output === "-") throw new UsageError("-o - (standard output) takes one image; watch rebuilds into a file (use build -o -)");
    const json = Boolean(values.json);
    const exec = typeof values.exec === "string" ? values.exec : undefined;
    const jobs = jobsOption(values.jobs);
    const cacheFrom = cacheSourcesOption(values);
    const state: WatchState = { built: undefined };
    const running = new Set<ChildProcess>();
    let execStopped = false;
    const watcher = new Watcher({
      cwd: io.cwd,
      configPath: positionals[0],
      env: io.env,
      output: values.output as string | undefined,
      cache: lazyCacheFromOptions(io, values),
      concurrency: jobs,
      cacheFrom,
      onEvent: (e) => line(io, e, { json, state }),
      afterBuild: exec ? (r) => runExec(io, { command: exec, json, running }, r) : undefined,
    });
    const stopped = new Promise<boolean>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        execStopped = running.size > 0;
        for (const child of running) {
          try {
            process.kill(-child.pid!, "SIGTERM");
          } catch {
            // already gone
          }
        }
        void watcher.close().then(resolve);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    await watcher.start();
    // Stopping while waiting is how watch ends (0); stopping a build is an interruption, as for build (130).
    if (!(await stopped)) return 0;
    // Stopped while --exec's command ran: the build was done, the command is what stopped.
    const message = execStopped ? `interrupted: the --exec command was stopped; the build before it finished (${state.built ?? "no output"})` : `interrupted: the build in progress stopped; ${kept(state)}`;
    if (json) io.out(jsonLine({ type: "error", message }));
    else io.err(`layerpack: ${message}\n`);
    return 130;
  },
};
