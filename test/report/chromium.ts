/**
 * Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3, replies
 * on fd 4, each a JSON message ended by NUL), with nothing but node: no puppeteer, no port to collide with. Collects
 * every console error, uncaught exception, log entry of level error (CSP violations among them) and JavaScript
 * dialog (an injected alert()) of the page.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { findTool } from "../fixtures/tools.ts";

export const CHROMIUM_PACKAGE = "chromium";
export const chromiumPath = (): string | undefined => findTool("chromium") ?? findTool("chromium-browser");

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  method: string;
}

export interface PageProblem {
  kind: "console" | "exception" | "log" | "dialog";
  text: string;
}

export class Browser {
  private readonly proc: ChildProcess;
  private readonly input: Writable;
  private readonly profile: string;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: { method: string; resolve: (p: Record<string, unknown>) => void }[] = [];
  private session = "";
  readonly problems: PageProblem[] = [];
  stderr = "";

  private constructor(proc: ChildProcess, profile: string) {
    this.proc = proc;
    this.profile = profile;
    this.input = proc.stdio[3] as Writable;
    let buffer = Buffer.alloc(0);
    (proc.stdio[4] as Readable).on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (let end = buffer.indexOf(0); end >= 0; end = buffer.indexOf(0)) {
        this.receive(JSON.parse(buffer.subarray(0, end).toString("utf8")) as Record<string, unknown>);
        buffer = buffer.subarray(end + 1);
      }
    });
    proc.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    proc.on("exit", () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited during ${p.method}: ${this.stderr}`));
      this.pending.clear();
    });
  }

  /** Starts chromium and opens one page (a viewport of width x height CSS pixels). */
  static async launch(width = 1280, height = 900): Promise<Browser> {
    const exe = chromiumPath();
    if (exe === undefined) throw new Error(`chromium not found (Debian package ${CHROMIUM_PACKAGE})`);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-chromium-"));
    const args = [
      "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", `--user-data-dir=${profile}`,
      "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars", "about:blank",
    ];
    const proc = spawn(exe, args, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
    const b = new Browser(proc, profile);
    const { targetId } = (await b.send("Target.createTarget", { url: "about:blank" })) as { targetId: string };
    b.session = ((await b.send("Target.attachToTarget", { targetId, flatten: true })) as { sessionId: string }).sessionId;
    for (const domain of ["Page", "Runtime", "Log"]) await b.page(`${domain}.enable`);
    await b.page("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    return b;
  }

  private receive(msg: Record<string, unknown>): void {
    if (typeof msg.id === "number") {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      const error = msg.error as { message: string } | undefined;
      if (error) p?.reject(new Error(`${p.method}: ${error.message}`));
      else p?.resolve((msg.result ?? {}) as Record<string, unknown>);
      return;
    }
    const method = msg.method as string;
    const params = (msg.params ?? {}) as Record<string, any>;
    if (method === "Runtime.consoleAPICalled" && (params.type === "error" || params.type === "assert" || params.type === "warning")) {
      this.problems.push({ kind: "console", text: params.args.map((a: { value?: unknown; description?: string }) => String(a.value ?? a.description)).join(" ") });
    } else if (method === "Runtime.exceptionThrown") {
      this.problems.push({ kind: "exception", text: params.exceptionDetails.exception?.description ?? params.exceptionDetails.text });
    } else if (method === "Log.entryAdded" && (params.entry.level === "error" || params.entry.level === "warning")) {
      this.problems.push({ kind: "log", text: `${params.entry.source}: ${params.entry.text}` });
    } else if (method === "Page.javascriptDialogOpening") {
      this.problems.push({ kind: "dialog", text: params.message });
      void this.page("Page.handleJavaScriptDialog", { accept: true });
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.method === method) this.waiters.splice(i, 1)[0]!.resolve(params);
    }
  }

  private send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** A command to the page's session. */
  page(method: string, params: Record<string, unknown> = {}): Promise<Record<string, any>> {
    return this.send(method, params, this.session);
  }

  private event(method: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push({ method, resolve }));
  }

  /** Opens a URL and waits for its load event. */
  async open(url: string): Promise<void> {
    const loaded = this.event("Page.loadEventFired");
    const r = await this.page("Page.navigate", { url });
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page (awaiting a promise) and returns its value. */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  async mouse(type: "mouseMoved" | "mousePressed" | "mouseReleased", x: number, y: number): Promise<void> {
    await this.page("Input.dispatchMouseEvent", { type, x, y, button: type === "mouseMoved" ? "none" : "left", clickCount: type === "mouseMoved" ? 0 : 1 });
  }

  /** A PNG of the whole page (up to maxHeight CSS pixels tall). */
  async screenshot(maxHeight = 2400): Promise<Buffer> {
    const m = await this.page("Page.getLayoutMetrics");
    const size = m.cssContentSize as { width: number; height: number };
    const clip = { x: 0, y: 0, width: Math.ceil(size.width), height: Math.min(maxHeight, Math.ceil(size.height)), scale: 1 };
    const r = await this.page("Page.captureScreenshot", { format: "png", clip, captureBeyondViewport: true });
    return Buffer.from(r.data as string, "base64");
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => (this.proc.exitCode !== null ? resolve() : this.proc.once("exit", () => resolve())));
    try {
      await Promise.race([this.send("Browser.close"), exited]);
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
