/**
 * How a build reports itself: a live status line on a terminal, plain lines otherwise, JSON lines with --json.
 * Library code only emits events; this turns them into text.
 */
import type { BuildEvent, BuildResult } from "../image/build.ts";
import { formatBytes, type Io } from "./context.ts";
import { buildDone, jsonLine, type JsonEvent } from "./events.ts";

export type ProgressMode = "tty" | "plain" | "json" | "quiet";

export function progressMode(io: Io, values: { json?: unknown; quiet?: unknown }): ProgressMode {
  if (values.json) return "json";
  if (values.quiet) return "quiet";
  return io.isTTY ? "tty" : "plain";
}

export class Progress {
  readonly #io: Io;
  readonly #mode: ProgressMode;
  readonly #started = performance.now();
  /**
   * The layers done, by index and digest: a layer reused and then rebuilt (its cached copy damaged: the same
   * digest) counts once, and each platform's layers of a multi-platform build count (their indexes repeat).
   */
  readonly #done = new Set<string>();
  #count = 0;
  #bytes = 0;
  #lastDraw = 0;

  /** `stdoutTaken`: standard output carries the image (`-o -`), so JSON events go to stderr. */
  constructor(io: Io, mode: ProgressMode, options: { stdoutTaken?: boolean } = {}) {
    this.#io = io;
    this.#mode = mode;
    this.#stdoutTaken = options.stdoutTaken ?? false;
  }

  readonly #stdoutTaken: boolean;

  /** The first event of a JSON build (watch sends its own, with the reason). */
  start(): void {
    if (this.#mode === "json") this.#json(jsonLine({ type: "build-start", reason: [] }));
  }

  #json(line: string): void {
    (this.#stdoutTaken ? this.#io.err : this.#io.out)(line);
  }

  event = (e: BuildEvent): void => {
    if (this.#mode === "json") {
      this.#json(jsonLine(e as JsonEvent));
      return;
    }
    if (e.type === "progress") {
      this.#bytes += e.bytes;
      if (this.#mode === "tty" && performance.now() - this.#lastDraw > 100) this.#draw();
      return;
    }
    if (e.type === "blob") {
      if (this.#mode === "plain" && e.status !== "uploading") this.#io.err(`blob ${e.digest.slice(7, 19)} ${formatBytes(e.size)} ${e.status === "exists" ? "already in the registry" : e.status}\n`);
      return;
    }
    if (e.type !== "layer-done") return;
    this.#done.add(`${e.index}:${e.blob.digest}`);
    this.#count = e.count;
    if (this.#mode === "plain") {
      const how = e.cached ? "reused" : "built";
      this.#io.err(`layer ${e.index + 1}/${e.count} ${how}: ${e.blob.digest.slice(7, 19)} ${formatBytes(e.blob.size)}\n`);
    } else if (this.#mode === "tty") {
      this.#draw();
    }
  };

  #draw(): void {
    this.#lastDraw = performance.now();
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#bytes / seconds : 0;
    this.#io.err(`\r\x1b[Klayers ${this.#done.size}/${this.#count || "?"}  ${formatBytes(this.#bytes)}  ${formatBytes(rate)}/s`);
  }

  /** The one summary line every mode but json and quiet ends with. */
  summary(result: BuildResult): void {
    const pathOut = !this.#stdoutTaken;
    if (this.#mode === "tty") this.#io.err("\r\x1b[K");
    const seconds = ((performance.now() - this.#started) / 1000).toFixed(2);
    const s = result.stats;
    if (this.#mode === "json") {
      this.#json(jsonLine(buildDone(result, Number(seconds))));
      return;
    }
    if (this.#mode === "quiet") {
      if (!pathOut) return;
      this.#io.out(`${result.push ? result.push.references.map((r) => `${r}@${result.push!.digest}`).join("\n") : result.output}\n`);
      return;
    }
    const push = result.push;
    if (push) {
      this.#io.err(
        `pushed ${push.references.join(", ")}: ${push.uploaded} blobs uploaded (${formatBytes(push.uploadedBytes)}), ${push.mounted} mounted, ${push.existing} already there; ${s.rebuilt} ${s.rebuilt === 1 ? "layer" : "layers"} built, ${s.reused} reused, ${seconds} s; manifest ${push.digest}\n`,
      );
      this.#io.out(`${push.references.map((r) => `${r}@${push.digest}`).join("\n")}\n`);
      return;
    }
    const written = s.upToDate ? "output up to date" : `${formatBytes(s.bytesWritten)} of new layers`;
    this.#io.err(
      `built ${(result.repoTags.length > 0 ? result.repoTags : [result.repoTag]).join(", ")}: ${s.rebuilt} ${s.rebuilt === 1 ? "layer" : "layers"} built, ${s.reused} reused, ${written}, ${seconds} s; ${result.platforms ? `index ${result.imageId.slice(7, 19)} of ${result.platforms.length} platform images` : `image id ${result.imageId.slice(7, 19)}`}\n`,
    );
    if (pathOut) this.#io.out(`${result.output}\n`);
  }
}
