/**
 * User-facing failures. The CLI prints `message` (and the `cause` chain) without a stack trace for these;
 * anything else is a bug and is printed with its stack.
 */
import { printable } from "./util/format.ts";

export class LayerpackError extends Error {
  override name = "LayerpackError";
  /**
   * The config key whose host file failed (`["rootSystem"]`, `["paths", 2, "source"]`), set by `aboutConfigKey`
   * where a stage after loading reads what the config names; the pipeline then gives the key's file:line:column.
   */
  configKey: readonly (string | number)[] | undefined;
}

/** Marks `err` as being about the config key `key` (see LayerpackError.configKey). */
export function aboutConfigKey<E extends LayerpackError>(err: E, key: readonly (string | number)[]): E {
  err.configKey = key;
  return err;
}

/** Runs `f`; a LayerpackError it throws is marked as being about `key`. */
export function atConfigKey<T>(key: readonly (string | number)[], f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof LayerpackError ? aboutConfigKey(e, key) : e;
  }
}

/** The config could not be found, read, parsed or validated. */
export class SpecError extends LayerpackError {
  override name = "SpecError";
  /** Config file the error is about, when there is one. */
  readonly file: string | undefined;
  /** Key path inside the config, e.g. `layers.max` or `paths[2].mode`. */
  readonly keyPath: string | undefined;
  /** 1-based line and column in the config file (YAML/JSON), when known. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(
    message: string,
    where: { file?: string; keyPath?: string; line?: number; column?: number } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.file = where.file;
    this.keyPath = where.keyPath;
    this.line = where.line;
    this.column = where.column;
  }
}

/** The store or closure is not what the spec says (missing item, unreadable file, socket, ...). */
export class StoreError extends LayerpackError {
  override name = "StoreError";
}

/** The spec and closure cannot make a valid plan (entrypoint missing, escaping symlink, ...). */
export class PlanError extends LayerpackError {
  override name = "PlanError";
}

/** Writing the image failed (output directory missing, disk full, ...). */
export class BuildError extends LayerpackError {
  override name = "BuildError";
}

/** A registry could not be reached, refused the credentials, or answered with an error. */
export class RegistryError extends LayerpackError {
  override name = "RegistryError";
}

/** A bad command-line argument: printed with the command's usage, exit status 2. */
export class UsageError extends LayerpackError {
  override name = "UsageError";
}

/**
 * A cause that only says again what the message says: undici's "fetch failed" (its own cause holds the reason,
 * shown next), or a missing file's ENOENT below a message that already says it does not exist.
 */
function restates(message: string, cause: Error): boolean {
  if (cause.message === "fetch failed") return true;
  return (cause as NodeJS.ErrnoException).code === "ENOENT" && /\b(does not exist|no such file)/.test(message);
}

/** What the CLI prints for a failure: the message and its informative causes; a stack only for a bug. */
export function formatError(err: unknown): string {
  if (!(err instanceof LayerpackError)) return printable(`layerpack: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  let text = `layerpack: ${err.message}\n`;
  // Causes that add information (an errno message not already quoted) are shown below the message.
  // A SpecError's cause is the validator's (already in the message), except for a stage's error it located.
  let cause = err instanceof SpecError ? (err.cause instanceof LayerpackError ? err.cause.cause : undefined) : err.cause;
  while (cause instanceof Error) {
    if (!err.message.includes(cause.message) && !restates(err.message, cause)) text += `  caused by: ${cause.message}\n`;
    cause = cause.cause;
  }
  // Messages quote what images, registries and stores hold: no escape sequence of theirs reaches the terminal.
  return printable(text);
}
