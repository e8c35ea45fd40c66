/**
 * `layerpack watch` as a user runs it: real file edits, debounced and coalesced rebuilds of only the layers whose
 * inputs changed, a broken edit that keeps the last good image, and a clean exit on Ctrl-C.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import { makeExampleStore } from "../../examples/make-store.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
const sha = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

interface Event {
  type: string;
  reason?: string[];
  message?: string;
  time?: string;
  layers?: { digest: string }[];
  rebuilt?: number;
  reused?: number;
  upToDate?: boolean;
}

describe("layerpack watch", () => {
  let dir: string;
  let child: ChildProcess;
  const events: Event[] = [];
  let waiters: (() => void)[] = [];

  /** Resolves when `count` events of `type` have been seen in total. */
  function waitFor(type: string, count: number): Promise<Event> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${type} #${count}; saw ${JSON.stringify(events.map((e) => e.type))}`)), 20_000);
      const check = () => {
        const seen = events.filter((e) => e.type === type);
        if (seen.length >= count) {
          clearTimeout(timer);
          resolve(seen[count - 1]!);
          return true;
        }
        return false;
      };
      const waiter = () => {
        if (!check()) waiters.push(waiter);
      };
      waiter();
    });
  }

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-"));
    makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    fs.writeFileSync(path.join(dir, "motd"), "first\n");
    fs.writeFileSync(path.join(dir, "image.yaml"), config());
    child = spawn(process.execPath, [BIN, "watch", "image.yaml", "--json"], {
      cwd: dir,
      env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        events.push(JSON.parse(buffered.slice(0, nl)) as Event);
        buffered = buffered.slice(nl + 1);
        const pending = waiters;
        waiters = [];
        pending.forEach((w) => w());
      }
    });
  });
  afterAll(() => {
    child?.kill("SIGKILL");
    execFileSync("chmod", ["-R", "u+w", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function config(extra = ""): string {
    return `name: watched
tag: t
store: { dir: /gnu/store, root: ./store }
profile: ./profile
closure: { from: scan }
symlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"]
entrypoint: bin/hello
paths:
  - { path: /etc/motd, type: file, source: ./motd }
output: { path: ./watched.tar }
${extra}`;
  }

  it("builds, rebuilds only what changed, coalesces bursts, survives a broken edit, and exits cleanly", async () => {
    const first = await waitFor("build-done", 1);
    expect(first).toMatchObject({ rebuilt: 5, reused: 0 });
    // Give the file watcher a moment to register the inputs it just learnt of, as a person would take anyway.
    await waitFor("watching", 1);
    await new Promise((r) => setTimeout(r, 500));
    const out = path.join(dir, "watched.tar");

    // Editing a file that `paths` copies rebuilds the customisation layer alone.
    fs.writeFileSync(path.join(dir, "motd"), "second\n");
    const second = await waitFor("build-done", 2);
    expect(second).toMatchObject({ rebuilt: 1, reused: 4 });
    const changed = second.layers!.map((l, i) => l.digest !== first.layers![i]!.digest);
    expect(changed).toEqual([false, false, false, false, true]);

    // A burst of edits is one rebuild.
    for (const text of ["a\n", "b\n", "c\n"]) fs.writeFileSync(path.join(dir, "motd"), text);
    const third = await waitFor("build-done", 3);
    expect(third.rebuilt).toBe(1);
    expect(events.filter((e) => e.type === "build-start")).toHaveLength(3);

    // Saved as vim saves (the file renamed to a backup, a new one written, the backup removed), twice: each save is
    // a rebuild (the file watcher lost such a file after the first).
    for (const [n, text] of [[4, "vim\n"], [5, "third\n"]] as const) {
      await new Promise((r) => setTimeout(r, 700)); // as a person saves again: after chokidar settled on the new file
      execFileSync("sh", ["-c", 'mv motd motd~ && printf "$1" > motd && rm motd~', "sh", text], { cwd: dir });
      expect(await waitFor("build-done", n)).toMatchObject({ rebuilt: 1 });
    }
    const good = sha(out);

    // A broken config keeps the last good image and reports the error with its position.
    fs.writeFileSync(path.join(dir, "image.yaml"), config("bogus: 1\n"));
    const failed = await waitFor("build-failed", 1);
    expect(failed.message).toMatch(/image\.yaml:\d+:\d+: bogus/);
    expect(sha(out)).toBe(good);

    // Fixing it builds again; the image is unchanged, so the output is left alone.
    fs.writeFileSync(path.join(dir, "image.yaml"), config("env: { GREETING: hi }\n"));
    const fixed = await waitFor("build-done", 6);
    expect(fixed).toMatchObject({ rebuilt: 0, reused: 5 });
    expect(events.filter((e) => e.type === "build-start")).toHaveLength(7);

    const x = path.join(dir, "x");
    fs.mkdirSync(x);
    execFileSync("tar", ["-xf", out, "-C", x]);
    const manifest = JSON.parse(fs.readFileSync(path.join(x, "manifest.json"), "utf8"))[0];
    const custom = path.join(dir, "custom");
    fs.mkdirSync(custom);
    execFileSync("tar", ["-xf", path.join(x, manifest.Layers.at(-1)), "-C", custom]);
    expect(fs.readFileSync(path.join(custom, "etc/motd"), "utf8")).toBe("third\n");
    expect(JSON.parse(fs.readFileSync(path.join(x, manifest.Config), "utf8")).config.Env).toEqual(["GREETING=hi"]);

    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("."))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, "cache", "tmp"))).toEqual([]);
  });
});

/** Stops a watch with Ctrl-C, waits for it to exit, and removes its directory (the store in it is read-only). */
async function stopAndRemove(child: ChildProcess, exited: Promise<unknown>, dir: string): Promise<void> {
  child.kill("SIGINT");
  await exited;
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

describe("layerpack watch without a config yet", () => {
  it("reports that none was found, builds as soon as one appears, fails once on a broken edit of it and builds every later edit", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-empty-"));
    makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    const child = spawn(process.execPath, [BIN, "watch", "--json"], {
      cwd: dir,
      env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const seen: Event[] = [];
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((r) => child.on("exit", r));
    const next = (type: string) =>
      new Promise<Event>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type}; saw ${JSON.stringify(seen.map((e) => e.type))}; stderr: ${stderr}`)), 20_000);
        const poll = setInterval(() => {
          const e = seen.find((x) => x.type === type);
          if (e) {
            clearTimeout(timer);
            clearInterval(poll);
            resolve(e);
          }
        }, 20);
      });
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl; (nl = buffered.indexOf("\n")) >= 0; buffered = buffered.slice(nl + 1)) seen.push(JSON.parse(buffered.slice(0, nl)) as Event);
    });
    try {
      expect((await next("build-failed")).message).toMatch(/no config found/);
      await new Promise((r) => setTimeout(r, 500));
      // Nothing to build yet, so no cache directory either.
      expect(fs.existsSync(path.join(dir, "cache"))).toBe(false);
      fs.writeFileSync(
        path.join(dir, "image.config.yaml"),
        'name: late\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\noutput: { path: ./late.tar }\n',
      );
      expect((await next("build-done")).rebuilt).toBe(5);
      expect(fs.existsSync(path.join(dir, "late.tar"))).toBe(true);
      // The config it found breaks (written in place): one failure, not a rebuild loop.
      const good = fs.readFileSync(path.join(dir, "image.config.yaml"), "utf8");
      const count = (type: string) => seen.filter((e) => e.type === type).length;
      // In two writes, as a shell's `{ cat a; echo b; } > file` does: the watcher may report only the first.
      fs.writeFileSync(path.join(dir, "image.config.yaml"), good);
      await new Promise((r) => setTimeout(r, 10));
      fs.appendFileSync(path.join(dir, "image.config.yaml"), "layers: { max: 0 }\n");
      await next("build-failed");
      await new Promise((r) => setTimeout(r, 1500));
      expect(count("build-failed")).toBe(2);
      // Then every edit made as editors save (a new file renamed over it) is built once.
      for (const [i, tag] of ["one", "two"].entries()) {
        fs.writeFileSync(path.join(dir, ".edit"), `${good}tag: ${tag}\n`);
        fs.renameSync(path.join(dir, ".edit"), path.join(dir, "image.config.yaml"));
        const deadline = Date.now() + 20_000;
        while (count("build-done") < i + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(count("build-done"), `edit ${tag}: ${JSON.stringify(seen.map((e) => e.type))}`).toBe(i + 2);
      }
      expect(count("build-failed")).toBe(2);
    } finally {
      await stopAndRemove(child, exited, dir);
    }
  });
});

describe("layerpack watch and the profile link", () => {
  it("rebuilds when the link is replaced by rm + ln, though it dangles on this host (the store lies under ./store); --exec's output stays off the JSON lines, and a command it leaves running does not hold the next build", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-link-"));
    const { hello } = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "result") });
    fs.writeFileSync(path.join(dir, "image.yaml"), "name: linked\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./result\nclosure: { from: scan }\noutput: { path: ./linked.tar }\n");
    const child = spawn(process.execPath, [BIN, "watch", "image.yaml", "--json", "--exec", "sleep 20 & echo EXEC $LAYERPACK_OUTPUT"], { cwd: dir, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const events = () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event);
    const until = async (ok: () => boolean, what: string) => {
      for (let t = 0; !ok(); t += 50) {
        if (t > 20_000) throw new Error(`no ${what}; saw ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(() => events().some((e) => e.type === "watching"), "watching");
      await new Promise((r) => setTimeout(r, 500));
      fs.unlinkSync(path.join(dir, "result"));
      fs.symlinkSync(hello, path.join(dir, "result"));
      await until(() => events().filter((e) => e.type === "build-done").length === 2, "second build");
      expect(events().filter((e) => e.type === "build-start")[1]!.reason).toEqual([path.join(dir, "result")]);
      await until(() => err.split("\n").filter((l) => l.startsWith("EXEC ")).length === 2, "two --exec runs on stderr");
      expect(err).toContain(`EXEC ${path.join(dir, "linked.tar")}\n`);
    } finally {
      child.kill("SIGKILL");
      execFileSync("chmod", ["-R", "u+w", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("layerpack watch and a profile whose links resolve on this host", () => {
  it("builds once at start (chokidar's first report of the links inside is no change), and again when a file in the profile changes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-host-"));
    const item = path.join(dir, "store", `${"a".repeat(32)}-prof`);
    fs.mkdirSync(path.join(item, "bin"), { recursive: true });
    fs.writeFileSync(path.join(item, "bin/hello"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    fs.symlinkSync("/bin/sh", path.join(item, "bin/sh"));
    fs.symlinkSync(item, path.join(dir, "profile"));
    fs.writeFileSync(path.join(dir, "image.yaml"), `name: host\nstore: ${path.join(dir, "store")}\nprofile: ./profile\nclosure: { from: scan }\n`);
    const child = spawn(process.execPath, [BIN, "watch", "image.yaml", "--json", "--exec", "echo EXEC"], { cwd: dir, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const starts = () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event).filter((e) => e.type === "build-start");
    const until = async (ok: () => boolean, what: string) => {
      for (let t = 0; !ok(); t += 50) {
        if (t > 20_000) throw new Error(`no ${what}; saw ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      await until(() => err.includes("EXEC"), "first --exec");
      // Longer than the debounce and two polls: a second build would have started by now.
      await new Promise((r) => setTimeout(r, 1500));
      expect(starts().map((e) => e.reason)).toEqual([["start"]]);
      expect(err.match(/^EXEC$/gm)).toHaveLength(1);
      fs.appendFileSync(path.join(item, "bin/hello"), "echo again\n");
      await until(() => starts().length === 2, "a build after the change");
      expect(starts()[1]!.reason).toEqual([path.join(item, "bin/hello")]);
    } finally {
      await stopAndRemove(child, exited, dir);
    }
  });
});

describe("layerpack watch stopped", () => {
  let dir: string;
  const good = "name: stop\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\npaths: [{ path: /big, type: file, source: ./big }]\noutput: { path: ./stop.tar }\n";
  const watch = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, "watch", "image.yaml", "-j", "1", ...args], { cwd: dir, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") }, stdio: ["ignore", "pipe", "pipe"] });
    const out = { stdout: "", stderr: "" };
    child.stdout!.on("data", (d: Buffer) => (out.stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const until = async (what: () => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    };
    return { child, out, exited, until };
  };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-stop-"));
    makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    // 128 MiB of random bytes take seconds to gzip on one core: long enough to interrupt.
    const big = fs.openSync(path.join(dir, "big"), "w");
    for (let i = 0; i < 128; i++) fs.writeSync(big, randomBytes(1 << 20));
    fs.closeSync(big);
  });
  afterAll(() => {
    execFileSync("chmod", ["-R", "u+w", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a failure before any good build says nothing was written; Ctrl-C while waiting exits 0", async () => {
    fs.writeFileSync(path.join(dir, "image.yaml"), `${good}layers: { max: 0 }\n`);
    const w = watch([]);
    try {
      await w.until(() => w.out.stderr.includes("Waiting for changes"));
      expect(w.out.stderr).toMatch(/layers\.max: .*\nlayerpack: build failed; nothing was written\. Waiting for changes\.\.\.\n$/);
      w.child.kill("SIGINT");
      expect(await w.exited).toBe(0);
    } finally {
      w.child.kill("SIGKILL");
    }
  });

  it("-o into a directory that does not exist is the command line's fault, said as build says it", async () => {
    fs.writeFileSync(path.join(dir, "image.yaml"), good);
    const w = watch(["-o", "nodir/x.tar"]);
    try {
      await w.until(() => w.out.stderr.includes("Waiting for changes"));
      expect(w.out.stderr).toMatch(/^layerpack: -o nodir\/x\.tar: the directory .*nodir does not exist; create it first\nlayerpack: build failed; nothing was written\. Waiting for changes\.\.\.\n$/m);
      w.child.kill("SIGINT");
      expect(await w.exited).toBe(0);
    } finally {
      w.child.kill("SIGKILL");
    }
  });

  it("Ctrl-C during a build exits 130, says the build stopped, and leaves nothing behind", async () => {
    fs.writeFileSync(path.join(dir, "image.yaml"), good);
    const w = watch(["--json"]);
    try {
      await w.until(() => w.out.stdout.includes('"build-start"'));
      w.child.kill("SIGINT");
      expect(await w.exited).toBe(130);
      expect(w.out.stdout).toMatch(/\{"type":"error","message":"interrupted: the build in progress stopped; nothing was written","time":"[^"]+"\}\n$/);
      expect(w.out.stdout).not.toContain("build-done");
      expect(fs.existsSync(path.join(dir, "stop.tar"))).toBe(false);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith("."))).toEqual([]);
    } finally {
      w.child.kill("SIGKILL");
    }
  });
});

describe("layerpack watch and a config that writes a file it names", () => {
  it("builds once per edit of the config, not for ever (what the config writes while loading is the build's input); a broken import is watched until fixed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-self-"));
    makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    const config = (note: string) =>
      `import * as fs from "node:fs";\nfs.writeFileSync("motd", "generated\\n");\n// ${note}\n` +
      `export default { name: "self", store: { dir: "/gnu/store", root: "./store" }, profile: "./profile", closure: { from: "scan" }, paths: [{ path: "/etc/motd", type: "file", source: "./motd" }] };\n`;
    fs.writeFileSync(path.join(dir, "image.config.mjs"), config("first"));
    const child = spawn(process.execPath, [BIN, "watch", "--json"], { cwd: dir, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") }, stdio: ["ignore", "pipe", "pipe"] });
    const seen: Event[] = [];
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl; (nl = buffered.indexOf("\n")) >= 0; buffered = buffered.slice(nl + 1)) seen.push(JSON.parse(buffered.slice(0, nl)) as Event);
    });
    const exited = new Promise((r) => child.on("exit", r));
    const count = (type: string) => seen.filter((e) => e.type === type).length;
    const until = async (type: string, n: number) => {
      const deadline = Date.now() + 20_000;
      while (count(type) < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(count(type), JSON.stringify(seen.map((e) => e.type))).toBeGreaterThanOrEqual(n);
    };
    try {
      await until("watching", 1);
      await new Promise((r) => setTimeout(r, 500));
      fs.writeFileSync(path.join(dir, "image.config.mjs"), config("second"));
      await until("build-done", 2);
      await new Promise((r) => setTimeout(r, 2000)); // four polls: a loop would have built again by now
      expect(count("build-start")).toBe(2);
      // An edit that imports a module with a syntax error fails at it; fixing that module (not the config) builds.
      fs.writeFileSync(path.join(dir, "helper.mjs"), "export const note = ;\n");
      fs.writeFileSync(path.join(dir, "image.config.mjs"), `import { note } from "./helper.mjs";\n${config("third")}`);
      await until("build-failed", 1);
      expect(seen.find((e) => e.type === "build-failed")?.message).toMatch(/^helper\.mjs:1:\d+: syntax error/);
      await new Promise((r) => setTimeout(r, 500));
      fs.writeFileSync(path.join(dir, "helper.mjs"), 'export const note = "fixed";\n');
      await until("build-done", 3);
    } finally {
      await stopAndRemove(child, exited, dir);
    }
  });
});

describe("layerpack watch stopped while --exec runs", () => {
  it("stops the command and what it started, at once, and says so in the JSON events", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-watch-exec-"));
    makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
    fs.writeFileSync(path.join(dir, "image.yaml"), "name: ex\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n");
    // A marker in the command line to find its processes by; sh runs sleep as a child of its own.
    const child = spawn(process.execPath, [BIN, "watch", "image.yaml", "--json", "--exec", "sleep 31.25; true"], { cwd: dir, env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const alive = () => spawnSync("pgrep", ["-f", "^sleep 31.25"]).status === 0;
    try {
      const deadline = Date.now() + 20_000;
      while (!alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(alive()).toBe(true);
      const t = performance.now();
      child.kill("SIGTERM");
      expect(await exited).toBe(130);
      expect(performance.now() - t).toBeLessThan(2000);
      expect(JSON.parse(out.trimEnd().split("\n").at(-1)!)).toMatchObject({ type: "error", message: expect.stringMatching(/^interrupted: the --exec command was stopped/) });
      await new Promise((r) => setTimeout(r, 100));
      expect(alive()).toBe(false);
    } finally {
      child.kill("SIGKILL");
      spawnSync("pkill", ["-f", "^sleep 31.25"]);
      execFileSync("chmod", ["-R", "u+w", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
