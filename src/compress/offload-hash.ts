/**
 * SHA-256 of a byte stream computed on a worker thread, so the thread that reads and tars the files does not also
 * spend ~0.55 s per GiB hashing (the layer sink's diff_id; with compression, the stored blob's digest too). The
 * bytes are not copied: they live in SharedArrayBuffer-backed buffers (`takeShared`, pooled process-wide), and
 * `update()` resolves once the worker has hashed them, after which the caller may reuse the buffer. One worker
 * serves every stream of the process (each stream has its own hash state there); it is started on first use and
 * never keeps the process alive unless a request is pending.
 */
import { Worker } from "node:worker_threads";

/** The worker's code: it runs as CommonJS or as a module (an eval'd worker follows the process's --input-type), so
 * it takes Node's modules from process.getBuiltinModule, which both have. */
const WORKER = `
const { parentPort } = process.getBuiltinModule("node:worker_threads");
const { createHash } = process.getBuiltinModule("node:crypto");
const hashes = new Map();
parentPort.on("message", (m) => {
  try {
    if (m.op === "update") {
      let h = hashes.get(m.id);
      if (!h) hashes.set(m.id, (h = createHash("sha256")));
      h.update(new Uint8Array(m.buffer, m.offset, m.length));
      parentPort.postMessage({ id: m.id, seq: m.seq });
    } else if (m.op === "digest") {
      const h = hashes.get(m.id) ?? createHash("sha256");
      hashes.delete(m.id);
      parentPort.postMessage({ id: m.id, seq: m.seq, digest: h.digest("hex") });
    } else if (m.op === "drop") {
      hashes.delete(m.id);
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, seq: m.seq, error: String((err && err.message) || err) });
  }
});
`;

interface Reply {
  id: number;
  seq: number;
  digest?: string;
  error?: string;
}

class HashWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #failed: Error | undefined;
  #nextId = 1;

  constructor() {
    this.#worker = new Worker(WORKER, { eval: true, name: "layerpack sha256" });
    this.#worker.on("message", (r: Reply) => {
      const key = `${r.id}:${r.seq}`;
      const p = this.#pending.get(key);
      this.#pending.delete(key);
      if (this.#pending.size === 0) this.#worker.unref();
      if (r.error !== undefined) p?.reject(new Error(`sha256 worker: ${r.error}`));
      else p?.resolve(r);
    });
    const fail = (err: Error) => {
      this.#failed ??= new Error(`sha256 worker stopped: ${err.message}`, { cause: err });
      for (const p of this.#pending.values()) p.reject(this.#failed);
      this.#pending.clear();
    };
    this.#worker.on("error", fail);
    this.#worker.on("exit", (code) => fail(new Error(`exit code ${code}`)));
    // After the listeners: adding a "message" listener refs the worker's port again, and a process whose sinks
    // failed before any request was made then never exited (the CLI hang of the reverted commit).
    this.#worker.unref();
  }

  newId(): number {
    return this.#nextId++;
  }

  request(message: { op: "update" | "digest"; id: number; seq: number; buffer?: SharedArrayBuffer; offset?: number; length?: number }): Promise<Reply> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref(); // a pending answer keeps the process alive
      this.#pending.set(`${message.id}:${message.seq}`, { resolve, reject });
      this.#worker.postMessage(message);
    });
  }

  drop(id: number): void {
    if (!this.#failed) this.#worker.postMessage({ op: "drop", id });
  }
}

let shared: HashWorker | undefined;

const spareShared = new Map<number, Buffer[]>();

/**
 * A buffer whose memory a worker can read (what `OffloadedSha256.update` takes), from a process-wide pool: give it
 * back with `releaseShared` once nothing uses it. The pool matters: a SharedArrayBuffer's memory is freed only when
 * every thread that saw it has collected its handle, and the worker, allocating little, rarely collects; fresh
 * buffers per layer would pile up hundreds of MB. Reused ones cost nothing more than the most ever in use at once.
 */
export function takeShared(size: number): Buffer {
  return spareShared.get(size)?.pop() ?? Buffer.from(new SharedArrayBuffer(size));
}

/** Returns a buffer from `takeShared` to the pool. */
export function releaseShared(buf: Buffer): void {
  const size = buf.buffer.byteLength;
  let list = spareShared.get(size);
  if (!list) spareShared.set(size, (list = []));
  list.push(Buffer.from(buf.buffer as SharedArrayBuffer));
}

export class OffloadedSha256 {
  readonly #worker = (shared ??= new HashWorker());
  readonly #id = this.#worker.newId();
  #seq = 0;
  #done = false;

  /**
   * Adds `data` (a view of a SharedArrayBuffer, see takeShared) to the hash. Updates are hashed in call order;
   * the promise resolves once the worker is done with `data`, which must not change until then.
   */
  update(data: Buffer): Promise<void> {
    if (!(data.buffer instanceof SharedArrayBuffer)) throw new TypeError("OffloadedSha256.update needs a SharedArrayBuffer-backed buffer");
    return this.#worker
      .request({ op: "update", id: this.#id, seq: this.#seq++, buffer: data.buffer, offset: data.byteOffset, length: data.length })
      .then(() => undefined);
  }

  /** The hex digest of everything added (after every earlier update). Ends the hash. */
  async digest(): Promise<string> {
    this.#done = true;
    const r = await this.#worker.request({ op: "digest", id: this.#id, seq: this.#seq++ });
    return r.digest!;
  }

  /** Forgets the hash state (after a failure); harmless after digest(). */
  dispose(): void {
    if (!this.#done) this.#worker.drop(this.#id);
    this.#done = true;
  }
}
