/**
 * Watch mode: rebuild when an input changes. Inputs are the config file and what it imports, the profile link and
 * the item it points at, the root system, and every host file `paths` copies. Changes are debounced and coalesced:
 * never two builds at once, and any number of changes during a build cause exactly one more. A failed reload or
 * build keeps the previous image (outputs are replaced atomically) and is reported as an event. The layer cache
 * makes a rebuild touch only layers whose inputs changed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { watch as chokidarWatch, type FSWatcher } from "chokidar";
import { loadResolvePlan } from "../pipeline.ts";
import { SEARCH_PLACES } from "../config/load.ts";
import type { BuildResult } from "../image/build.ts";
import { buildResolved } from "../image/multi-platform.ts";
import type { LayerCache } from "../cache/cache.ts";
import type { ImageSpec } from "../config/schema.ts";
import { hostPath } from "../store/path.ts";
import type { Closure } from "../store/types.ts";
import { SpecError } from "../errors.ts";

export type WatchEvent =
  | { type: "build-start"; reason: string[] }
  | { type: "build-done"; result: BuildResult; seconds: number }
  | { type: "build-failed"; error: unknown }
  | { type: "watching"; paths: string[] };

export interface WatchOptions {
  cwd: string;
  configPath?: string;
  env: Record<string, string | undefined>;
  output?: string | undefined;
  /** As PipelineOptions.cache: a function is called once a config is found (a watch started where there is none yet creates no cache directory). */
  cache?: LayerCache | (() => LayerCache | undefined) | undefined;
  concurrency?: number;
  /** BuildInput.cacheFrom. */
  cacheFrom?: string[] | false;
  /** Quiet period after the last change before a rebuild starts. */
  debounceMs?: number;
  onEvent: (event: WatchEvent) => void;
  /** Runs after each successful build (e.g. --exec); awaited before the next build starts. */
  afterBuild?: (result: BuildResult) => Promise<void>;
}

/** What a build read besides the spec's own paths. */
export interface WatchedInputs {
  /** Files watched as they are: the config, what it imports, the previous plan. */
  files: string[];
  /** The resolved closure, whose profile link's target is watched too. */
  closure?: Closure | undefined;
}

/** Every host path whose change can change the image (the spec's relative paths are against configDir). */
export function watchedPaths(spec: ImageSpec & Record<string, unknown>, configDir: string, { files, closure }: WatchedInputs): string[] {
  const out = new Set(files);
  if (spec.profile) out.add(path.resolve(configDir, spec.profile));
  // Every link on the way (result -> profiles/default -> default-2-link -> item): guix package retargets a middle one.
  if (spec.profile && closure) for (const link of linkChain(closure.store, path.resolve(configDir, spec.profile))) out.add(link);
  if (closure?.profile) out.add(hostPath(closure.store, closure.profile));
  if (typeof spec.rootSystem === "string") out.add(path.resolve(configDir, spec.rootSystem));
  for (const p of spec.paths) if (p.type === "file" && p.source !== undefined) out.add(path.resolve(configDir, p.source));
  // The closure's own source, where the config names one: a regenerated graph or database changes the closure.
  const source = spec.closure.file !== undefined ? path.resolve(configDir, spec.closure.file) : undefined;
  if (source !== undefined && spec.closure.from === "nix-closure-info") for (const f of ["registration", "store-paths"]) out.add(path.join(source, f));
  else if (source !== undefined) out.add(source);
  return [...out].sort();
}

/** The symlinks from `start` on, as resolveProfile follows them (absolute targets under the store's root). */
function linkChain(store: Closure["store"], start: string): string[] {
  const out: string[] = [];
  for (let p = start; out.length < 64; ) {
    let target: string;
    try {
      if (!fs.lstatSync(p).isSymbolicLink()) break;
      target = fs.readlinkSync(p);
    } catch {
      break;
    }
    out.push(p);
    p = path.isAbsolute(target) ? hostPath(store, target) : path.resolve(path.dirname(p), target);
  }
  return out;
}

const MAX_WAIT_MS = 1000;
const POLL_MS = 500;
/** How long after paths are added to the watch chokidar's first reports of what is inside them may come. */
const INITIAL_MS = 2000;
/** Ends the stamp of a symlink. */
const LINK_MARK = "\0link";

/** A cheap fingerprint of a path: enough to tell whether an event was a real change. */
function stamp(file: string): string {
  try {
    const st = fs.lstatSync(file, { bigint: true });
    const target = st.isSymbolicLink() ? `${fs.readlinkSync(file)}${LINK_MARK}` : "";
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${target}`;
  } catch {
    return "missing";
  }
}

export class Watcher {
  readonly #options: WatchOptions;
  #watcher: FSWatcher | undefined;
  #watched = new Set<string>();
  /** What each watched path looked like when it was last built from. */
  #stamps = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #pending: string[] = [];
  #running: Promise<void> | undefined;
  #abort = new AbortController();
  #discovery: FSWatcher | undefined;
  #waitingSince: number | undefined;
  #closed = false;
  #poll: NodeJS.Timeout | undefined;
  /** When the build that chose the watched paths began to read them (ns since the epoch, as file times are). */
  #readSince: bigint | undefined;
  /** When paths were last added to the watch (performance.now()), for #initialReport. */
  #addedAt: number | undefined;

  constructor(options: WatchOptions) {
    this.#options = options;
  }

  /** Builds once, then watches until close(). */
  async start(): Promise<void> {
    this.#watcher = chokidarWatch([], { ignoreInitial: true, followSymlinks: false, awaitWriteFinish: false, depth: 32 });
    this.#watcher.on("all", (event, file) => this.#changed(file, event));
    // chokidar sees nothing of a symlink that dangles on this host (a profile link into a store under another root),
    // nor of one replaced by rm + ln, and it loses a file an editor saves by renaming it to a backup and writing a
    // new one: every watched path (tens of them) is also looked at twice a second.
    this.#poll = setInterval(() => {
      for (const p of this.#watched) {
        const known = this.#stamps.get(p);
        if (known !== undefined && stamp(p) !== known) this.#changed(p);
      }
    }, POLL_MS);
    this.#poll.unref();
    this.#trigger(["start"]);
    await this.#running;
  }

  #changed(file: string, event?: string): void {
    if (this.#closed) return;
    // chokidar reports some paths (symlinks) when they are first watched; only a real change counts.
    const known = this.#stamps.get(file);
    if (known === undefined && this.#initialReport(file, event)) {
      this.#stamps.set(file, stamp(file));
      return;
    }
    if (known !== undefined) {
      const now = stamp(file);
      if (now === known) return;
      this.#stamps.set(file, now);
    }
    this.#pending.push(file);
    this.#schedule();
  }

  /**
   * A path inside a directory just added to the watch (a profile's symlinks that resolve on this host) that chokidar
   * reports as it starts watching it: an "add" within INITIAL_MS of the add, of a path unchanged since before the
   * build that named the directory began (ctime and mtime older), is no change. Any later report counts: file
   * times from another clock (NFS) or of coarse granularity (vfat) may not hide a real edit for longer than that.
   */
  #initialReport(file: string, event: string | undefined): boolean {
    if (event !== "add" && event !== "addDir") return false;
    if (this.#watched.has(file) || this.#readSince === undefined || this.#addedAt === undefined || performance.now() - this.#addedAt > INITIAL_MS) return false;
    const st = fs.lstatSync(file, { throwIfNoEntry: false, bigint: true });
    return st !== undefined && st.ctimeNs < this.#readSince && st.mtimeNs < this.#readSince;
  }

  /** (Re)starts the quiet period after which the pending changes are built. */
  #schedule(): void {
    clearTimeout(this.#timer);
    // A steady stream of changes (a long copy) must not postpone the build forever: at most a second of waiting.
    this.#waitingSince ??= performance.now();
    const quiet = this.#options.debounceMs ?? 150;
    const delay = Math.max(0, Math.min(quiet, this.#waitingSince + MAX_WAIT_MS - performance.now()));
    this.#timer = setTimeout(() => {
      const reason = [...new Set(this.#pending)].sort();
      this.#pending = [];
      this.#waitingSince = undefined;
      // Nothing left: what was pending turned out to be the last build's own input (see #build).
      if (reason.length > 0) this.#trigger(reason);
    }, delay);
  }

  #trigger(reason: string[]): void {
    if (this.#running) {
      // Coalesce: whatever changes during a build lead to one more build after it.
      this.#pending.push(...reason);
      return;
    }
    this.#running = this.#build(reason).finally(() => {
      this.#running = undefined;
      if (this.#pending.length > 0 && !this.#closed) this.#schedule();
    });
  }

  async #build(reason: string[]): Promise<void> {
    const o = this.#options;
    o.onEvent({ type: "build-start", reason });
    const started = performance.now();
    // What the inputs looked like before this build read them: a change made while it ran must cause another one.
    const readFrom = BigInt(Date.now()) * 1_000_000n;
    const before = new Map([...this.#watched].map((p) => [p, stamp(p)]));
    let watch: string[] | undefined;
    let failedIn: string | undefined;
    try {
      // A config module may write a file it then names (a generated source): what it wrote is this build's input,
      // not a change to build again for, so the other inputs are stamped once the config has loaded.
      const afterLoad = ({ path: file, dependencies: deps }: { path: string; dependencies: readonly string[] }) => {
        const modules = new Set([file, ...deps]);
        for (const p of before.keys()) if (!modules.has(p)) before.set(p, stamp(p));
      };
      const { spec, closure, plan, configDir, config, path: configFile, dependencies, previous, inputs, platforms, locate } = await loadResolvePlan({ ...o, signal: this.#abort.signal, afterLoad });
      watch = watchedPaths(config, configDir, { files: [configFile, ...dependencies, ...(previous.file ? [previous.file] : [])], closure });
      // Inputs this build learnt of only now (the first build's, new imports) are compared after it, too.
      for (const p of watch) if (!before.has(p)) before.set(p, stamp(p));
      // As build says it: an output problem of -o is the command line's, not the config's.
      const outputLabel = o.output !== undefined && o.output !== "-" ? { outputLabel: `-o ${o.output}` } : {};
      const cache = typeof o.cache === "function" ? o.cache() : o.cache;
      const result = await buildResolved({ spec, closure, plan, configDir, inputs, cache, concurrency: o.concurrency, ...outputLabel, ...(o.cacheFrom !== undefined ? { cacheFrom: o.cacheFrom } : {}), signal: this.#abort.signal, config: { path: configFile, locate } }, platforms);
      o.onEvent({ type: "build-done", result, seconds: (performance.now() - started) / 1000 });
      if (o.afterBuild && !this.#closed) await o.afterBuild(result);
    } catch (error) {
      // The file a config error is in (an import with a syntax error): fixing it must build again.
      if (error instanceof SpecError && error.file !== undefined) failedIn = path.resolve(o.cwd, error.file);
      if (!this.#closed) o.onEvent({ type: "build-failed", error });
    } finally {
      // Keep watching what we know of even when the config is broken, so fixing it triggers a build.
      if (watch) {
        this.#readSince = readFrom;
        this.#updateWatched(watch);
        // A config was found: the directory need not be watched for one any more.
        await this.#discovery?.close();
        this.#discovery = undefined;
      }
      else {
        // The config that failed is watched like any input: its stamp becomes the one this build read (a stale one
        // would count as a change made during the build, and rebuild for ever). Only when there is none does the
        // directory get a watcher of its own: a second one over the same files loses track of renames.
        const config = o.configPath !== undefined ? path.resolve(o.cwd, o.configPath) : this.#configInCwd();
        if (config !== undefined) {
          this.#updateWatched([...new Set([...this.#watched, config, ...(failedIn !== undefined && fs.existsSync(failedIn) ? [failedIn] : [])])]);
          await this.#discovery?.close();
          this.#discovery = undefined;
        } else this.#watchForConfig();
      }
      // A change seen while the build ran counts only if the path is no longer what the build read (a file the
      // config wrote while loading was reported as it was written, and read as written).
      this.#pending = this.#pending.filter((p) => !before.has(p) || stamp(p) !== before.get(p));
      for (const [p, s] of before) if (this.#stamps.has(p) && this.#stamps.get(p) !== s) this.#pending.push(p);
    }
  }

  /** The config a search would find in the directory, if one is there (the first of the search places). */
  #configInCwd(): string | undefined {
    for (const place of SEARCH_PLACES) {
      const file = path.resolve(this.#options.cwd, place);
      // package.json counts only with its "layerpack" key; a broken one is what the build just said.
      if (place === "package.json") continue;
      if (fs.existsSync(file)) return file;
    }
    return undefined;
  }

  /**
   * No config was found: watch the directory itself (not below it) for one to appear at a searched place. The
   * main watcher cannot: files that do not exist yet are not reported.
   */
  #watchForConfig(): void {
    if (this.#discovery || this.#closed) return;
    const names = new Set<string>(SEARCH_PLACES);
    this.#discovery = chokidarWatch(this.#options.cwd, { ignoreInitial: true, depth: 0 });
    this.#discovery.on("all", (_event, file) => {
      if (!names.has(path.basename(file)) || path.dirname(file) !== path.resolve(this.#options.cwd)) return;
      this.#changed(file);
    });
  }

  #updateWatched(paths: string[]): void {
    if (!this.#watcher || this.#closed) return;
    const next = new Set(paths);
    const added = [...next].filter((p) => !this.#watched.has(p));
    const removed = [...this.#watched].filter((p) => !next.has(p));
    if (removed.length > 0) this.#watcher.unwatch(removed);
    if (added.length > 0) {
      this.#addedAt = performance.now();
      this.#watcher.add(added);
    }
    this.#watched = next;
    this.#stamps = new Map([...next].map((p) => [p, stamp(p)]));
    if (added.length > 0 || removed.length > 0) this.#options.onEvent({ type: "watching", paths: [...next].sort() });
  }

  /**
   * Stops watching; a build in progress is aborted (its partial files removed) and awaited. True when it stopped
   * such a build, so a Ctrl-C mid-build can be told from one while waiting.
   */
  async close(): Promise<boolean> {
    const interrupted = this.#running !== undefined && !this.#closed;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    this.#abort.abort();
    await this.#running;
    await this.#watcher?.close();
    await this.#discovery?.close();
    return interrupted;
  }
}
