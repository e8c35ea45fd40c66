/**
 * A counting semaphore for compression blocks in flight. One is shared by every compressor of the process, so
 * layers built at the same time (build.ts runs several layer jobs at once) share the cores instead of each
 * starting as many blocks as there are cores. Waiters are served first come, first served.
 */
import * as os from "node:os";

export class Limiter {
  #size: number;
  #busy = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = checkJobs(size);
  }

  /** How many blocks may be compressed at once. */
  get size(): number {
    return this.#size;
  }

  /** Changes the limit; blocks already running keep their slot. */
  resize(size: number): void {
    this.#size = checkJobs(size);
    this.#wake();
  }

  /** Resolves once a slot is free, taking it; `release()` gives it back. */
  acquire(): Promise<void> {
    if (this.#busy < this.#size && this.#waiting.length === 0) {
      this.#busy++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#waiting.push(() => {
        this.#busy++;
        resolve();
      });
      this.#wake();
    });
  }

  release(): void {
    this.#busy--;
    this.#wake();
  }

  #wake(): void {
    while (this.#busy < this.#size && this.#waiting.length > 0) this.#waiting.shift()!();
  }
}

export function checkJobs(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`compression jobs must be a positive integer, not ${n}`);
  return n;
}

/** The number of cores this process may use: the default for both the shared limit and a stream's jobs. */
export const defaultJobs = (): number => Math.max(1, os.availableParallelism());

let shared: Limiter | undefined;

/** The process-wide limit on compression blocks in flight (default: the number of cores). */
export function sharedLimiter(): Limiter {
  return (shared ??= new Limiter(defaultJobs()));
}

/** Sets the process-wide limit (e.g. from a `--jobs` option). Output bytes never depend on it. */
export function setCompressionJobs(n: number): void {
  sharedLimiter().resize(n);
}
