/**
 * What `diff` and `report` take: a plan file or an image. A name with a transport (docker-archive:, oci:,
 * oci-archive:, docker://), a directory or a registry reference is an image; a plain file is one when it is a tar
 * (or gzip), else it is read as a plan file.
 */
import * as fs from "node:fs";
import { LayerpackError } from "../errors.ts";
import { fileKind } from "../util/format.ts";
import { parseImageName, type ImageName } from "../oci/name.ts";
import { readPlanFile } from "./plan-file.ts";
import type { LayerPlan } from "./types.ts";

export type PlanOrImage = { kind: "plan"; plan: LayerPlan; shown: string } | { kind: "image"; name: ImageName; shown: string };

/** `what` starts error messages, e.g. `cannot read X` or `--previous X`. */
export function readPlanOrImage(text: string, opts: { cwd: string; what?: string }): PlanOrImage {
  const what = opts.what ?? `cannot read ${text}`;
  const name = parseImageName(text, { cwd: opts.cwd });
  if (name.transport !== "path") return { kind: "image", name, shown: text };
  let st: fs.Stats;
  try {
    st = fs.statSync(name.path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new LayerpackError(`${what}: no such file`);
    throw new LayerpackError(`${what}: ${(cause as Error).message}`, { cause });
  }
  if (st.isDirectory()) return { kind: "image", name, shown: text };
  // A FIFO would block the open below, /dev/zero never end: a plan or an image archive is a regular file.
  if (!st.isFile()) throw new LayerpackError(`${what}: it is ${fileKind(st)}, not a regular file; give a plan file or an image`);
  const head = Buffer.alloc(512);
  let n: number;
  try {
    const fd = fs.openSync(name.path, "r");
    try {
      n = fs.readSync(fd, head, 0, 512, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (cause) {
    throw new LayerpackError(`${what}: ${(cause as Error).message}`, { cause });
  }
  const gzip = n >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  const tar = n >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
  if (gzip || tar) return { kind: "image", name, shown: text };
  // A TS or JS config is no YAML: say what it is, and what to give instead.
  if (/\.(c|m)?(t|j)s$/.test(name.path)) throw new LayerpackError(`${what}: it is a config module, not a plan file or an image; write its plan with layerpack plan ${text} --write FILE, or build its image`);
  return { kind: "plan", plan: readPlanFile(name.path, { shown: text }), shown: text };
}
