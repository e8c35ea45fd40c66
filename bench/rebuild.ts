/**
 * The rebuild benchmark (issue 4): on the generated ~1 GB store, in one run, with a fresh cache:
 *   cold       first build (gzip, cache empty)
 *   no-op      the same build again (warm cache, output up to date)
 *   item       one application updated: a new store item and a new profile pointing at it
 *   custom     only the customisation layer changes (a file in `paths`)
 *   pigz       `tar -c <items> | pigz -p<cores> -6` over the same bytes, the parallel-gzip yardstick
 * for each output format given (`--formats docker-archive,oci-layout`), with peak memory of every layerpack run.
 * The updated items are made once, deterministically, next to the generated store.
 *
 * Run: `npm run bench:rebuild -- [--size-mb 1024] [--formats docker-archive] [--compression gzip]`
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { defaultParams, ensureStore, type GeneratedStore } from "./gen-store.ts";
import { removeTree } from "../examples/make-store.ts";
import { measure, type Measurement } from "./measure.ts";
import { copyItem } from "./store-update.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const WORK = path.join(import.meta.dirname, ".work");

/** One application updated: the app gets new content and path, the profile a new path pointing at it. */
function updateOneApp(store: GeneratedStore): string {
  const apps = store.items.filter((i) => i.kind === "app").sort((a, b) => b.bytes - a.bytes);
  const app = apps[Math.floor(apps.length / 2)]!;
  let tweaked = false;
  const newApp = copyItem({ root: store.storeRoot, item: app.path, name: `${app.path.slice(44)}-updated`, replace: [], tweak: (rel) => {
    if (tweaked || rel === "") return undefined;
    const file = path.join(store.storeRoot, app.path, rel);
    if (!fs.lstatSync(file).isFile()) return undefined;
    tweaked = true;
    return Buffer.concat([fs.readFileSync(file), Buffer.from("\nupdated\n")]);
  } });
  const newProfile = copyItem({ root: store.storeRoot, item: store.profile, name: "profile-updated", replace: [[app.path, newApp]] });
  const link = path.join(path.dirname(store.profileLink), "profile-updated");
  // The link points into the logical store, so it dangles on the host; rmSync would not remove it.
  try {
    fs.unlinkSync(link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  fs.symlinkSync(newProfile, link);
  return link;
}

function config(file: string, o: { store: GeneratedStore; profile: string; motd: string; format: string; output: string; compression: string }): string {
  fs.writeFileSync(
    file,
    stringify({
      name: "rebuild",
      tag: "latest",
      store: { dir: "/gnu/store", root: o.store.storeRoot },
      profile: o.profile,
      closure: { from: "scan" },
      paths: [
        { path: "/tmp", type: "directory", mode: "1777" },
        { path: "/etc/motd", type: "file", content: o.motd },
      ],
      layers: { max: 100 },
      compression: o.compression,
      output: { format: o.format, path: o.output },
    }),
  );
  return file;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { "size-mb": { type: "string", default: "1024" }, formats: { type: "string", default: "docker-archive" }, compression: { type: "string", default: "gzip" } },
  });
  const sizeMb = Number(values["size-mb"]);
  const { store } = ensureStore(path.join(WORK, `store-${sizeMb}`), defaultParams(sizeMb));
  const updatedProfile = updateOneApp(store);
  const run = path.join(WORK, "rebuild");
  removeTree(run);
  fs.mkdirSync(run, { recursive: true });
  const cores = os.availableParallelism();
  const node = process.execPath;
  const bin = path.join(REPO, "bin/layerpack.js");
  const rows: { format: string; step: string; m: Measurement }[] = [];

  // Warm the page cache so every step reads from memory, as the build benchmark does.
  await measure("bash", ["-c", `tar -c -C "${store.storeRoot}" gnu > /dev/null`]);
  const pigz = await measure("bash", ["-c", `set -o pipefail; tar -c -C "${store.storeRoot}" gnu | pigz -p ${cores} -6 > /dev/null`]);

  for (const format of values.formats.split(",")) {
    const out = path.join(run, format === "docker-archive" ? "image.tar" : format === "oci-archive" ? "image.oci.tar" : "image-oci");
    const env = { ...process.env, LAYERPACK_CACHE_DIR: path.join(run, `cache-${format}`) };
    const c = (name: string, profile: string, motd: string) =>
      config(path.join(run, `${format}-${name}.yaml`), { store, profile, motd, format, output: out, compression: values.compression });
    const base = c("base", store.profileLink, "v1\n");
    const steps: [string, string][] = [
      ["cold", base],
      ["no-op", base],
      ["item", c("item", updatedProfile, "v1\n")],
      ["custom", c("custom", updatedProfile, "v2\n")],
    ];
    for (const [step, cfg] of steps) {
      const m = await measure(node, [bin, "build", cfg, "-q"], env);
      if (m.exitCode !== 0) throw new Error(`${format} ${step} failed: ${m.stderrTail}`);
      rows.push({ format, step, m });
      console.log(`${format.padEnd(15)} ${step.padEnd(7)} ${m.wallSeconds.toFixed(2).padStart(7)} s  ${m.peakRssMb.toFixed(0).padStart(4)} MB`);
    }
  }
  console.log(`${"pigz".padEnd(15)} ${`-p${cores}`.padEnd(7)} ${pigz.wallSeconds.toFixed(2).padStart(7)} s`);
  console.log("\nratios:");
  for (const format of new Set(rows.map((r) => r.format))) {
    const t = (step: string) => rows.find((r) => r.format === format && r.step === step)!.m.wallSeconds;
    const peak = Math.max(...rows.filter((r) => r.format === format).map((r) => r.m.peakRssMb));
    console.log(
      `  ${format}: no-op ${t("no-op").toFixed(2)} s (goal <= 0.5), item ${((100 * t("item")) / t("cold")).toFixed(1)}% of cold (goal <= 15%), ` +
        `custom ${t("custom").toFixed(2)} s (goal <= 0.5), cold/pigz ${(t("cold") / pigz.wallSeconds).toFixed(2)} (goal <= 1.2), peak ${peak.toFixed(0)} MB (goal <= 256)`,
    );
  }
  fs.writeFileSync(path.join(WORK, "rebuild-results.json"), JSON.stringify({ date: new Date().toISOString(), cores, pigz, rows }, null, 2) + "\n");
  removeTree(run);
  return 0;
}

process.exitCode = await main();
