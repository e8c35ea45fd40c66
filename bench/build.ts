/**
 * The build benchmark (issues 2 and 16, "Performance"): on a generated ~1 GB store, in the same run, measures wall
 * time, CPU time and peak memory of
 *   lower-bound        tar -c <all items> | sha256sum
 *   tar-openssl        tar -c <all items> | openssl dgst -sha256      (the bound for uncompressed builds)
 *   tar-pigz           tar -c <all items> | pigz -6 -p<cores> > file   (the bound for gzip builds)
 *   tar-zstd           tar -c <all items> | zstd -3 -T<cores> > file   (the bound for zstd builds)
 *   tar-openssl-write  tar -c … | tee file | openssl dgst -sha256      (what any builder must do: read, hash, write)
 *   tar-zstd-sums      tar -c … | tee FIFO | zstd -3 -T<cores> | tee file | openssl dgst, openssl dgst < FIFO
 *                      (the same for zstd: an image needs the digests of the tar and of the blob)
 *   guix-gnu-tar       Guix's algorithm replayed with GNU tar: items by size, the largest max-2 each in its own
 *                      layer, the rest in one layer; per layer `tar -cf --sort=name ...`, `sha256sum`, `tar -rf`
 *   layerpack          node bin/layerpack.js build --config <cfg>, compression none (docker archive)
 *   layerpack-graph    the same, the closure from a references graph (no sizes: every item is walked for them)
 *   layerpack-scan     the same, finding the closure by scanning the files for references first
 * Except -graph and -scan, layerpack reads the closure from the store's database, with its items' references and
 * NAR sizes, as a Guix or Nix host has it (and as the tar variants are given the list of items).
 *   layerpack-gzip     the same with gzip layers (docker archive)
 *   layerpack-gzip-oci gzip layers into an OCI layout (no copy of the layers into an archive afterwards)
 *   layerpack-zstd     zstd layers into an OCI layout (docker archives cannot hold zstd layers)
 * and prints a table and the ratios, also written to bench/.work/results.json (or results-<store>.json).
 * The references write their output to a file, as layerpack does. Rounds are interleaved (every variant once, then
 * again), so the machine's load at a given time weighs on all variants alike.
 *
 * Page cache: dropping caches needs privileges, so every variant reads from a warm cache instead: one unmeasured
 * lower-bound pass reads every file first. Peak memory is sampled from /proc (VmHWM of every process in the
 * command's tree, every 20 ms), so it needs no GNU time; very short-lived children may be missed.
 *
 * Before each run it waits up to `--quiet` seconds (default 20) for the CPU pressure (/proc/pressure/cpu, avg10)
 * to drop under 20 %, and prints what it was: on a shared machine that says how much to trust the wall times.
 *
 * Run: `npm run bench -- [--size-mb 1024] [--runs 1] [--skip guix-gnu-tar,layerpack-gzip] [--only a,b] [--keep]
 *        [--like ../shared/closures/debian-w2.pathinfo.json] [--quiet 20]`
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { defaultParams, ensureDatabase, ensureStore, storeDirName, writeConfig, writeGraph, type GeneratedStore } from "./gen-store.ts";
import { removeTree } from "../examples/make-store.ts";
import { measure, type Measurement } from "./measure.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const WORK = path.join(import.meta.dirname, ".work");
const MB = 1024 * 1024;
const VARIANTS = [
  "lower-bound",
  "tar-openssl",
  "tar-pigz",
  "tar-zstd",
  "tar-openssl-write",
  "tar-zstd-sums",
  "guix-gnu-tar",
  "layerpack",
  "layerpack-graph",
  "layerpack-scan",
  "layerpack-gzip",
  "layerpack-gzip-oci",
  "layerpack-zstd",
] as const;
type Variant = (typeof VARIANTS)[number];
/** A variant, or a layerpack variant run from the `--baseline` checkout: `layerpack-gzip@base`. */
type Name = Variant | `${Variant}@base`;
const baseOf = (n: Name): Variant => n.replace(/@base$/, "") as Variant;
const CORES = os.availableParallelism();

/** What each layerpack variant builds. */
const LAYERPACK: Partial<Record<Variant, { compression: "none" | "gzip" | "zstd"; format: "docker-archive" | "oci-layout"; closure?: "graph" | "scan" }>> = {
  layerpack: { compression: "none", format: "docker-archive" },
  "layerpack-graph": { compression: "none", format: "docker-archive", closure: "graph" },
  "layerpack-scan": { compression: "none", format: "docker-archive", closure: "scan" },
  "layerpack-gzip": { compression: "gzip", format: "docker-archive" },
  "layerpack-gzip-oci": { compression: "gzip", format: "oci-layout" },
  "layerpack-zstd": { compression: "zstd", format: "oci-layout" },
};

interface VariantResult {
  variant: Name;
  command: string;
  runs: Measurement[];
  /** Median wall time and worst memory over the runs; undefined when the variant failed or was skipped. */
  wallSeconds?: number;
  peakRssMb?: number;
  peakTreeRssMb?: number;
  /** Median CPU seconds (user + system, the whole process tree). */
  cpuSeconds?: number;
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

interface Prepared {
  variant: Name;
  cmd: string;
  args: string[];
  /** A file or (OCI layout) directory the command writes. */
  output?: string;
  command: string;
}

function prepareVariant(name: Name, store: GeneratedStore, runDir: string, baseline?: string): Prepared | { variant: Name; error: string } {
  const variant = baseOf(name);
  const repo = name.endsWith("@base") ? baseline! : REPO;
  const allList = path.join(runDir, "all-items.list");
  fs.writeFileSync(allList, itemDirs(store).join("\n") + "\n");
  const tar = `tar -c -C ${JSON.stringify(store.storeRoot)} -T ${JSON.stringify(allList)}`;
  const pipe = (tail: string): string[] => ["-c", `set -o pipefail; ${tar} | ${tail}`];
  let cmd = "bash";
  let args: string[];
  let output: string | undefined;
  const lp = LAYERPACK[variant];
  if (variant === "lower-bound") args = pipe("sha256sum");
  else if (variant === "tar-openssl") args = pipe("openssl dgst -sha256");
  else if (variant === "tar-pigz") {
    output = path.join(runDir, "pigz.tar.gz");
    args = pipe(`pigz -6 -p${CORES} > ${JSON.stringify(output)}`);
  } else if (variant === "tar-zstd") {
    output = path.join(runDir, "zstd.tar.zst");
    args = pipe(`zstd -q -3 -T${CORES} > ${JSON.stringify(output)}`);
  } else if (variant === "tar-openssl-write") {
    output = path.join(runDir, "openssl.tar");
    args = pipe(`tee ${JSON.stringify(output)} | openssl dgst -sha256 > /dev/null`);
  } else if (variant === "tar-zstd-sums") {
    output = path.join(runDir, "sums.tar.zst");
    // The tar's digest through a FIFO, waited for, so that the measured time ends when both digests are done.
    const fifo = JSON.stringify(path.join(runDir, "tar.fifo"));
    const zstd = `tee ${fifo} | zstd -q -3 -T${CORES} | tee ${JSON.stringify(output)} | openssl dgst -sha256 > /dev/null`;
    args = ["-c", `set -o pipefail; rm -f ${fifo}; mkfifo ${fifo}; openssl dgst -sha256 < ${fifo} > /dev/null & ${tar} | ${zstd}; s=$?; wait $! || s=1; rm -f ${fifo}; exit $s`];
  } else if (variant === "guix-gnu-tar") {
    args = [guixScript(store, runDir, 100)];
    output = path.join(runDir, "image.tar");
  } else if (lp) {
    if (!fs.existsSync(path.join(repo, "bin/layerpack.js"))) return { variant: name, error: `no layerpack at ${repo}/bin/layerpack.js` };
    output = path.join(runDir, `${name}${lp.format === "oci-layout" ? ".oci" : ".tar"}`);
    const config = path.join(runDir, `${name}.yaml`);
    const graphFile = path.join(runDir, "references.graph");
    const source =
      lp.closure === "scan" ? {} : lp.closure === "graph" ? { graph: fs.existsSync(graphFile) ? graphFile : writeGraph(store, graphFile) } : { database: ensureDatabase(store) };
    writeConfig(config, { storeRoot: store.storeRoot, profileLink: store.profileLink, compression: lp.compression, output, format: lp.format, ...source });
    cmd = process.execPath; // Node 24 (the system node cannot strip types)
    args = [path.join(repo, "bin/layerpack.js"), "build", "--config", config];
  } else throw new Error(`unknown variant ${variant}`);
  const command = [cmd === process.execPath ? "node" : cmd, ...args].join(" ").slice(0, 240);
  return { variant: name, cmd, args, ...(output ? { output } : {}), command };
}

/** Bytes of a file, or of every file under a directory (an OCI layout). */
function bytesOf(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, name) => n + bytesOf(path.join(p, name)), 0);
}

/** CPU pressure (share of the last 10 s in which something waited for a core), or undefined without PSI. */
function cpuPressure(): number | undefined {
  try {
    return Number(/some avg10=([\d.]+)/.exec(fs.readFileSync("/proc/pressure/cpu", "utf8"))?.[1]);
  } catch {
    return undefined;
  }
}

/** Waits up to `seconds` for the machine to calm down (others share it): CPU pressure under 20 %. */
async function quiet(seconds: number): Promise<number | undefined> {
  const until = performance.now() + seconds * 1000;
  let p = cpuPressure();
  while (p !== undefined && p > 20 && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 1000));
    p = cpuPressure();
  }
  return p;
}

/** One measured run of a prepared variant, with a fresh, empty layer cache. */
async function runOnce(v: Prepared, runDir: string): Promise<{ m: Measurement; outputBytes?: number }> {
  if (v.output) fs.rmSync(v.output, { recursive: true, force: true });
  // A fresh, empty layer cache per run, so a rebuild never skips work it would do on a first build.
  const cacheDir = fs.mkdtempSync(path.join(runDir, "cache-"));
  const env = { ...process.env, XDG_CACHE_HOME: cacheDir, LAYERPACK_CACHE_DIR: cacheDir };
  const m = await measure(v.cmd, v.args, env);
  removeTree(cacheDir);
  const outputBytes = v.output && fs.existsSync(v.output) ? bytesOf(v.output) : undefined;
  return { m, ...(outputBytes !== undefined ? { outputBytes } : {}) };
}

function ratio(a: VariantResult | undefined, b: VariantResult | undefined): number | undefined {
  return a?.wallSeconds !== undefined && b?.wallSeconds ? a.wallSeconds / b.wallSeconds : undefined;
}

/** The ratio of a's to b's wall time in each round both completed: [min, max]. */
function roundRatios(a: VariantResult | undefined, b: VariantResult | undefined): [number, number] | undefined {
  if (!a || !b || a.error || b.error) return undefined;
  const rs = a.runs.map((m, i) => (b.runs[i] ? m.wallSeconds / b.runs[i]!.wallSeconds : NaN)).filter((x) => !Number.isNaN(x));
  return rs.length > 0 ? [Math.min(...rs), Math.max(...rs)] : undefined;
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
      only: { type: "string", default: "" },
      like: { type: "string" },
      keep: { type: "boolean", default: false },
      quiet: { type: "string", default: "20" },
      baseline: { type: "string" },
    },
  });
  const sizeMb = Number(values["size-mb"]);
  const runs = Number(values.runs);
  const skip = new Set(values.skip.split(",").filter(Boolean));
  const only = new Set(values.only.split(",").filter(Boolean));
  if (!Number.isInteger(sizeMb) || sizeMb <= 0 || !Number.isInteger(runs) || runs <= 0) {
    console.error("bench: --size-mb and --runs must be positive integers");
    return 2;
  }
  for (const s of [...skip, ...only]) if (!VARIANTS.includes(s as Variant)) console.error(`bench: unknown variant: ${s} (known: ${VARIANTS.join(", ")})`);

  const t0 = performance.now();
  const params = defaultParams(sizeMb, values.like);
  const { store, reused } = ensureStore(path.join(WORK, storeDirName(params)), params);
  console.log(
    `store: ${store.items.length} items, ${store.fileCount} files, ${store.symlinkCount} symlinks, ${(store.totalBytes / MB).toFixed(0)} MiB, ` +
      `largest item ${(Math.max(...store.items.map((i) => i.bytes)) / MB).toFixed(0)} MiB ` +
      `(${reused ? "reused" : `generated in ${((performance.now() - t0) / 1000).toFixed(1)}s`}) at ${path.relative(REPO, store.storeRoot)}`,
  );
  const runDir = path.join(WORK, "run");
  removeTree(runDir);
  fs.mkdirSync(runDir, { recursive: true });

  // A freshly generated store is still being written back to disk; that I/O would land in the measurements.
  spawnSync("sync", { stdio: "ignore" });
  console.log("warming the page cache (one unmeasured lower-bound pass)...");
  const warm = prepareVariant("lower-bound", store, runDir) as Prepared;
  await runOnce(warm, runDir);

  const chosen: Name[] = VARIANTS.filter((v) => !skip.has(v) && (only.size === 0 || only.has(v)));
  // --baseline DIR: every layerpack variant again, run from another checkout (e.g. before a change), same rounds.
  const baseline = values.baseline ? path.resolve(values.baseline) : undefined;
  if (baseline) chosen.push(...chosen.filter((v) => LAYERPACK[baseOf(v)]).map((v) => `${v}@base` as Name));
  const results = new Map<Name, VariantResult>();
  const prepared = new Map<Name, Prepared>();
  for (const variant of chosen) {
    const p = prepareVariant(variant, store, runDir, baseline);
    if ("error" in p) results.set(variant, { variant, command: "", runs: [], error: p.error });
    else {
      prepared.set(variant, p);
      results.set(variant, { variant, command: p.command, runs: [] });
    }
  }
  const outputs = new Map<Name, number[]>();
  for (let round = 0; round < runs; round++) {
    for (const [variant, p] of prepared) {
      const r = results.get(variant)!;
      if (r.error) continue;
      const pressure = await quiet(Number(values.quiet));
      process.stdout.write(`round ${round + 1}/${runs}: ${variant}${pressure !== undefined ? ` (cpu pressure ${pressure.toFixed(0)} %)` : ""}... `);
      const { m, outputBytes } = await runOnce(p, runDir);
      r.runs.push(m);
      if (m.exitCode !== 0) {
        r.error = `exit code ${m.exitCode}: ${m.stderrTail || "(no stderr)"}`;
        console.log(`FAILED: ${r.error}`);
        continue;
      }
      if (outputBytes !== undefined) outputs.set(variant, [...(outputs.get(variant) ?? []), outputBytes]);
      console.log(`${m.wallSeconds.toFixed(2)}s wall, ${m.cpuSeconds.toFixed(2)}s cpu, ${m.peakRssMb.toFixed(0)} MB`);
    }
  }
  for (const [variant, p] of prepared) {
    const r = results.get(variant)!;
    if (p.output && !values.keep) fs.rmSync(p.output, { recursive: true, force: true });
    if (r.error) continue;
    r.wallSeconds = median(r.runs.map((m) => m.wallSeconds));
    r.cpuSeconds = median(r.runs.map((m) => m.cpuSeconds));
    r.peakRssMb = Math.max(...r.runs.map((m) => m.peakRssMb));
    r.peakTreeRssMb = Math.max(...r.runs.map((m) => m.peakTreeRssMb));
    const out = outputs.get(variant);
    if (out) r.outputBytes = out.at(-1)!;
  }
  if (!values.keep) removeTree(runDir);

  const by = (v: Name): VariantResult | undefined => (results.get(v)?.error ? undefined : results.get(v));
  const pairs: [string, Name, Name, string][] = [
    ["layerpack / tar|openssl", "layerpack", "tar-openssl", "target <= 1.5"],
    ["layerpack / tar|sha256sum", "layerpack", "lower-bound", "earlier target <= 1.5"],
    ["layerpack-graph / tar|openssl", "layerpack-graph", "tar-openssl", "sizes by walking every item first"],
    ["layerpack-scan / tar|openssl", "layerpack-scan", "tar-openssl", "the scan reads every byte once more"],
    ["layerpack-gzip / pigz", "layerpack-gzip", "tar-pigz", "target <= 1.0"],
    ["layerpack-gzip-oci / pigz", "layerpack-gzip-oci", "tar-pigz", "target <= 1.0"],
    ["layerpack-zstd / zstd -T", "layerpack-zstd", "tar-zstd", "target <= 1.1"],
    ["layerpack / tar|tee|openssl", "layerpack", "tar-openssl-write", "the same work: read, hash, write"],
    ["layerpack-zstd / zstd + sums", "layerpack-zstd", "tar-zstd-sums", "the same work: zstd, both digests, write"],
    ["tar-zstd-sums / zstd -T", "tar-zstd-sums", "tar-zstd", "what the digests cost the reference"],
    ["guix / layerpack", "guix-gnu-tar", "layerpack", "target >= 3"],
  ];
  if (baseline) {
    for (const v of chosen.filter((n) => n.endsWith("@base"))) pairs.push([`${baseOf(v)} / before`, baseOf(v), v, "< 1 is faster"]);
  }
  const ratios: Record<string, { median?: number; rounds?: [number, number]; cpu?: number }> = {};
  const cpuRatio = (a?: VariantResult, b?: VariantResult) => (a?.cpuSeconds !== undefined && b?.cpuSeconds ? a.cpuSeconds / b.cpuSeconds : undefined);
  for (const [label, a, b] of pairs) ratios[label] = { median: ratio(by(a), by(b)), rounds: roundRatios(by(a), by(b)), cpu: cpuRatio(by(a), by(b)) };

  const mbps = (r: VariantResult): string => (r.wallSeconds ? (store.totalBytes / MB / r.wallSeconds).toFixed(0) : "-");
  console.log(
    `\n${pad("variant", 25)}${pad("wall s", 9, true)}${pad("cpu s", 8, true)}${pad("MiB/s", 8, true)}${pad("peak RSS MB", 13, true)}${pad("tree RSS MB", 13, true)}${pad("output MiB", 12, true)}`,
  );
  for (const r of results.values()) {
    if (r.error) {
      console.log(`${pad(r.variant, 25)}  failed: ${r.error.split("\n")[0]}`);
      continue;
    }
    const out = r.outputBytes !== undefined ? (r.outputBytes / MB).toFixed(1) : "-";
    console.log(
      `${pad(r.variant, 25)}${pad(r.wallSeconds!.toFixed(2), 9, true)}${pad(r.cpuSeconds!.toFixed(2), 8, true)}${pad(mbps(r), 8, true)}${pad(r.peakRssMb!.toFixed(0), 13, true)}${pad(r.peakTreeRssMb!.toFixed(0), 13, true)}${pad(out, 12, true)}`,
    );
  }
  const fmt = (x: number | undefined): string => (x === undefined ? "n/a" : x.toFixed(2));
  console.log("");
  for (const [label, , , target] of pairs) {
    const r = ratios[label]!;
    if (r.median === undefined) continue;
    console.log(`${pad(label, 34)}${fmt(r.median)}${r.rounds ? ` (rounds ${fmt(r.rounds[0])}–${fmt(r.rounds[1])})` : ""}, cpu ${fmt(r.cpu)}  ${target}`);
  }
  for (const v of chosen.filter((n) => LAYERPACK[baseOf(n)])) {
    if (by(v)) console.log(`${pad(`${v} peak RSS`, 34)}${by(v)!.peakRssMb!.toFixed(0)} MB (target <= 256)`);
  }

  const report = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, memoryMb: Math.round(os.totalmem() / MB), node: process.version, platform: `${os.platform()} ${os.release()}` },
    store: { params: store.params, items: store.items.length, files: store.fileCount, symlinks: store.symlinkCount, bytes: store.totalBytes },
    method: "warm page cache (one unmeasured tar pass first); rounds interleaved; median wall and CPU time over runs; memory sampled from /proc every 20 ms",
    runs,
    results: [...results.values()],
    ratios,
  };
  fs.mkdirSync(WORK, { recursive: true });
  const file = path.join(WORK, values.like ? `results-${storeDirName(params).replace(/^store-/, "")}.json` : "results.json");
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  return [...results.values()].some((r) => r.error) ? 1 : 0;
}

process.exitCode = await main();
