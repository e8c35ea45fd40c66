import * as fs from "node:fs";
import { LayerpackError } from "../errors.ts";
import { listImage } from "../oci/list.ts";
import { parseImageName, type ImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { diffPlans, diffSides, imageSide, type PlanDiff } from "../plan/diff.ts";
import { DIFF_FORMATS, renderDiff, type DiffFormat } from "../plan/diff-format.ts";
import { readPlanFile } from "../plan/plan-file.ts";
import type { LayerPlan } from "../plan/types.ts";
import { UsageError, type Command } from "./context.ts";

type Input = { kind: "plan"; plan: LayerPlan } | { kind: "image"; name: ImageName; shown: string };

/**
 * Plan file or image: a name with a transport (docker-archive:, oci:, oci-archive:, docker://), a directory or a
 * registry reference is an image; a plain file is one when it is a tar (or gzip), else it is read as a plan.
 */
function sniff(text: string, cwd: string): Input {
  const name = parseImageName(text, { cwd });
  if (name.transport !== "path") return { kind: "image", name, shown: text };
  const file = name.path;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new LayerpackError(`cannot read ${text}: no such file`);
    throw new LayerpackError(`cannot read ${text}: ${(cause as Error).message}`, { cause });
  }
  if (st.isDirectory()) return { kind: "image", name, shown: text };
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
    throw new LayerpackError(`cannot read ${text}: ${(cause as Error).message}`, { cause });
  }
  const gzip = n >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  const tar = n >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
  return gzip || tar ? { kind: "image", name, shown: text } : { kind: "plan", plan: readPlanFile(file, { shown: text }) };
}

export const diffCommand: Command = {
  name: "diff",
  usage: `layerpack diff OLD NEW [--format text|markdown|json] [--insecure]

  OLD, NEW           plan files (layerpack plan --write), or images: docker-archive:PATH, oci:DIR[:REF],
                     oci-archive:PATH[:REF], docker://HOST/NAME[:TAG|@DIGEST], or a plain path or reference
                     (a plain file is an image when it is a tar, else a plan). Layers are compared by diff_id, so
                     the same layer compressed elsewhere counts as shared.
  --format FORMAT    text (default), markdown (to paste into a pull request) or json
  --insecure         plain HTTP to registries (loopback registries use it without this)`,
  maxPositionals: 2,
  options: { format: { type: "string", short: "f" }, insecure: { type: "boolean" } },
  async run({ io, values, positionals }) {
    const format = (values.format ?? "text") as DiffFormat;
    if (!DIFF_FORMATS.includes(format)) throw new UsageError(`--format ${String(format)}: use ${DIFF_FORMATS.join(", ")}`);
    if (positionals.length !== 2) {
      io.err(`layerpack diff: give two files, OLD and NEW\n\nUsage: ${diffCommand.usage}\n`);
      return 2;
    }
    const [oldFile, newFile] = positionals as [string, string];
    const o = sniff(oldFile, io.cwd);
    const n = sniff(newFile, io.cwd);
    let diff: PlanDiff;
    if (o.kind === "plan" && n.kind === "plan") {
      diff = diffPlans(o.plan, n.plan, { old: oldFile, new: newFile });
      if (o.plan.name !== n.plan.name) diff.notes.unshift(`these are plans of different images: ${o.plan.name} and ${n.plan.name}`);
    } else if (o.kind === "image" && n.kind === "image") {
      const read = async (x: typeof o) => listImage(await openImage(x.name, { env: io.env, ...(values.insecure ? { insecure: true } : {}) }), x.shown);
      const [oi, ni] = await Promise.all([read(o), read(n)]);
      diff = diffSides(imageSide(oi, oldFile), imageSide(ni, newFile));
    } else {
      const what = (x: Input) => (x.kind === "plan" ? "a plan file" : "an image");
      throw new LayerpackError(`${oldFile} is ${what(o)} and ${newFile} is ${what(n)}: diff compares two plan files or two images`);
    }
    io.out(renderDiff(diff, format));
    return 0;
  },
};
