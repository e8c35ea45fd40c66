/**
 * The build benchmark (issue 2, "Performance"): on a generated ~1 GB store, in the same run, measures wall time and
 * peak memory of
 *   lower-bound     tar -c <all items> | sha256sum
 *   guix-gnu-tar    Guix's algorithm replayed with GNU tar: items by size, the largest max-2 each in its own layer,
 *                   the rest in one layer; per layer `tar -cf --sort=name ...`, `sha256sum`, `tar -rf image.tar`
 *   layerpack       node bin/layerpack.js build --config <cfg>, compression none
 *   layerpack-gzip  the same with gzip layers
 * and prints a table and the ratios, also written to bench/.work/results.json.
 *
 * Page cache: dropping caches needs privileges, so every variant reads from a warm cache instead: one unmeasured
 * lower-bound pass reads every file first. Peak memory is sampled from /proc (VmHWM of every process in the
 * command's tree, every 20 ms), so it needs no GNU time; very short-lived children may be missed.
 *
 * Run: `npm run bench -- [--size-mb 1024] [--runs 1] [--skip guix,layerpack-gzip] [--keep]`
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { defaultParams, ensureStore, writeConfig, type GeneratedStore } from "./gen-store.ts";
import { removeTree } from "../examples/make-store.ts";
import { measure, type Measurement } from "./measure.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const WORK = path.join(import.meta.dirname, ".work");
const MB = 1024 * 1024;
const VARIANTS = ["lower-bound", "guix-gnu-tar", "layerpack", "layerpack-gzip"] as const;
type Variant = (typeof VARIANTS)[number];

interface VariantResult {
  variant: Variant;
  command: string;
  runs: Measurement[];
  /** Median wall time and worst memory over the runs; undefined when the variant failed or was skipped. */
  wallSeconds?: number;
  peakRssMb?: number;
  peakTreeRssMb?: number;
  outputBytes?: number;
  error?: string;
}

const itemDirs = (store: GeneratedStore): string[] => store.items.map((i) => i.path.slice(1));

/** Guix's `size` layering for max layers `max`: the largest max-2 items alone, the rest together. */
function guixLayers(store: GeneratedStore, max: number): string[][] {
  const bySize = [...store.items].sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1));
  const alone = bySize.slice(0, max - 2).map((i) => [i.path.slice(1)]);
  const rest = bySize.slice(max - 2).map((i) => i.path.slice(1));
  return rest.length > 0 ? [...alone, rest] : alone;
}

/** A bash script replaying Guix's per-layer tar, checksum and append (lists are passed in files, not argv). */
function guixScript(store: GeneratedStore, runDir: string, max: number): string {
  const lines = ["set -euo pipefail", `cd ${JSON.stringify(runDir)}`, "rm -f image.tar"];
  guixLayers(store, max).forEach((items, i) => {
    const list = path.join(runDir, `layer-${i}.list`);
    fs.writeFileSync(list, items.join("\n") + "\n");
    lines.push(
      `mkdir -p ${i} && tar -cf ${i}/layer.tar --sort=name --mtime=@1 --owner=root:0 --group=root:0 --numeric-owner -C ${JSON.stringify(store.storeRoot)} -T ${JSON.stringify(list)}`,
      `sha256sum ${i}/layer.tar > ${i}/layer.sha256`,
      `tar -rf image.tar ${i}/layer.tar`,
      `rm -r ${i}`,
    );
  });
  const script = path.join(runDir, "guix-replay.sh");
  fs.writeFileSync(script, lines.join("\n") + "\n");
  return script;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function runVariant(variant: Variant, o: { store: GeneratedStore; runDir: string; runs: number; keep: boolean }): Promise<VariantResult> {
  const { store, runDir } = o;
  const allList = path.join(runDir, "all-items.list");
  fs.writeFileSync(allList, itemDirs(store).join("\n") + "\n");
  let cmd: string;
  let args: string[];
  let output: string | undefined;
  let env = process.env;
  if (variant === "lower-bound") {
    cmd = "bash";
    args = ["-c", `set -o pipefail; tar -c -C ${JSON.stringify(store.storeRoot)} -T ${JSON.stringify(allList)} | sha256sum`];
  } else if (variant === "guix-gnu-tar") {
    cmd = "bash";
    args = [guixScript(store, runDir, 100)];
    output = path.join(runDir, "image.tar");
  } else {
    if (!fs.existsSync(path.join(REPO, "src/cli.ts"))) {
      return { variant, command: "node bin/layerpack.js build", runs: [], error: "layerpack CLI not available yet (src/cli.ts is missing): the executor and CLI are still being written" };
    }
    const compression = variant === "layerpack" ? "none" : "gzip";
    output = path.join(runDir, `layerpack-${compression}.tar`);
    const config = path.join(runDir, `layerpack-${compression}.yaml`);
    writeConfig(config, { storeRoot: store.storeRoot, profileLink: store.profileLink, compression, output });
    cmd = process.execPath; // Node 24 (the system node cannot strip types)
    args = [path.join(REPO, "bin/layerpack.js"), "build", "--config", config];
  }
  const command = [cmd === process.execPath ? "node" : cmd, ...args].join(" ").slice(0, 200);
  const result: VariantResult = { variant, command, runs: [] };
  for (let r = 0; r < o.runs; r++) {
    if (output) fs.rmSync(output, { force: true });
    // A fresh, empty layer cache per run, so a rebuild never skips work it would do on a first build.
    const cacheDir = fs.mkdtempSync(path.join(runDir, "cache-"));
    env = { ...process.env, XDG_CACHE_HOME: cacheDir, LAYERPACK_CACHE_DIR: cacheDir };
    const m = await measure(cmd, args, env);
    removeTree(cacheDir);
    result.runs.push(m);
    if (m.exitCode !== 0) {
      result.error = `exit code ${m.exitCode}: ${m.stderrTail || "(no stderr)"}`;
      return result;
    }
  }
  if (output && fs.existsSync(output)) {
    result.outputBytes = fs.statSync(output).size;
    if (!o.keep) fs.rmSync(output);
  }
  result.wallSeconds = median(result.runs.map((m) => m.wallSeconds));
  result.peakRssMb = Math.max(...result.runs.map((m) => m.peakRssMb));
  result.peakTreeRssMb = Math.max(...result.runs.map((m) => m.peakTreeRssMb));
  return result;
}

function ratio(a: VariantResult | undefined, b: VariantResult | undefined): number | undefined {
  return a?.wallSeconds !== undefined && b?.wallSeconds ? a.wallSeconds / b.wallSeconds : undefined;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "1024" },
      runs: { type: "string", default: "1" },
      skip: { type: "string", default: "" },
      keep: { type: "boolean", default: false },
    },
  });
  const sizeMb = Number(values["size-mb"]);
  const runs = Number(values.runs);
  const skip = new Set(values.skip.split(",").filter(Boolean));
  if (!Number.isInteger(sizeMb) || sizeMb <= 0 || !Number.isInteger(runs) || runs <= 0) {
    console.error("bench: --size-mb and --runs must be positive integers");
    return 2;
  }
  for (const s of skip) if (!VARIANTS.includes(s as Variant)) console.error(`bench: unknown variant in --skip: ${s} (known: ${VARIANTS.join(", ")})`);

  const t0 = performance.now();
  const { store, reused } = ensureStore(path.join(WORK, `store-${sizeMb}`), defaultParams(sizeMb));
  console.log(
    `store: ${store.items.length} items, ${store.fileCount} files, ${store.symlinkCount} symlinks, ${(store.totalBytes / MB).toFixed(0)} MiB ` +
      `(${reused ? "reused" : `generated in ${((performance.now() - t0) / 1000).toFixed(1)}s`}) at ${path.relative(REPO, store.storeRoot)}`,
  );
  const runDir = path.join(WORK, "run");
  removeTree(runDir);
  fs.mkdirSync(runDir, { recursive: true });

  // A freshly generated store is still being written back to disk; that I/O would land in the measurements.
  spawnSync("sync", { stdio: "ignore" });
  console.log("warming the page cache (one unmeasured lower-bound pass)...");
  await runVariant("lower-bound", { store, runDir, runs: 1, keep: false });

  const results: VariantResult[] = [];
  for (const variant of VARIANTS) {
    if (skip.has(variant)) continue;
    process.stdout.write(`measuring ${variant}... `);
    const r = await runVariant(variant, { store, runDir, runs, keep: values.keep });
    console.log(r.error ? `FAILED: ${r.error}` : `${r.wallSeconds!.toFixed(2)}s`);
    results.push(r);
  }
  if (!values.keep) removeTree(runDir);

  const by = (v: Variant): VariantResult | undefined => results.find((r) => r.variant === v && !r.error);
  const ratios = {
    layerpackOverLowerBound: ratio(by("layerpack"), by("lower-bound")),
    guixOverLayerpack: ratio(by("guix-gnu-tar"), by("layerpack")),
    layerpackGzipOverLowerBound: ratio(by("layerpack-gzip"), by("lower-bound")),
    guixOverLowerBound: ratio(by("guix-gnu-tar"), by("lower-bound")),
  };

  const mbps = (r: VariantResult): string => (r.wallSeconds ? (store.totalBytes / MB / r.wallSeconds).toFixed(0) : "-");
  console.log(`\n${pad("variant", 16)}${pad("wall s", 9, true)}${pad("MiB/s", 8, true)}${pad("peak RSS MB", 13, true)}${pad("tree RSS MB", 13, true)}${pad("output MiB", 12, true)}`);
  for (const r of results) {
    if (r.error) {
      console.log(`${pad(r.variant, 16)}  failed: ${r.error.split("\n")[0]}`);
      continue;
    }
    const out = r.outputBytes !== undefined ? (r.outputBytes / MB).toFixed(0) : "-";
    console.log(`${pad(r.variant, 16)}${pad(r.wallSeconds!.toFixed(2), 9, true)}${pad(mbps(r), 8, true)}${pad(r.peakRssMb!.toFixed(0), 13, true)}${pad(r.peakTreeRssMb!.toFixed(0), 13, true)}${pad(out, 12, true)}`);
  }
  const fmt = (x: number | undefined): string => (x === undefined ? "n/a" : x.toFixed(2));
  console.log(`\nlayerpack / lower bound: ${fmt(ratios.layerpackOverLowerBound)} (target <= 1.5)`);
  console.log(`guix / layerpack:        ${fmt(ratios.guixOverLayerpack)} (target >= 3)`);
  console.log(`layerpack peak RSS:      ${by("layerpack")?.peakRssMb?.toFixed(0) ?? "n/a"} MB (target < 300)`);

  const report = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, memoryMb: Math.round(os.totalmem() / MB), node: process.version, platform: `${os.platform()} ${os.release()}` },
    store: { params: store.params, items: store.items.length, files: store.fileCount, symlinks: store.symlinkCount, bytes: store.totalBytes },
    method: "warm page cache (one unmeasured tar pass first); median wall time over runs; memory sampled from /proc every 20 ms",
    runs,
    results,
    ratios,
  };
  fs.mkdirSync(WORK, { recursive: true });
  fs.writeFileSync(path.join(WORK, "results.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`\nresults: ${path.relative(process.cwd(), path.join(WORK, "results.json"))}`);
  return results.some((r) => r.error) ? 1 : 0;
}

process.exitCode = await main();
