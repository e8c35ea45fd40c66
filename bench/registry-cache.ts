/**
 * The registry-cache benchmark (issue 20, item 4): how much a runner with an EMPTY layer cache saves by reading
 * the cache record another runner pushed, on the generated ~1 GB store, against Debian's docker-registry on
 * 127.0.0.1 (no proxy: `docker-registry serve` with filesystem storage under bench/.work/registry/), in one run:
 *   A        runner A, empty cache, pushes the image (gzip) to a fresh repository: bench/app:a (the cold push)
 *   B-same   runner B, empty cache, pushes the updated image (one application replaced by a new item and the
 *            profile pointing to it: bench/rebuild.ts's update, added next to A's items) to :b-same with
 *            --cache-from docker://HOST/bench/app:a, from A's own store directories
 *   B        the same from a store of its own, as another machine has: a hard-linked copy (`cp -al`) of the
 *            updated closure without the replaced items, pushed to :b
 *   C        empty cache, --no-cache-from, pushes the updated image (B's store) to :c: the registry already holds
 *            every blob, so only the building differs from B
 *   oci      `layerpack build` of A's image as an OCI layout (gzip, empty cache; timed for reference)
 *   skopeo   `skopeo copy --dest-tls-verify=false oci:LAYOUT:REF docker://HOST/bench/skopeo:1` to a fresh repository
 * and prints wall times, the ratios against the targets (B / C ≤ 15 %; the store bytes B's tar pass reads / the
 * changed items' file bytes ≤ 1.2×), the layers B built, and writes bench/.work/registry-results.json.
 *
 * Closure source: the generated config says `closure: {from: scan}`, which on an empty cache reads every byte to
 * find references. Every runner here uses a references graph instead (`closure: {from: guix-graph}`, the format
 * of Guix's #:references-graphs and Nix's exportReferencesGraph), written from store.json's references, so a
 * runner reads store bytes only for the layers it builds (item sizes come from lstat).
 *
 * The layerpack under test is a copy of bin/ and dist/ (of this checkout, or of `--layerpack DIR`) taken when the
 * run starts, so every step runs the same build. Each step's load average is recorded: the machine may be shared.
 *
 * Run: `npm run bench:registry -- [--size-mb 1024] [--keep] [--layerpack DIR]`
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { defaultParams, ensureStore, type GeneratedStore, type GenItem } from "./gen-store.ts";
import { removeTree } from "../examples/make-store.ts";
import { narSize } from "../src/store/nar.ts";
import { copyItem } from "./store-update.ts";
import { freePort } from "../test/fixtures/registry.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const WORK = path.join(import.meta.dirname, ".work");
const RUN = path.join(WORK, "registry");
import { STORE_DIR } from "../examples/make-store.ts";
const MB = 1024 * 1024;
/** The layerpack under test: a copy of bin/ and dist/ taken when the run starts (see snapshotLayerpack). */
let BIN = path.join(REPO, "bin/layerpack.js");

// ---------------------------------------------------------------------------------------------------------------
// Commands: asynchronous (nothing here may block the event loop while the registry answers), timed spawn to exit.

interface RunResult {
  wallSeconds: number;
  exitCode: number;
  stdout: string;
  stderrTail: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    child.on("error", (err) => reject(new Error(`starting ${cmd}: ${err.message}`, { cause: err })));
    child.on("close", (code) => resolve({ wallSeconds: (performance.now() - start) / 1000, exitCode: code ?? 1, stdout, stderrTail: stderr.trim().split("\n").slice(-12).join("\n") }));
  });
}

async function mustRun(what: string, cmd: string, args: string[]): Promise<RunResult> {
  const r = await run(cmd, args);
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${r.stderrTail}`);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// The registry: docker-registry serve on a free port, storage in RUN/registry-data.


interface Registry {
  host: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startRegistry(dir: string): Promise<Registry> {
  const host = `127.0.0.1:${await freePort()}`;
  const cfg = path.join(dir, "registry.yml");
  fs.writeFileSync(
    cfg,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, "registry-data")}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n`,
  );
  let log = "";
  const child = spawn("docker-registry", ["serve", cfg], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (log = (log + d).slice(-4000)));
  child.stderr!.on("data", (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${log}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      return { host, child, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error(`docker-registry did not answer on ${host}: ${log}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The update: bench/rebuild.ts's (same rule, same new store paths), so the two benchmarks update the same item.

interface Update {
  app: GenItem;
  newApp: GenItem;
  newProfile: GenItem;
}

/**
 * One application updated, as bench/rebuild.ts does it: the median-sized application (here: the one nearest the
 * median that only the profile refers to, so replacing it leaves nothing dangling) gets new content (one file
 * changed) and a new path, the profile a new path pointing at it. Both are added to the generated store.
 */
function updateOneApp(store: GeneratedStore): Update {
  const referrers = new Map<string, string[]>();
  for (const i of store.items) for (const r of i.references) referrers.set(r, [...(referrers.get(r) ?? []), i.path]);
  const apps = store.items.filter((i) => i.kind === "app").sort((a, b) => b.bytes - a.bytes);
  const mid = Math.floor(apps.length / 2);
  const onlyProfile = (i: GenItem) => (referrers.get(i.path) ?? []).every((r) => r === store.profile);
  const app = [...apps].map((a, k) => ({ a, d: Math.abs(k - mid) })).sort((x, y) => x.d - y.d).find(({ a }) => onlyProfile(a))?.a;
  if (!app) throw new Error("no application that only the profile refers to");
  let tweaked = false;
  const newAppPath = copyItem({
    root: store.storeRoot,
    item: app.path,
    name: `${app.path.slice(44)}-updated`,
    replace: [],
    tweak: (rel) => {
      if (tweaked || rel === "") return undefined;
      const file = path.join(store.storeRoot, app.path, rel);
      if (!fs.lstatSync(file).isFile()) return undefined;
      tweaked = true;
      return Buffer.concat([fs.readFileSync(file), Buffer.from("\nupdated\n")]);
    },
  });
  const newProfilePath = copyItem({ root: store.storeRoot, item: store.profile, name: "profile-updated", replace: [[app.path, newAppPath]] });
  const profile = store.items.find((i) => i.path === store.profile)!;
  const newApp: GenItem = { ...app, path: newAppPath, bytes: fileBytes(path.join(store.storeRoot, newAppPath)) };
  const newProfile: GenItem = { ...profile, path: newProfilePath, references: profile.references.map((r) => (r === app.path ? newAppPath : r)).sort() };
  return { app, newApp, newProfile };
}

/** Bytes of the regular files under a directory. */
function fileBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.lstatSync(path.join(e.parentPath, e.name)).size;
  return n;
}

/** A references graph (Guix #:references-graphs / Nix exportReferencesGraph): PATH, deriver (empty), N, N references. */
function writeGraph(file: string, items: readonly Pick<GenItem, "path" | "references">[]): void {
  const lines: string[] = [];
  for (const i of [...items].sort((a, b) => (a.path < b.path ? -1 : 1))) lines.push(i.path, "", String(i.references.length), ...i.references);
  fs.writeFileSync(file, lines.join("\n") + "\n");
}

/** A dangling link to a logical store path, as a profile link is on the host. */
function linkTo(link: string, target: string): string {
  fs.rmSync(link, { force: true });
  fs.symlinkSync(target, link);
  return link;
}

function writeConfig(file: string, o: { storeRoot: string; profile: string; graph: string; output: Record<string, string> }): string {
  const spec = {
    name: "bench",
    tag: "latest",
    store: { dir: STORE_DIR, root: o.storeRoot },
    profile: o.profile,
    closure: { from: "guix-graph", file: o.graph },
    layers: { max: 100 },
    compression: "gzip",
    output: o.output,
  };
  fs.writeFileSync(file, stringify(spec));
  return file;
}

/**
 * Copies `from`'s bin/, dist/ and package.json into `to` (node_modules linked), so every step runs the same build
 * even when dist/ is rebuilt meanwhile (others work in this tree). Waits, up to two minutes, for dist/ to have
 * been quiet for 10 s, so a build in progress is not copied half written. Returns dist/'s newest file time and
 * a fingerprint of its .js files.
 */
async function snapshotLayerpack(from: string, to: string): Promise<{ source: string; distNewest: string; distSha256: string }> {
  const dist = path.join(from, "dist");
  const newest = () => Math.max(...fs.readdirSync(dist, { recursive: true, withFileTypes: true }).map((e) => fs.lstatSync(path.join(e.parentPath, e.name)).mtimeMs));
  for (let waited = 0; Date.now() - newest() < 10_000 && waited < 120_000; waited += 2000) await new Promise((r) => setTimeout(r, 2000));
  fs.mkdirSync(to, { recursive: true });
  await mustRun("copying layerpack", "cp", ["-a", path.join(from, "bin"), dist, path.join(from, "package.json"), to]);
  fs.symlinkSync(path.join(from, "node_modules"), path.join(to, "node_modules"));
  const hash = createHash("sha256");
  for (const f of fs.readdirSync(path.join(to, "dist"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js")).sort()) {
    hash.update(`${f}\0`).update(fs.readFileSync(path.join(to, "dist", f)));
  }
  return { source: from, distNewest: new Date(newest()).toISOString(), distSha256: hash.digest("hex").slice(0, 16) };
}

// ---------------------------------------------------------------------------------------------------------------
// Runners.

interface BuiltLayer {
  index: number;
  items: number;
  plannedBytes: number;
  tarSize: number;
  size: number;
  /** From `layerpack plan` of the updated image (filled in for the steps that built few layers). */
  contents?: { reason: string; items: { path: string; narBytes: number; fileBytes: number }[] };
}

interface Step {
  step: string;
  what: string;
  command: string;
  wallSeconds: number;
  /** The build-done event of `push --json` / `build --json`. */
  done?: {
    rebuilt: number;
    reused: number;
    remote: number;
    tarBytes: number;
    bytesWritten: number;
    imageId: string;
    seconds: number;
    layers: unknown[];
    push?: { digest: string; uploaded: number; uploadedBytes: number; mounted: number; existing: number };
    warnings?: string[];
  };
  built?: BuiltLayer[];
  /** 1-minute load average when the step started and ended (the machine is shared). */
  load?: [number, number];
  error?: string;
}

/** Runs `layerpack ARGS --json` with a fresh, empty cache directory of its own. */
async function layerpack(o: { step: string; what: string; args: string[]; cacheName: string }): Promise<Step> {
  const cacheDir = path.join(RUN, `cache-${o.cacheName}`);
  removeTree(cacheDir);
  fs.mkdirSync(cacheDir, { recursive: true });
  const env = { ...process.env, LAYERPACK_CACHE_DIR: cacheDir, XDG_CACHE_HOME: cacheDir };
  const args = [BIN, ...o.args, "--json"];
  const load0 = os.loadavg()[0]!;
  const r = await run(process.execPath, args, env);
  const shown = args.map((a) => (a.startsWith(`${REPO}/`) ? path.relative(REPO, a) : a));
  const step: Step = { step: o.step, what: o.what, command: ["node", ...shown].join(" "), wallSeconds: r.wallSeconds, load: [load0, os.loadavg()[0]!] };
  const events = r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const done = events.filter((e) => e.type === "build-done").at(-1);
  if (r.exitCode !== 0 || !done) {
    const err = events.find((e) => e.type === "error");
    step.error = `exit code ${r.exitCode}: ${(err?.message as string | undefined) ?? r.stderrTail ?? "(no output)"}`;
    return step;
  }
  step.done = done as unknown as Step["done"];
  const starts = new Map(events.filter((e) => e.type === "layer-start").map((e) => [e.index as number, e]));
  step.built = events
    .filter((e) => e.type === "layer-done" && e.cached === false)
    .map((e) => {
      const s = starts.get(e.index as number);
      const blob = e.blob as { tarSize: number; size: number };
      return { index: e.index as number, items: (s?.items as number) ?? 0, plannedBytes: (s?.bytes as number) ?? 0, tarSize: blob.tarSize, size: blob.size };
    })
    .sort((a, b) => a.index - b.index);
  return step;
}

// ---------------------------------------------------------------------------------------------------------------

const fmtS = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2));
const fmtMiB = (x: number | undefined) => (x === undefined ? "-" : (x / MB).toFixed(x < 10 * MB ? 2 : 0));
const pct = (x: number | undefined) => (x === undefined ? "n/a" : `${(100 * x).toFixed(1)}%`);
const times = (x: number | undefined) => (x === undefined ? "n/a" : `${x.toFixed(2)}x`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { "size-mb": { type: "string", default: "1024" }, keep: { type: "boolean", default: false }, layerpack: { type: "string", default: REPO } },
  });
  const sizeMb = Number(values["size-mb"]);
  if (!Number.isInteger(sizeMb) || sizeMb <= 0) {
    console.error("bench: --size-mb must be a positive integer");
    return 2;
  }
  const t0 = performance.now();
  const { store, reused } = ensureStore(path.join(WORK, `store-${sizeMb}`), defaultParams(sizeMb));
  console.log(
    `store: ${store.items.length} items, ${store.fileCount} files, ${(store.totalBytes / MB).toFixed(0)} MiB ` +
      `(${reused ? "reused" : `generated in ${((performance.now() - t0) / 1000).toFixed(1)}s`}) at ${path.relative(REPO, store.storeRoot)}`,
  );
  removeTree(RUN);
  fs.mkdirSync(RUN, { recursive: true });
  const layerpackBuild = await snapshotLayerpack(path.resolve(values.layerpack), path.join(RUN, "layerpack"));
  BIN = path.join(RUN, "layerpack/bin/layerpack.js");
  console.log(`layerpack under test: ${layerpackBuild.source} (dist/ newest file ${layerpackBuild.distNewest}, .js fingerprint ${layerpackBuild.distSha256}), copied to ${path.relative(REPO, path.dirname(path.dirname(BIN)))}`);

  // The update, added to the generated store next to the items it replaces (rebuild.ts does the same).
  const up = updateOneApp(store);
  const changedNar = narSize(path.join(store.storeRoot, up.newApp.path)) + narSize(path.join(store.storeRoot, up.newProfile.path));
  const changedFiles = up.newApp.bytes + up.newProfile.bytes;
  console.log(`update: ${up.app.path.slice(44)} (${up.app.files} files, ${fmtMiB(up.app.bytes)} MiB) -> ${up.newApp.path.slice(11)}; changed items: ${changedNar} NAR bytes, ${changedFiles} file bytes`);

  // One references graph for every runner: the closure of either profile is taken from it.
  const graph = path.join(RUN, "references-graph");
  writeGraph(graph, [...store.items, up.newApp, up.newProfile]);

  // Runner B's store: hard links of every item of the updated image's closure, without the replaced app and
  // profile (the directories are new, as on another machine; the files share their inodes, so it costs little).
  const storeB = path.join(RUN, "store-b");
  fs.mkdirSync(path.join(storeB, STORE_DIR), { recursive: true });
  const keep = store.items.filter((i) => i.path !== up.app.path && i.path !== store.profile).map((i) => i.path);
  const copy = await mustRun("cp -al", "cp", ["-al", ...[...keep, up.newApp.path, up.newProfile.path].map((p) => path.join(store.storeRoot, p)), path.join(storeB, STORE_DIR)]);
  console.log(`runner B's store: ${keep.length + 2} items hard-linked (cp -al) in ${copy.wallSeconds.toFixed(2)}s`);

  const profileA = linkTo(path.join(RUN, "profile-a"), store.profile);
  const profileB = linkTo(path.join(RUN, "profile-b"), up.newProfile.path);
  const cfg = (name: string, o: { storeRoot: string; profile: string; output?: Record<string, string> }) =>
    writeConfig(path.join(RUN, `${name}.yaml`), { storeRoot: o.storeRoot, profile: o.profile, graph, output: o.output ?? { path: path.join(RUN, `${name}.tar`) } });
  const cfgA = cfg("a", { storeRoot: store.storeRoot, profile: profileA });
  const cfgB = cfg("b", { storeRoot: storeB, profile: profileB });
  const cfgSame = cfg("b-same", { storeRoot: store.storeRoot, profile: profileB });
  const layout = path.join(RUN, "layout");
  const cfgOci = cfg("oci", { storeRoot: store.storeRoot, profile: profileA, output: { format: "oci-layout", path: layout } });

  // Every step reads from a warm page cache (one unmeasured pass), as the other benchmarks do.
  await run("sync", []);
  console.log("warming the page cache (tar -c of the store, unmeasured)...");
  await mustRun("warming", "bash", ["-c", `tar -c -C "${store.storeRoot}" gnu > /dev/null`]);

  const registry = await startRegistry(RUN);
  const steps: Step[] = [];
  const say = (s: Step) => {
    const d = s.done;
    console.log(
      `  ${s.step.padEnd(7)} ${s.error ? `FAILED: ${s.error}` : `${s.wallSeconds.toFixed(2)} s` + (d ? `, ${d.rebuilt} built, ${d.remote} from records, ${fmtMiB(d.tarBytes)} MiB tar read` + (d.push ? `, ${d.push.uploaded} blobs uploaded (${fmtMiB(d.push.uploadedBytes)} MiB)` : "") : "")}`,
    );
    for (const w of d?.warnings ?? []) console.log(`          warning: ${w}`);
  };
  let skopeoStep: Step | undefined;
  let skopeoDigest: string | undefined;
  try {
    const repo = `${registry.host}/bench/app`;
    console.log(`registry: docker-registry serve on ${registry.host}`);
    const plan: { step: string; what: string; args: string[] }[] = [
      { step: "A", what: "runner A: cold push, empty cache, fresh repository", args: ["push", cfgA, "--to", `${repo}:a`] },
      { step: "B-same", what: "as B, from A's store directories", args: ["push", cfgSame, "--to", `${repo}:b-same`, "--cache-from", `docker://${repo}:a`] },
      { step: "B", what: "runner B: updated image, own store copy, empty cache, --cache-from :a", args: ["push", cfgB, "--to", `${repo}:b`, "--cache-from", `docker://${repo}:a`] },
      { step: "C", what: "updated image, B's store, empty cache, --no-cache-from", args: ["push", cfgB, "--to", `${repo}:c`, "--no-cache-from"] },
      { step: "oci", what: "A's image as an OCI layout (build, empty cache)", args: ["build", cfgOci] },
    ];
    for (const p of plan) {
      process.stdout.write(`measuring ${p.step}...\n`);
      const s = await layerpack({ ...p, cacheName: p.step });
      steps.push(s);
      say(s);
      if (s.error && p.step === "A") throw new Error(`runner A failed: ${s.error}`);
    }
    // What the layers B-same built hold (its plan, made again: planning is deterministic and reads no file bytes).
    const planned = await run(process.execPath, [BIN, "plan", cfgSame, "--json"], { ...process.env, LAYERPACK_CACHE_DIR: path.join(RUN, "cache-plan") });
    if (planned.exitCode === 0) {
      const layers = (JSON.parse(planned.stdout) as { layers: { reason?: string; items?: { path: string; size: number }[] }[] }).layers;
      const bytesOf = new Map([...store.items, up.newApp, up.newProfile].map((i) => [i.path, i.bytes]));
      for (const s of steps) {
        for (const b of s.built ?? []) {
          const items = layers[b.index]?.items ?? [];
          b.contents = { reason: layers[b.index]?.reason ?? "", items: items.map((i) => ({ path: i.path, narBytes: i.size, fileBytes: bytesOf.get(i.path) ?? 0 })) };
        }
      }
    } else console.log(`  (layerpack plan failed: ${planned.stderrTail})`);

    const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const ref = index.manifests[0]?.annotations?.["org.opencontainers.image.ref.name"];
    const src = `oci:${layout}${ref ? `:${ref}` : ""}`;
    const dest = `docker://${registry.host}/bench/skopeo:1`;
    process.stdout.write("measuring skopeo...\n");
    const load0 = os.loadavg()[0]!;
    const r = await run("skopeo", ["copy", "--dest-tls-verify=false", src, dest]);
    skopeoStep = {
      step: "skopeo",
      what: "skopeo copy of the OCI layout to a fresh repository",
      command: `skopeo copy --dest-tls-verify=false oci:LAYOUT${ref ? `:${ref}` : ""} docker://HOST/bench/skopeo:1`,
      wallSeconds: r.wallSeconds,
      load: [load0, os.loadavg()[0]!],
    };
    if (r.exitCode !== 0) skopeoStep.error = `exit code ${r.exitCode}: ${r.stderrTail}`;
    else {
      const inspect = await run("skopeo", ["inspect", "--tls-verify=false", dest]);
      skopeoDigest = inspect.exitCode === 0 ? (JSON.parse(inspect.stdout) as { Digest: string }).Digest : undefined;
    }
    steps.push(skopeoStep);
    say(skopeoStep);
  } finally {
    await registry.stop();
  }

  const by = (name: string) => steps.find((s) => s.step === name && !s.error);
  const [A, B, same, C, oci] = ["A", "B", "B-same", "C", "oci"].map(by);
  const ratios: Record<string, number | undefined> = {
    bOverC: B && C ? B.wallSeconds / C.wallSeconds : undefined,
    bSameOverC: same && C ? same.wallSeconds / C.wallSeconds : undefined,
    coldPushOverSkopeo: A && skopeoStep && !skopeoStep.error ? A.wallSeconds / skopeoStep.wallSeconds : undefined,
    coldPushOverOciPlusSkopeo: A && oci && skopeoStep && !skopeoStep.error ? A.wallSeconds / (oci.wallSeconds + skopeoStep.wallSeconds) : undefined,
  };
  const checks = {
    // The updated image is the same whichever way it was made.
    sameUpdatedImage: [B, same, C].every((s) => s?.done?.push?.digest !== undefined && s.done.push.digest === C?.done?.push?.digest),
    skopeoSameManifestAsA: skopeoDigest !== undefined && skopeoDigest === A?.done?.push?.digest,
  };

  console.log(`\n${"step".padEnd(8)}${"wall s".padStart(8)}${"built".padStart(7)}${"remote".padStart(8)}${"tar MiB read".padStart(14)}${"uploaded".padStart(10)}${"up MiB".padStart(9)}  what`);
  for (const s of steps) {
    const d = s.done;
    if (s.error) console.log(`${s.step.padEnd(8)}  failed: ${s.error.split("\n")[0]}`);
    else
      console.log(
        `${s.step.padEnd(8)}${fmtS(s.wallSeconds).padStart(8)}${String(d?.rebuilt ?? "-").padStart(7)}${String(d?.remote ?? "-").padStart(8)}${fmtMiB(d?.tarBytes).padStart(14)}` +
          `${String(d?.push?.uploaded ?? "-").padStart(10)}${fmtMiB(d?.push?.uploadedBytes).padStart(9)}  ${s.what}`,
      );
  }
  for (const s of [same, B]) {
    if (!s?.built) continue;
    const few = s.built.length <= 6;
    console.log(`\nlayers ${s.step} built: ${s.built.length}` + (few ? "" : " (the 3 largest)"));
    for (const l of [...s.built].sort((a, b) => b.tarSize - a.tarSize).slice(0, few ? 6 : 3)) {
      const c = l.contents;
      const nar = c?.items.reduce((n, i) => n + i.narBytes, 0);
      const files = c?.items.reduce((n, i) => n + i.fileBytes, 0);
      console.log(`  layer ${String(l.index + 1).padStart(3)}: ${l.items} items (NAR ${nar ?? "?"} bytes, files ${files ?? "?"} bytes), tar ${l.tarSize} bytes, gzip ${l.size} bytes`);
      if (few) for (const i of c?.items ?? []) console.log(`      ${i.path.slice(44).padEnd(32)} NAR ${String(i.narBytes).padStart(9)}  files ${String(i.fileBytes).padStart(9)}`);
    }
  }
  const readOf = (s: Step | undefined) => {
    if (!s?.built?.every((l) => l.contents)) return undefined;
    const items = s.built.flatMap((l) => l.contents!.items);
    return { narBytes: items.reduce((n, i) => n + i.narBytes, 0), fileBytes: items.reduce((n, i) => n + i.fileBytes, 0) };
  };
  const sameRead = readOf(same);
  const bRead = readOf(B);
  // What the tar pass reads from the store is the regular files' bytes of the items of the layers it builds; the
  // layers B builds are exactly the new plan's layers that hold a changed item, so a ratio above 1 is the plan's
  // grouping (unchanged items sharing those layers), never a layer read that a record could have skipped.
  const readRatios = {
    bReadOverChanged: bRead ? bRead.fileBytes / changedFiles : undefined,
    bSameReadOverChanged: sameRead ? sameRead.fileBytes / changedFiles : undefined,
    bNarOverChanged: bRead ? bRead.narBytes / changedNar : undefined,
  };
  Object.assign(ratios, readRatios);
  console.log(`\nchanged items (new app + new profile): ${changedNar} NAR bytes, ${changedFiles} file bytes`);
  for (const [name, r] of [["B-same", sameRead], ["B", bRead]] as const) {
    if (r) console.log(`${name} built layers holding ${r.narBytes} NAR bytes (${times(r.narBytes / changedNar)} the changed items); its tar pass read ${r.fileBytes} file bytes (${times(r.fileBytes / changedFiles)})`);
  }
  console.log(`B / C wall time:                   ${pct(ratios.bOverC)} (target <= 15%)`);
  console.log(`B-same / C wall time:              ${pct(ratios.bSameOverC)} (target <= 15%)`);
  console.log(`B store bytes read / changed:      ${times(readRatios.bReadOverChanged)} (target <= 1.2x)`);
  console.log(`B-same store bytes read / changed: ${times(readRatios.bSameReadOverChanged)} (target <= 1.2x)`);
  console.log(`cold push A / skopeo copy:  ${times(ratios.coldPushOverSkopeo)}; A / (oci build + skopeo): ${times(ratios.coldPushOverOciPlusSkopeo)}`);
  console.log(`B, B-same and C pushed the same manifest: ${checks.sameUpdatedImage}; skopeo's copy has A's manifest digest: ${checks.skopeoSameManifestAsA}`);

  const report = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, memoryMb: Math.round(os.totalmem() / MB), node: process.version, platform: `${os.platform()} ${os.release()}` },
    store: { params: store.params, items: store.items.length, files: store.fileCount, bytes: store.totalBytes },
    method:
      "docker-registry serve on 127.0.0.1 (filesystem storage); gzip; closure from a references graph (guix-graph) written from store.json; " +
      "every runner an empty cache dir (LAYERPACK_CACHE_DIR); warm page cache; wall time spawn to exit, one run each",
    update: { app: up.app.path, newApp: up.newApp.path, newProfile: up.newProfile.path, changedNarBytes: changedNar, changedFileBytes: changedFiles },
    layerpack: layerpackBuild,
    read: { "B-same": sameRead, B: bRead },
    registry: "docker-registry (Debian), no proxy",
    steps,
    ratios,
    targets: { bOverC: 0.15, bTarOverChanged: 1.2 },
    checks,
  };
  fs.writeFileSync(path.join(WORK, "registry-results.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`\nresults: ${path.relative(process.cwd(), path.join(WORK, "registry-results.json"))}`);
  if (!values.keep) removeTree(RUN);
  return steps.some((s) => s.error) ? 1 : 0;
}

process.exitCode = await main();
