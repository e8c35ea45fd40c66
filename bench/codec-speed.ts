/**
 * How fast the compressors themselves are, one core, in memory: Node's bundled codecs (node:zlib, which layerpack
 * compresses with) against the command-line tools the build benchmark's references run (`zstd`, `pigz`), on the
 * same bytes — the first 256 MiB of the benchmark store's tar — with the same block sizes layerpack uses (zstd: 4 MiB
 * frames at level 3; gzip: level 6, 1 MiB blocks). No files are read or written while timing, so what differs is
 * the compression code alone: where a build's ratio to `tar | zstd -T2` comes from the library Node ships, this
 * shows it.
 *
 *   node: zstdCompressSync / deflateRawSync per block, median of --runs passes (CPU time of this thread)
 *   zstd: `zstd -b3 -e3 --single-thread -B4M` (its own benchmark mode: 4 MiB blocks, in memory, best of its passes)
 *   pigz: `pigz -6 -p1 -b 1024 -c` of the bytes from memory to /dev/null (user + system time of the child)
 *
 * Run: `npm run bench:codecs -- [--size-mb 1024] [--mb 256] [--runs 3]`; the store is made as bench/build.ts
 * makes it (bench/gen-store.ts, reused when present).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import { defaultParams, ensureStore, storeDirName } from "./gen-store.ts";

const { values } = parseArgs({ options: { "size-mb": { type: "string", default: "1024" }, mb: { type: "string", default: "256" }, runs: { type: "string", default: "3" } } });
const sizeMb = Number(values["size-mb"]);
const sliceMb = Number(values.mb);
const runs = Math.max(1, Number(values.runs));

const work = path.join(import.meta.dirname, ".work");
const params = defaultParams(sizeMb);
const { store } = ensureStore(path.join(work, storeDirName(params)), params);
// The pipeline's status is head's: tar's SIGPIPE once the slice is read is no failure.
const data = execFileSync("bash", ["-c", `tar -c -C ${JSON.stringify(store.storeRoot)} --sort=name . | head -c ${sliceMb << 20}`], { maxBuffer: (sliceMb << 20) + 1024 });
const MB = data.length / 1e6;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU seconds of this thread for one pass of `f` over the data in blocks of `block` bytes; and the output size. */
function pass(block: number, f: (b: Buffer) => Buffer): { seconds: number; out: number } {
  const c0 = process.cpuUsage();
  let out = 0;
  for (let i = 0; i < data.length; i += block) out += f(data.subarray(i, i + block)).length;
  const c = process.cpuUsage(c0);
  return { seconds: (c.user + c.system) / 1e6, out };
}

function nodeRate(block: number, f: (b: Buffer) => Buffer): { mbps: number; ratio: number } {
  const passes = Array.from({ length: runs }, () => pass(block, f));
  return { mbps: MB / median(passes.map((p) => p.seconds)), ratio: data.length / passes[0]!.out };
}

const Z = zlib.constants;
const nodeZstd = nodeRate(4 << 20, (b) => zlib.zstdCompressSync(b, { params: { [Z.ZSTD_c_compressionLevel]: 3, [Z.ZSTD_c_contentSizeFlag]: 1 } }));
const nodeGzip = nodeRate(1 << 20, (b) => zlib.deflateRawSync(b, { level: 6, memLevel: 9 }));

/** `zstd -b` prints "<name> : <in> -> <out> (x<ratio>), <c> MB/s, <d> MB/s" (with carriage returns between passes). */
function cliZstd(): { mbps: number; ratio: number } | undefined {
  const file = path.join(work, "codec-slice.tar");
  execFileSync("bash", ["-c", `head -c ${data.length} > ${JSON.stringify(file)}`], { input: data });
  const r = spawnSync("zstd", ["-b3", "-e3", "--single-thread", "-B4M", `-i${Math.max(3, runs)}`, file], { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  const text = `${r.stdout}${r.stderr}`.split(/[\r\n]/).filter((l) => l.includes("MB/s")).at(-1) ?? "";
  const m = /\(x([\d.]+)\),\s*([\d.]+) MB\/s/.exec(text);
  return m ? { mbps: Number(m[2]), ratio: Number(m[1]) } : undefined;
}

function cliPigz(): { mbps: number; ratio: number } | undefined {
  const times: number[] = [];
  let out = 0;
  for (let i = 0; i < runs; i++) {
    // The child's CPU time, from bash's `times` after it (the pipe's copy is not counted: pigz reads its stdin).
    const r = spawnSync("bash", ["-c", "pigz -6 -p1 -b 1024 -c | wc -c; times"], { input: data, encoding: "utf8", maxBuffer: 1 << 20 });
    if (r.status !== 0) return undefined;
    const lines = r.stdout.trim().split("\n");
    out = Number(lines[0]);
    const child = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines.at(-1)!);
    if (!child) return undefined;
    times.push(Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4]));
  }
  return { mbps: MB / median(times), ratio: data.length / out };
}

const zstd = cliZstd();
const pigz = cliPigz();
const row = (name: string, r: { mbps: number; ratio: number } | undefined, ref?: { mbps: number }) =>
  r ? `| ${name} | ${r.mbps.toFixed(0)} | ${r.ratio.toFixed(3)} | ${ref ? `${(ref.mbps / r.mbps).toFixed(2)}×` : ""} |` : `| ${name} | (not run: tool missing or its output not understood) | | |`;
console.log(`${MB.toFixed(0)} MB of the ${sizeMb} MiB store's tar, one core, node ${process.versions.node} (zstd ${process.versions.zstd}, zlib ${process.versions.zlib})`);
console.log("| codec | MB/s | ratio | CPU per byte / the tool's |");
console.log("|---|---|---|---|");
console.log(row("node:zlib zstd -3, 4 MiB frames", nodeZstd, zstd));
console.log(row(`zstd ${spawnSync("zstd", ["-V"], { encoding: "utf8" }).stdout.match(/v[\d.]+/)?.[0] ?? ""} -b3 --single-thread -B4M`, zstd));
console.log(row("node:zlib deflate -6, 1 MiB blocks", nodeGzip, pigz));
console.log(row("pigz -6 -p1 -b 1024", pigz));
