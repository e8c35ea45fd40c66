/**
 * The command line: finds the command, parses its arguments, runs it, prints errors. The only module that decides
 * exit codes; each command lives in src/cli/<name>.ts and is registered below.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { formatError, UsageError } from "./errors.ts";
import { failure, jsonLine } from "./cli/events.ts";
import { didYouMean } from "./util/suggest.ts";
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
  { name: "report", summary: "the layers as an HTML treemap or a Markdown summary; with --previous, what a host must pull", load: async () => (await import("./cli/report.ts")).reportCommand },
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
Run 'layerpack help <command>' or 'layerpack <command> --help' for a command's options; -v/--version prints the version.
`;
}

/** Options every command takes. */
const GLOBAL_OPTIONS = { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } } as const;
const HELP_ONLY = { help: GLOBAL_OPTIONS.help } as const;
const globalOptions = (command: Command) => (command.readsConfig === false ? HELP_ONLY : GLOBAL_OPTIONS);

function commandHelp(command: Command): string {
  // The common options' descriptions start in the command's own column (its first option line says where).
  const column = /^ {2}(?:-\w, | {4})--[\w-]+(?: [A-Z]+)? +(?=\S)/m.exec(command.usage)?.[0].length ?? 21;
  const line = (option: string, text: string) => `${option.padEnd(column - 1)} ${text}\n`;
  const help = line("  -h, --help", "this help");
  if (command.readsConfig === false) return `Usage: ${command.usage}\n${help}`;
  return `Usage: ${command.usage}\n${line("  -c, --config FILE", "the config (instead of the [config] argument)")}${help}\n${COMMON}\n`;
}

/** How long an interrupted command may take to stop by itself before the process ends. */
const GRACE_MS = 3000;


/** Flags that contradict each other. */
const CONFLICTS: [string, string][] = [
  ["no-cache", "cache-dir"],
  ["quiet", "json"],
];

/** While `build -o -` copies the archive to standard output: its own error says what failed, once. */
let piping = false;

/**
 * A reader that stops reading (`| head`) makes later writes fail with EPIPE: they are dropped, not a crash. On
 * stderr too (`2>&1 >/dev/null | head -1`): an uncaught error there ended the process before a build removed its
 * temp files, and there is nowhere left to say anything.
 */
function quietOnClosedStdout(): void {
  if (process.stdout.listenerCount("error") > 0) return;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE" || piping) return;
    process.stderr.write(`layerpack: writing standard output: ${err.message}\n`);
    process.exitCode = 1;
  });
  if (process.stderr.listenerCount("error") === 0) process.stderr.on("error", () => {});
}

const defaultIo = (): Io => {
  quietOnClosedStdout();
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    cwd: process.cwd(),
    env: process.env,
    isTTY: Boolean(process.stderr.isTTY),
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    pipeOut: async (file, signal) => {
      piping = true;
      try {
        // The signal ends the copy (a reader that waits would hold it past Ctrl-C), so the caller removes the file;
        // standard output goes with it, which nothing writes to after an interruption.
        await pipeline(fs.createReadStream(file), process.stdout, { end: false, ...(signal ? { signal } : {}) });
      } finally {
        piping = false;
      }
    },
    signals: true,
  };
};

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  if (argv.some((a) => a === "--version" || a === "-v" || a === "-V")) {
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    io.out(`layerpack ${pkg.version}\n`);
    return 0;
  }
  let [name, ...args] = argv;
  if (name === "help" && args[0] !== undefined) [name, args] = [args[0], ["--help"]];
  if (name === "help" || name === "-h" || name === "--help") {
    io.out(usage());
    return 0;
  }
  if (name === undefined) {
    io.err(usage());
    return 2;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.err(`layerpack: unknown command '${name}'${didYouMean(name, COMMANDS.map((c) => c.name))}\n\n${usage()}`);
    return 2;
  }
  const command = await entry.load();
  // The synopsis, not the whole help: the one line that says what is wrong stays in sight.
  // --json asked for, even when the arguments do not parse: every outcome, usage errors too, is then a JSON line.
  const end = args.indexOf("--");
  const jsonAsked = "json" in command.options && (end < 0 ? args : args.slice(0, end)).includes("--json");
  const usageError = (message: string) => {
    if (jsonAsked) io.out(jsonLine({ type: "error", message }));
    const synopsis = command.usage.split("\n\n")[0]!;
    io.err(`layerpack ${name}: ${message}\n\nUsage: ${synopsis}\nRun 'layerpack ${name} --help' for its options.\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { ...command.options, ...globalOptions(command) } });
  } catch (err) {
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec((err as Error).message)?.[1];
    const names = Object.keys({ ...command.options, ...globalOptions(command) }).map((o) => `--${o}`);
    return usageError(unknown ? `unknown option '${unknown}'${didYouMean(unknown, names)}` : (err as Error).message);
  }
  const positionals = parsed.positionals;
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) {
    io.out(commandHelp(command));
    return 0;
  }
  for (const [a, b] of CONFLICTS) if (values[a] !== undefined && values[b] !== undefined) return usageError(`--${a} and --${b} cannot be used together`);
  // `-c FILE` is the same as a leading positional config argument.
  if (typeof values.config === "string") positionals.unshift(values.config);
  if (positionals.length > command.maxPositionals) return usageError(`too many arguments: ${positionals.slice(command.maxPositionals).join(" ")}`);
  // Ctrl-C and SIGTERM abort the command: a build removes its temp files and keeps the previous output.
  const interrupt = new AbortController();
  const stop = () => {
    interrupt.abort();
    // Whatever does not stop by itself (a registry that trickles its answer) must not keep Ctrl-C waiting: temp
    // files left by a stage that ignored the signal are collected by the next build, as after a kill.
    setTimeout(() => {
      io.err(`layerpack ${name}: interrupted\n`);
      process.exit(130);
    }, GRACE_MS).unref();
  };
  if (io.signals) for (const s of ["SIGINT", "SIGTERM"] as const) process.on(s, stop);
  const json = values.json === true;
  try {
    return await command.run({ io, values, positionals, signal: interrupt.signal });
  } catch (err) {
    if (interrupt.signal.aborted) {
      if (json) io.out(jsonLine({ type: "error", message: "interrupted" }));
      // Only the commands that write an image have temp files and a previous output to speak of.
      io.err(`layerpack ${name}: interrupted${name === "build" || name === "push" ? "; temp files removed, any previous output kept" : ""}\n`);
      // Cleaned up and said: a write still pending on a reader that does not read must not hold the exit (and
      // have the grace timer say it again).
      if (io.signals) setImmediate(() => process.exit(130));
      return 130;
    }
    // With --json every outcome is a JSON line on stdout; the text goes to stderr as well, for people.
    if (err instanceof UsageError) return usageError(err.message);
    if (json) io.out(jsonLine(failure(err)));
    io.err(formatError(err));
    return 1;
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) process.off(s, stop);
  }
}
