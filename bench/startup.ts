/**
 * Startup benchmark (issue 12), run from the installed tarball as a user runs layerpack, in one run:
 *   node -e 0          the floor: starting Node at all
 *   --version          answered by bin/layerpack.js before anything else is loaded (goal: within 2x of the floor)
 *   --help             the command list (loads the CLI, no command)
 *   no-op build        the generated ~1 GB store, warm cache, output up to date (goal: <= 0.25 s)
 * on the Node running this script and on the oldest Node 22 the package supports. Each figure is the median of
 * `--runs` runs (default 15; no-op builds: 7), after one warm-up run that also fills V8's compile cache.
 *
 * Run: `npm run bench:startup -- [--size-mb 1024] [--runs 15]`
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { defaultParams, ensureStore, writeConfig } from "./gen-store.ts";
import { nodeBinary, NODE_22_FLOOR } from "../test/fixtures/node-versions.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const WORK = path.join(import.meta.dirname, ".work");

const { values } = parseArgs({ options: { "size-mb": { type: "string", default: "1024" }, runs: { type: "string", default: "15" } } });
const sizeMb = Number(values["size-mb"]);
const runs = Number(values.runs);
if (!Number.isInteger(sizeMb) || sizeMb < 1 || !Number.isInteger(runs) || runs < 1) {
  console.error("bench:startup: --size-mb and --runs must be whole numbers of at least 1");
  process.exit(2);
}

/** Median wall time in seconds of `runs` runs (after one warm-up), each checked to exit 0. */
function time(cmd: string, args: string[], n: number, cwd: string, env: NodeJS.ProcessEnv): number {
  const once = () => {
    const start = performance.now();
    const r = spawnSync(cmd, args, { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
    const seconds = (performance.now() - start) / 1000;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return seconds;
  };
  once();
  const times = Array.from({ length: n }, once).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

// The package exactly as users get it.
const app = path.join(WORK, "startup-app");
fs.rmSync(app, { recursive: true, force: true });
fs.mkdirSync(app, { recursive: true });
const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", app], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as { filename: string }[];
fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "startup-app", private: true }));
execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${packed[0]!.filename}`], { cwd: app, stdio: "ignore" });
const bin = path.join(app, "node_modules/layerpack/bin/layerpack.js");

const { store } = ensureStore(path.join(WORK, `store-${sizeMb}`), defaultParams(sizeMb));
const config = path.join(app, "bench.yaml");
writeConfig(config, { storeRoot: store.storeRoot, profileLink: store.profileLink, compression: "gzip", output: path.join(app, "bench.tar") });
const env = { ...process.env, LAYERPACK_CACHE_DIR: path.join(app, "cache") };
console.error(`cold build of the ${sizeMb} MiB store (fills the cache)...`);
execFileSync(process.execPath, [bin, "build", config, "-q"], { cwd: app, env, stdio: "ignore" });

const rows: string[][] = [];
for (const [label, node] of [[`Node ${process.versions.node}`, process.execPath], [`Node ${NODE_22_FLOOR}`, await nodeBinary(NODE_22_FLOOR)]] as const) {
  const floor = time(node, ["-e", "0"], runs, app, env);
  const version = time(node, [bin, "--version"], runs, app, env);
  const help = time(node, [bin, "--help"], runs, app, env);
  const noop = time(node, [bin, "build", config, "-q"], Math.min(runs, 7), app, env);
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  rows.push([label, ms(floor), `${ms(version)} (${(version / floor).toFixed(2)}x)`, `${ms(help)} (${(help / floor).toFixed(2)}x)`, `${ms(noop)}`]);
}

const header = ["node", "node -e 0", "layerpack --version", "layerpack --help", `no-op build (${sizeMb} MiB store)`];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  "));
console.log("\ngoals: --version within 2x of node -e 0; no-op build <= 250 ms");
