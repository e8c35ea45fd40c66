/**
 * The thread a TS/JS config module is loaded in (see importConfigModule): a config that loops or blocks holds this
 * thread, not the one that handles Ctrl-C, SIGTERM and the load timeout, so those can always end it. What the
 * module exports is sent back as plain data; anything that is not (a function, a class instance) is named by key.
 */
import { parentPort } from "node:worker_threads";
import path from "node:path";
import { importDefineOnly, importFresh, syntaxErrorLocation, thrownAt } from "./import.ts";
import type { WorkerReply } from "./import.ts";
import { NotData, plainData } from "./plain-data.ts";

importDefineOnly();

// Stripping types announces itself as experimental in every thread that does it; that is ours, not the user's.
const emitWarning = process.emitWarning;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning).startsWith("stripTypeScriptTypes is an experimental feature")) return;
  (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
}) as typeof process.emitWarning;

let replied = false;

/** Replies once what the config printed has been handed on: the thread is ended as soon as the reply arrives. */
async function reply(message: WorkerReply): Promise<void> {
  if (replied) return;
  replied = true;
  for (const out of [process.stdout, process.stderr]) await new Promise<void>((resolve) => out.write("", () => resolve()));
  parentPort!.postMessage(message);
}

/** The reply for an error the config threw, with where it was thrown. */
function failed(e: unknown): Promise<void> {
  const err = e instanceof Error ? e : new Error(String(e));
  const syntax = syntaxErrorLocation(err);
  const at = syntax ?? thrownAt(err);
  return reply({ kind: "error", name: err.name, message: err.message, stack: err.stack ?? "", ...(at ? { at, syntax: syntax !== undefined } : {}) });
}

// Thrown from a timer or a rejected promise while the module's top-level await waits: the config's error all the
// same (Node would otherwise end the thread through process.exit, which is refused below).
process.on("uncaughtException", (e) => void failed(e));
process.on("unhandledRejection", (e) => void failed(e));

async function load(file: string): Promise<void> {
  const exit = process.exit;
  process.exit = ((code?: number | string | null) => {
    throw new Error(`${path.basename(file)} called process.exit(${code ?? ""}) while loading; a config module must only export its settings`);
  }) as typeof process.exit;
  try {
    const { exports, dependencies } = await importFresh(file);
    const ns = exports as Record<string, unknown>;
    if (!("default" in ns)) await reply({ kind: "missing", dependencies });
    else if (typeof ns.default === "function") await reply({ kind: "function", dependencies });
    else if (ns.default !== null && typeof ns.default === "object" && typeof (ns.default as { then?: unknown }).then === "function") await reply({ kind: "promise", dependencies });
    else {
      try {
        await reply({ kind: "value", data: plainData(ns.default), dependencies });
      } catch (e) {
        if (!(e instanceof NotData)) throw e;
        replied = false;
        await reply({ kind: "not-data", path: e.path as (string | number)[], keyPath: e.keyPath, message: e.message, dependencies });
      }
    }
  } catch (e) {
    replied = false;
    await failed(e);
  } finally {
    process.exit = exit;
  }
}

// The file comes in a message: the thread may be started before the config is found. (No top-level await here: a
// config's await that never settles is then reported as the config's, not as this file's.)
parentPort!.once("message", ({ file }: { file: string }) => void load(file));
