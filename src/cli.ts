/**
 * The command line: finds the command, parses its arguments, runs it, prints errors. The only module that decides
 * exit codes; each command lives in src/cli/<name>.ts and is registered below.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { formatError, type Command, type Io } from "./cli/context.ts";
import { buildCommand } from "./cli/build.ts";
import { planCommand } from "./cli/plan.ts";
import { checkCommand } from "./cli/check.ts";
import { diffCommand } from "./cli/diff.ts";
import { cacheCommand } from "./cli/cache.ts";
import { watchCommand } from "./cli/watch.ts";
import { pushCommand } from "./cli/push.ts";
import { inspectCommand } from "./cli/inspect.ts";

const COMMANDS: Command[] = [buildCommand, planCommand, watchCommand, cacheCommand, checkCommand, diffCommand, pushCommand, inspectCommand];

const COMMON = `Config: [config] or -c FILE; without it, image.config.{ts,mts,js,mjs,yaml,yml,json}, .layerpackrc*
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
});

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
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
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`layerpack: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
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
  try {
    return await command.run({ io, values, positionals });
  } catch (err) {
    io.err(formatError(err));
    return 1;
  }
}
