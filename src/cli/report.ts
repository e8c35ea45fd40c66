/**
 * `layerpack report`: the layer plan (or a built image) as a self-contained HTML treemap, or a Markdown summary
 * for a pull request; with --previous, what a host that has the older plan or image must pull, in diff's numbers.
 */
import { registryEnv } from "../registry/output.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { LayerpackError } from "../errors.ts";
import { writeAtomically } from "../image/atomic.ts";
import { builtImageGuard, checkOutputPath, localImagePath, protectedPaths } from "../image/output-guard.ts";
import { renderHtml } from "../report/html.ts";
import { renderMarkdown } from "../report/markdown.ts";
import { buildReport, imageReasons, planReasons } from "../report/model.ts";
import { imageSides, outputImage, planSides, readPrevious, type Sides } from "../report/sides.ts";
import { parseImageName } from "../oci/name.ts";
import { loadAndPlan, outputFileArg, UsageError, warn, type Command } from "./context.ts";
import { count } from "../util/format.ts";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../oci/platform.ts";
import type { LayerPlan } from "../plan/types.ts";

const FORMATS = ["html", "markdown"] as const;
type Format = (typeof FORMATS)[number];

/** --format, else from the output's extension (.md/.markdown), else html. */
function formatOf(values: Record<string, unknown>): Format {
  const given = values.format;
  if (given !== undefined) {
    if (!FORMATS.includes(given as Format)) throw new UsageError(`--format ${String(given)}: use ${FORMATS.join(" or ")}`);
    return given as Format;
  }
  return typeof values.output === "string" && /\.(md|markdown)$/i.test(values.output) ? "markdown" : "html";
}

/** The output file (absolute), or undefined for standard output; its directory must exist before any work. */
function outputFile(values: Record<string, unknown>, cwd: string): string | undefined {
  const o = values.output;
  if (o === undefined || o === "-") return undefined;
  if (typeof o !== "string" || o === "") throw new UsageError("-o needs a file name, or - for standard output");
  const file = outputFileArg("-o", o, cwd);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new UsageError(`-o ${o}: is a directory; give a file name such as ${path.join(o, "report.html")}`);
  return file;
}

/**
 * The config as the report names it: relative to the current directory, `..` included, so that the page holds no
 * path of this machine (a checkout elsewhere gives the same bytes).
 */
const shownPath = (cwd: string, file: string) => {
  const rel = path.relative(cwd, file);
  return rel !== "" && !path.isAbsolute(rel) ? rel : path.basename(file);
};

function onePlatform(plan: LayerPlan, wanted: string | undefined): LayerPlan {
  if (!plan.platforms) {
    if (wanted !== undefined && plan.platform && formatPlatform(plan.platform) !== formatPlatform(parsePlatform(wanted))) throw new UsageError(`--platform ${wanted}: this plan is for ${formatPlatform(plan.platform)} only`);
    return plan;
  }
  const want = wanted !== undefined ? parsePlatform(wanted) : hostPlatform();
  const found = plan.platforms.find((p) => p.platform && platformMatches(p.platform, want));
  if (!found && wanted !== undefined) throw new UsageError(`--platform ${wanted}: the plan has ${plan.platforms.map((p) => formatPlatform(p.platform!)).join(", ")}`);
  return found ?? plan.platforms[0]!;
}

export const reportCommand: Command = {
  name: "report",
  usage: `layerpack report [config] [--previous PLAN|IMAGE] [--image IMAGE] [-o FILE] [--format html|markdown] [--platform P] [--insecure]

  A treemap of the layers by bytes (each layer a box, each store item a tile, the planner's reason on hover and
  click) in one self-contained HTML file that loads nothing from the network; or, with --format markdown, the same
  summary for a pull request comment.
  --previous OLD     compare with an older plan file or image (any name layerpack diff takes): the layers a host
                     that has OLD must pull are highlighted, with the bytes to pull against the bytes changed, in
                     the numbers of layerpack diff OLD NEW. A plan file is compared with the config's plan, an
                     image with the image the config builds (its output; build it first) or --image. (Unlike
                     plan --previous, this does not change the plan: layers.previous still does.)
  --image NEW        report this built image's layers (compressed sizes) instead of the config's plan
  -o, --output FILE  write the report to FILE, atomically (a failure leaves no half file); without -o, or with
                     -o -, it goes to standard output
  -f, --format FMT   html (default) or markdown (the default when FILE ends in .md)
  --insecure         plain HTTP to registries (loopback registries use it without this)
  --platform P       with platforms: in the config, the platform to report (os/arch[/variant]; default the
                     host's, else the first)`,
  maxPositionals: 1,
  options: {
    previous: { type: "string" },
    image: { type: "string" },
    output: { type: "string", short: "o" },
    format: { type: "string", short: "f" },
    insecure: { type: "boolean" },
    platform: { type: "string" },
  },
  async run({ io, values, positionals, signal }) {
    const format = formatOf(values);
    // Like build -o -: a page of HTML is for a file or a pipe, not for the terminal.
    if (format === "html" && io.stdoutIsTTY && (values.output === undefined || values.output === "-")) {
      throw new UsageError("the HTML report would go to the terminal; give -o report.html, pipe it, or use --format markdown");
    }
    for (const o of ["previous", "image"] as const) if (values[o] === "") throw new UsageError(`--${o} needs a plan file or an image name`);
    const file = outputFile(values, io.cwd);
    const loaded = await loadAndPlan(io, positionals[0], { signal });
    const { spec, path: configPath } = loaded;
    // With platforms: one platform's plan (--platform, else the host's, else the first).
    const plan = onePlatform(loaded.plan, values.platform as string | undefined);
    const imageArg = typeof values.image === "string" ? values.image : undefined;
    if (file !== undefined) {
      // The images and plans the report reads, and the config's own output, must survive it.
      const read: { path: string; role: string; tree: boolean }[] = [];
      const local = (name: string, role: string) => {
        const p = localImagePath(name, io.cwd);
        if (p !== undefined) read.push({ path: p, role, tree: true });
      };
      if (typeof values.previous === "string") local(values.previous, "the --previous plan or image");
      if (imageArg !== undefined) local(imageArg, "the --image image");
      checkOutputPath({ output: file, directory: false, protected: [...protectedPaths(loaded), ...builtImageGuard(spec), ...read], label: `-o ${String(values.output)}`, what: "the report" });
    }
    const read = typeof values.previous === "string" ? readPrevious(values.previous, io.cwd) : undefined;
    const previous = read?.kind === "plan" && read.plan.platforms ? { ...read, plan: onePlatform(read.plan, plan.platform ? formatPlatform(plan.platform) : undefined) } : read;
    // The images are the config's output and what it replaced: its push target's credentials go there (auth.ts).
    const imageOpts = { env: registryEnv(spec, io.env), ...(values.insecure ? { insecure: true } : {}), signal };
    let sides: Sides;
    let reasons: string[];
    if (imageArg !== undefined || previous?.kind === "image") {
      if (previous?.kind === "plan") {
        throw new UsageError(`--previous ${previous.shown} is a plan file and --image ${imageArg} an image: a report compares a plan with a plan, or an image with an image`);
      }
      const image = imageArg !== undefined ? { name: parseImageName(imageArg, { cwd: io.cwd }), shown: imageArg, given: true } : outputImage(spec, io.cwd);
      sides = await imageSides(image, previous, imageOpts);
      const placed = imageReasons(sides.side, plan);
      if (placed.stale) warn(io, `${image.shown} was not built from the config's current plan (its layers differ); run layerpack build for a report of the current inputs`);
      reasons = placed.reasons;
    } else {
      sides = planSides(plan, shownPath(io.cwd, configPath), previous?.kind === "plan" ? previous : undefined);
      reasons = planReasons(plan);
    }
    const report = buildReport(sides.side, { name: plan.name, reasons, ...(sides.previous ? { previous: sides.previous } : {}) });
    const text = format === "markdown" ? renderMarkdown(report) : renderHtml(report);
    if (file === undefined) {
      io.out(text);
      return 0;
    }
    try {
      await writeAtomically(file, async (temp) => fs.writeFileSync(temp, text));
    } catch (err) {
      if (err instanceof LayerpackError) throw err;
      throw new LayerpackError(`writing ${String(values.output)}: ${(err as Error).message}`, { cause: err });
    }
    const t = report.totals;
    io.err(`wrote ${String(values.output)}: ${format} report of ${count(t.layers, "layer")}, ${count(t.items, "store item")}, ${count(t.bytes, "byte")}\n`);
    return 0;
  },
};
