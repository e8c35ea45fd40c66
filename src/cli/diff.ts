import * as fs from "node:fs";
import * as path from "node:path";
import { LayerpackError } from "../errors.ts";
import { readDockerArchive } from "../image/read-archive.ts";
import { diffPlans, diffSides, imageSide, type PlanDiff } from "../plan/diff.ts";
import { DIFF_FORMATS, renderDiff, type DiffFormat } from "../plan/diff-format.ts";
import { readPlanFile } from "../plan/plan-file.ts";
import type { LayerPlan } from "../plan/types.ts";
import { UsageError, type Command } from "./context.ts";

type Input = { kind: "plan"; plan: LayerPlan } | { kind: "image"; file: string; shown: string };

/** Plan file or image, by content: a tar (or gzip) is an image, anything else is read as a plan. */
function sniff(file: string, shown: string): Input {
  const head = Buffer.alloc(512);
  let n: number;
  try {
    const fd = fs.openSync(file, "r");
    try {
      n = fs.readSync(fd, head, 0, 512, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new LayerpackError(`cannot read ${shown}: no such file`);
    throw new LayerpackError(`cannot read ${shown}: ${(cause as Error).message}`, { cause });
  }
  const gzip = n >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  const tar = n >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
  return gzip || tar ? { kind: "image", file, shown } : { kind: "plan", plan: readPlanFile(file, { shown }) };
}

export const diffCommand: Command = {
  name: "diff",
  usage: `layerpack diff OLD NEW [--format text|markdown|json]

  OLD, NEW           plan files (layerpack plan --write) or docker archives (layerpack build), told apart by content
  --format FORMAT    text (default), markdown (to paste into a pull request) or json`,
  maxPositionals: 2,
  options: { format: { type: "string", short: "f" } },
  async run({ io, values, positionals }) {
    const format = (values.format ?? "text") as DiffFormat;
    if (!DIFF_FORMATS.includes(format)) throw new UsageError(`--format ${String(format)}: use ${DIFF_FORMATS.join(", ")}`);
    if (positionals.length !== 2) {
      io.err(`layerpack diff: give two files, OLD and NEW\n\nUsage: ${diffCommand.usage}\n`);
      return 2;
    }
    const [oldFile, newFile] = positionals as [string, string];
    const o = sniff(path.resolve(io.cwd, oldFile), oldFile);
    const n = sniff(path.resolve(io.cwd, newFile), newFile);
    let diff: PlanDiff;
    if (o.kind === "plan" && n.kind === "plan") {
      diff = diffPlans(o.plan, n.plan, { old: oldFile, new: newFile });
      if (o.plan.name !== n.plan.name) diff.notes.unshift(`these are plans of different images: ${o.plan.name} and ${n.plan.name}`);
    } else if (o.kind === "image" && n.kind === "image") {
      const [oi, ni] = await Promise.all([readDockerArchive(o.file, o.shown), readDockerArchive(n.file, n.shown)]);
      diff = diffSides(imageSide(oi, oldFile), imageSide(ni, newFile));
    } else {
      const what = (x: Input) => (x.kind === "plan" ? "a plan file" : "an image");
      throw new LayerpackError(`${oldFile} is ${what(o)} and ${newFile} is ${what(n)}: diff compares two plan files or two images`);
    }
    io.out(renderDiff(diff, format));
    return 0;
  },
};
