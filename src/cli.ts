/**
 * The command line: finds the command, parses its arguments, runs it, prints errors. The only module that decides
 * exit codes; each command lives in src/cli/<name>.ts and is registered below.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { formatError } from "./errors.ts";
import type { Command, Io } from "./cli/context.ts";

/** Every command, loaded only when it runs: `layerpack --help` or `plan` never load the image writer. */
const COMMANDS: { name: string; summary: string; load: () => Promise<Command> }[] = [
  { name: "build", summary: "build the image the config describes", load: async () => (await import("./cli/build.ts")).buildCommand },
  { name: "plan", summary: "print the layer plan: every layer, its items and sizes", load: async () => (await import("./cli/plan.ts")).planCommand },
  { name: "watch", summary: "build, then rebuild whenever the config or its inputs change", load: async () => (await import("./cli/watch.ts")).watchCommand },
  { name: "cache", summary: "show (info) or trim (prune) the layer cache", load: async () => (await import("./cli/cache.ts")).cacheCommand },
  { name: "check", summary: "fail when the committed plan file no longer matches the inputs (for CI)", load: async () => (await import("./cli/check.ts")).checkCommand },
  { name: "diff", summary: "compare two plan files or two images: layers changed, items moved, bytes to pull", load: async () => (await import("./cli/diff.ts")).diffCommand },
  { name: "push", summary: "build the image and push it to a registry, sending only the blobs it lacks", load: async () => (await import("./cli/push.ts")).pushCommand },
  { name: "inspect", summary: "show an image's manifest, config and layers (archive, OCI layout or registry)", load: async () => (await import("./cli/inspect.ts")).inspectCommand },
];

const COMMON = `Config: [config] or -c FILE; without it, image.config.{ts,mts,cts,js,mjs,cjs,yaml,yml,json}, .layerpackrc*
or package.json#layerpack in the current directory.`;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: layerpack <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

${COMMON}
Run 'layerpack <command> --help' for a command's options. -V/--version prints the version.
`;
}

const defaultIo = (): Io => ({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  cwd: process.cwd(),
  env: process.env,
  isTTY: Boolean(process.stderr.isTTY),
  stdoutIsTTY: Boolean(process.stdout.isTTY),
  pipeOut: (file) => pipeline(fs.createReadStream(file), process.stdout, { end: false }),
});

let DEFAULT_IO: Io | undefined;

export async function main(argv: string[], io: Io = (DEFAULT_IO = defaultIo())): Promise<number> {
  const [name, ...args] = argv;
  if (name === "-V" || name === "--version") {
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    io.out(`layerpack ${pkg.version}\n`);
    return 0;
  }
  if (name === undefined || name === "help" || name === "-h" || name === "--help") {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.err(`layerpack: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const command = await entry.load();
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { ...command.options, config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    io.err(`layerpack ${name}: ${(err as Error).message}\n\nUsage: ${command.usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(`Usage: ${command.usage}\n\n${COMMON}\n`);
    return 0;
  }
  // `-c FILE` is the same as a leading positional config argument.
  if (typeof values.config === "string") positionals.unshift(values.config);
  if (positionals.length > command.maxPositionals) {
    io.err(`layerpack ${name}: too many arguments: ${positionals.slice(command.maxPositionals).join(" ")}\n\nUsage: ${command.usage}\n`);
    return 2;
  }
  // Ctrl-C and SIGTERM abort the command: a build removes its temp files and keeps the previous output.
  const interrupt = new AbortController();
  const stop = () => interrupt.abort();
  if (io === DEFAULT_IO) for (const s of ["SIGINT", "SIGTERM"] as const) process.on(s, stop);
  try {
    return await command.run({ io, values, positionals, signal: interrupt.signal });
  } catch (err) {
    if (interrupt.signal.aborted) {
      io.err(`layerpack ${name}: interrupted; temp files removed, any previous output kept\n`);
      return 130;
    }
    io.err(formatError(err));
    return 1;
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) process.off(s, stop);
  }
}
