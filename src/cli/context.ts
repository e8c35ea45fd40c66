/** What every command gets: its parsed arguments, output streams and the environment. */
import { LayerpackError, UsageError } from "../errors.ts";
import { defaultCacheDir, LayerCache } from "../cache/cache.ts";
import { loadResolvePlan } from "../pipeline.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { oneLine } from "../util/format.ts";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  cwd: string;
  env: Record<string, string | undefined>;
  /** Whether stderr is a terminal (progress display). */
  isTTY: boolean;
  /** Whether stdout is a terminal (no binary output there). */
  stdoutIsTTY?: boolean;
  /** Copies a file to standard output (`build -o -`). */
  pipeOut: (file: string, signal?: AbortSignal) => Promise<void>;
  /** SIGINT/SIGTERM abort the command (the process's own command line, not an embedding caller). */
  signals?: boolean;
}

/** Prints a warning on one line: warnings repeat registries' and files' words, which must not forge output. */
export function warn(io: Pick<Io, "err">, message: string): void {
  io.err(`layerpack: warning: ${oneLine(message)}\n`);
}

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

export interface CommandContext {
  io: Io;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Aborted on SIGINT/SIGTERM (the command line's own process only). */
  signal?: AbortSignal;
}

export interface Command {
  name: string;
  /** Usage line(s) and command-specific options, shown by `layerpack <command> --help`. */
  usage: string;
  options: OptionSpec;
  /** How many positional arguments the command takes at most (the config counts as one). */
  maxPositionals: number;
  /** False for commands that read no config (inspect, diff, cache): no -c, and no config paragraph in the help. */
  readsConfig?: boolean;
  /** Returns the exit status: 0 success, 1 failure the user can fix, 2 usage error. */
  run(ctx: CommandContext): Promise<number>;
}


export { formatBytes } from "../util/format.ts";

/** A bad command-line argument: printed like any user error. */
export { UsageError };

/** Options shared by every command that builds: where the cache is, or that there is none. */
export const cacheOptions = {
  "cache-dir": { type: "string" },
  "no-cache": { type: "boolean" },
  jobs: { type: "string", short: "j" },
  "cache-from": { type: "string", multiple: true },
  "no-cache-from": { type: "boolean" },
} as const satisfies OptionSpec;

/** BuildInput.cacheFrom from --cache-from (repeatable) and --no-cache-from (no sources at all, not even the config's). */
export function cacheSourcesOption(values: CommandContext["values"]): string[] | false {
  if (values["no-cache-from"]) {
    if (Array.isArray(values["cache-from"]) && values["cache-from"].length > 0) throw new UsageError("give --cache-from or --no-cache-from, not both");
    return false;
  }
  return Array.isArray(values["cache-from"]) ? values["cache-from"].filter((v): v is string => typeof v === "string") : [];
}

/** The cache directory the options name: --cache-dir, else the default (see defaultCacheDir). */
export function cacheDirFromOptions(io: Io, values: CommandContext["values"]): string {
  return typeof values["cache-dir"] === "string" ? path.resolve(io.cwd, values["cache-dir"]) : defaultCacheDir(io.env);
}

function cacheFromOptions(io: Io, values: CommandContext["values"]): LayerCache | undefined {
  if (values["no-cache"]) return undefined;
  let dir: string;
  try {
    dir = cacheDirFromOptions(io, values);
  } catch (cause) {
    // No home directory to keep the default one in: the same warning, before any work.
    warn(io, `cannot use a cache: ${(cause as Error).message}; building without a cache`);
    return undefined;
  }
  try {
    return new LayerCache(dir);
  } catch (cause) {
    // A cache only saves time: a build without one is still right, so this is a warning, before any work.
    const why = (cause as NodeJS.ErrnoException).code === "EACCES" || (cause as NodeJS.ErrnoException).code === "EROFS" ? "it is not writable" : (cause as Error).message;
    warn(io, `cannot use the cache directory ${dir}: ${why}; building without a cache (set --cache-dir DIR or LAYERPACK_CACHE_DIR)`);
    return undefined;
  }
}

/**
 * cacheFromOptions, opened when first asked for: the pipeline asks once it has found and loaded the config, so a
 * command run where there is none leaves no cache directory behind.
 */
export function lazyCacheFromOptions(io: Io, values: CommandContext["values"]): () => LayerCache | undefined {
  let opened: { cache: LayerCache | undefined } | undefined;
  return () => (opened ??= { cache: cacheFromOptions(io, values) }).cache;
}

/** `--tag T` (repeatable): the tags given replace the config's tag and tags; each must be a valid tag. */
export const tagOption = { tag: { type: "string", multiple: true } } as const satisfies OptionSpec;

export function withTags<S extends { tag?: string | undefined; tags?: string[] | undefined }>(spec: S, values: CommandContext["values"]): S {
  const given = values.tag as string[] | undefined;
  if (!given || given.length === 0) return spec;
  for (const t of given) if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(t)) throw new UsageError(`--tag ${JSON.stringify(t)}: not a valid tag (letters, digits, _ . -, at most 128)`);
  return { ...spec, tag: given[0], tags: given };
}

/** Load, resolve and plan: the stages every command that reads a config runs. */
export function loadAndPlan(io: Io, configArg: string | undefined, overrides: { output?: string; cache?: LayerCache | (() => LayerCache | undefined); previous?: string; signal?: AbortSignal; env?: Io["env"] } = {}) {
  return loadResolvePlan({ cwd: io.cwd, configPath: configArg, env: io.env, onWarning: (m) => warn(io, m), ...overrides });
}

/** A file a command writes (`report -o`, `plan --write`), absolute; its directory must exist, checked before any work. */
export function outputFileArg(flag: string, value: string, cwd: string): string {
  const file = path.resolve(cwd, value);
  const dir = path.dirname(file);
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  // Not a usage error: the command line is right, the file system is not ready (exit 1, as build's own check).
  if (st === undefined) throw new LayerpackError(`${flag} ${value}: the directory ${dir} does not exist; create it first`);
  if (!st.isDirectory()) throw new LayerpackError(`${flag} ${value}: ${dir} is not a directory`);
  return file;
}
