/**
 * Bad input through the real command line: exit status 1, one clear message naming what is wrong, no stack
 * trace, and no output file (nor temp files) left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { layerpack } from "./cli.ts";

let dir: string;
let ex: ExampleStore;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-errors-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

function config(body: string, out = "./out/image.tar"): string {
  fs.rmSync(path.join(dir, "out"), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "out"), { recursive: true });
  const file = path.join(dir, "image.yaml");
  fs.writeFileSync(file, `name: broken\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\noutput: { path: ${out} }\n${body}\n`);
  return file;
}

function expectFailure(args: string[], message: RegExp) {
  const r = layerpack(args, { cwd: dir });
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.status).toBe(1);
  const out = path.join(dir, "out");
  expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
}

describe("bad input gives a clear error and no output", () => {
  it("no config in the directory", () => {
    const empty = fs.mkdtempSync(path.join(dir, "empty-"));
    const r = layerpack(["build"], { cwd: empty });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no config/i);
  });

  it("malformed YAML, with line:column", () => {
    const file = path.join(dir, "bad.yaml");
    fs.writeFileSync(file, "name: x\noutput: { path: a.tar\n");
    expectFailure(["build", file], /bad\.yaml:\d+:\d+/);
  });

  it("unknown key and wrong type, with their key paths and positions", () => {
    expectFailure(["build", config("profile: ./profile\nlayers: { max: 300 }\nentrypont: bin/hello")], /image\.yaml:\d+:\d+: entrypont/);
    expectFailure(["build", config("profile: ./profile\nlayers: { max: 300 }")], /image\.yaml:\d+:\d+: layers\.max: .*at most 127.*overlay/);
  });

  it("profile missing, or outside the store", () => {
    expectFailure(["build", config("profile: ./nothing-here")], /nothing-here/);
    // Profile links are read inside the store root, so the outside target is made to exist there.
    fs.mkdirSync(path.join(dir, "store/etc"));
    fs.symlinkSync("/etc", path.join(dir, "outside"));
    expectFailure(["build", config("profile: ./outside")], /outside.*(not|outside).*store/i);
  });

  it("a host file the config names fails at its key's line:column", () => {
    expectFailure(["build", config("profile: ./nothing-here")], /^layerpack: image\.yaml:5:10: profile: .*nothing-here does not exist/);
    expectFailure(["build", config("profile: ./profile\nrootSystem: ./no-root")], /^layerpack: image\.yaml:6:13: rootSystem: .*no-root: no such directory/);
    expectFailure(["build", config("profile: ./profile\nrootSystem: { dir: ./no-root }")], /^layerpack: image\.yaml:6:20: rootSystem\.dir: /);
    const source = "profile: ./profile\npaths:\n  - { type: file, path: /etc/motd, source: ./motd }";
    expectFailure(["build", config(source)], /^layerpack: image\.yaml:7:44: paths\[0\]\.source: .*motd: no such file/);
    fs.mkdirSync(path.join(dir, "motd"));
    expectFailure(["build", config(source)], /^layerpack: image\.yaml:7:44: paths\[0\]\.source: .*motd is not a regular file/);
    fs.rmdirSync(path.join(dir, "motd"));
    const graph = path.join(dir, "graph.yaml");
    fs.writeFileSync(graph, "name: broken\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure:\n  from: guix-graph\n  file: ./no-graph\n");
    expectFailure(["build", graph, "-o", "./out/image.tar"], /^layerpack: graph\.yaml:6:9: closure\.file: .*no-graph/);
  });

  it("-o with a compressed file's suffix is refused before anything is written: the archive is a plain tar", () => {
    expectFailure(["build", config("profile: ./profile"), "-o", "./image.tar.gz"], /^layerpack: -o \.\/image\.tar\.gz: ends in \.gz, but a docker-archive is written as a plain tar .*name it \.tar/);
    expect(fs.existsSync(path.join(dir, "image.tar.gz"))).toBe(false);
  });

  it("a push to a registry that does not answer fails before any layer is built", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((r) => server.close(r));
    const r = layerpack(["push", config("profile: ./profile"), "--to", `127.0.0.1:${port}/x:1`, "--no-cache"], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^layerpack: cannot reach registry 127\.0\.0\.1:\d+ \(GET \/v2\/\): .*ECONNREFUSED/m);
    expect(r.stderr).not.toMatch(/^layer \d/m);
  });

  it("entrypoint that does not exist in the image: at its line, the path said once", () => {
    const profile = fs.readlinkSync(path.join(dir, "profile"));
    const r = layerpack(["build", config("profile: ./profile\nentrypoint: bin/nope")], { cwd: dir });
    expect(r.stderr).toBe(`layerpack: image.yaml:6:13: entrypoint: ${profile}/bin/nope does not exist in the image (bin/nope is relative to the profile)\n`);
    expect(r.status).toBe(1);
  });

  it("an entrypoint with '..' fails plan and check as it fails build, at its line:column", () => {
    const file = config("profile: ./profile\nentrypoint: ../../x");
    for (const command of ["plan", "check", "build"]) expectFailure([command, file], /^layerpack: image\.yaml:6:13: entrypoint: must not contain '\.\.'\n$/);
  });

  it("a customisation entry the plan refuses fails plan and build at its line:column, the key said once", () => {
    const twice = config("profile: ./profile\npaths:\n  - { type: directory, path: /etc/x }\n  - { type: directory, path: /etc/x }");
    for (const command of ["plan", "build"]) expectFailure([command, twice], /^layerpack: image\.yaml:8:5: paths\[1\]: \/etc\/x is already defined by paths\[0\] \(\/etc\/x\); keep one of them\n$/);
    expectFailure(["plan", config("profile: ./profile\npaths: [{ type: directory, path: / }]")], /^layerpack: image\.yaml:6:9: paths\[0\]: cannot replace the image root "\/"; name a path below it\n$/);
    expectFailure(["plan", config('profile: ./profile\nsymlinks: ["/bin=bin", "/bin/sh=bin/sh"]')], /^layerpack: image\.yaml:6:24: symlinks\[1\]: \/bin\/sh needs \/bin to be a directory, but symlinks\[0\] "\/bin=bin" makes it a symlink to /);
  });

  it("a layers.max too small for a root system fails plan at its line:column", () => {
    fs.mkdirSync(path.join(dir, "rootfs-small"), { recursive: true });
    expectFailure(["plan", config("profile: ./profile\nrootSystem: ./rootfs-small\nlayers: { max: 2 }")], /^layerpack: image\.yaml:7:16: layers\.max: 2 is too small with a rootSystem: /);
  });

  it("--json: the error event of a config error has file, keyPath, line and column (README, JSON events)", () => {
    const twice = "profile: ./profile\npaths:\n  - { type: directory, path: /etc/x }\n  - { type: directory, path: /etc/x }";
    const cases = [
      { command: "plan", body: twice, where: { keyPath: "paths[1]", line: 8, column: 5 } },
      { command: "build", body: twice, where: { keyPath: "paths[1]", line: 8, column: 5 } },
      { command: "plan", body: "profile: ./profile\nentrypoint: ../../x", where: { keyPath: "entrypoint", line: 6, column: 13 } },
    ];
    for (const { command, body, where } of cases) {
      const r = layerpack([command, "--json", config(body)], { cwd: dir });
      expect(r.status, r.stderr).toBe(1);
      const event = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
      expect(event).toMatchObject({ type: "error", file: path.join(dir, "image.yaml"), ...where });
      expect(event.message).toMatch(new RegExp(`^image\\.yaml:${where.line}:${where.column}: ${where.keyPath.replace(/[[\]]/g, "\\$&")}: `));
    }
  });

  it("a link whose target is not in the image, and a perms glob matching nothing: warnings at their lines", () => {
    const r = layerpack(["build", config('profile: ./profile\nsymlinks: ["/bin=bni", "/etc/mtab=/proc/self/mounts"]\nperms: [{ path: /data, mode: "700" }]')], { cwd: dir });
    const profile = fs.readlinkSync(path.join(dir, "profile"));
    expect(r.stderr).toContain(`layerpack: warning: image.yaml:6:12: symlinks[0]: /bin -> ${profile}/bni: not in the image, so the link dangles; check the target\n`);
    expect(r.stderr).toContain(`layerpack: warning: image.yaml:7:9: perms[0]: /data matches nothing in the image`);
    expect(r.stderr).not.toContain("mtab"); // filled in when the container runs
    expect(r.status).toBe(0);
  });

  it("symlink spec that escapes with ..", () => {
    expectFailure(["build", config('profile: ./profile\nsymlinks: ["/bin=../etc"]')], /symlinks\[0\].*\.\./);
  });

  it("output directory missing", () => {
    expectFailure(["build", config("profile: ./profile", "./missing-dir/image.tar")], /^layerpack: image\.yaml:4:17: output\.path: the directory \S*missing-dir does not exist; create it first\n$/);
  });

  it("a reference to an item missing from the store", () => {
    const root = path.join(dir, "broken-store");
    fs.cpSync(path.join(dir, "store"), root, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", root]);
    fs.rmSync(path.join(root, ex.glibc), { recursive: true });
    // From a references graph (as Guix's #:references-graphs writes it) and from a scan, which sees the shell's
    // library links pointing at the missing item.
    const graph = path.join(dir, "graph");
    fs.writeFileSync(graph, `${ex.hello}\n\n1\n${ex.shell}\n${ex.shell}\n\n1\n${ex.glibc}\n${ex.glibc}\n\n0\n`);
    for (const from of ["{ from: guix-graph, file: ./graph }", "{ from: scan }"]) {
      const file = config(`roots: ["${ex.hello}"]`);
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("root: ./store", "root: ./broken-store").replace("{ from: scan }", from));
      expectFailure(["build", file], new RegExp(`refers to ${ex.glibc}.*missing from the store`));
    }
  });

  it("a socket inside a store item", async () => {
    const root = path.join(dir, "socket-store");
    fs.cpSync(path.join(dir, "store"), root, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", root]);
    const server = net.createServer();
    await new Promise<void>((res) => server.listen(path.join(root, ex.hello, "sock"), res));
    try {
      const file = config(`roots: ["${ex.hello}"]`);
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("root: ./store", "root: ./socket-store"));
      expectFailure(["build", file], /sock is a socket/);
    } finally {
      server.close();
    }
  });

  it("disk full while writing: a clear error, and neither output nor temp files left", () => {
    const cfg = config("profile: ./profile\ncompression: none");
    const small = path.join(dir, "out");
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small]).status === 0;
    if (!mounted) {
      if (process.env.CI) throw new Error("cannot mount a small tmpfs to simulate a full disk (CI runs as root)");
      console.warn("skipping the disk-full test: mounting a tmpfs needs root");
      return;
    }
    try {
      expectFailure(["build", cfg], /no space left on device/);
    } finally {
      spawnSync("umount", [small]);
    }
  });
});

describe("a bad plan file given to diff, check or --previous", () => {
  /** A plan file written by plan --write, then edited by `edit`; its name. */
  function planFile(name: string, edit: (text: string) => string): string {
    const file = config("profile: ./profile");
    expect(layerpack(["plan", file, "--write", path.join(dir, "good.plan.yaml")], { cwd: dir }).status).toBe(0);
    fs.writeFileSync(path.join(dir, name), edit(fs.readFileSync(path.join(dir, "good.plan.yaml"), "utf8")));
    return name;
  }

  it("is refused at the bad value's line:column with a plain message", () => {
    const bad = planFile("bad.plan.yaml", (t) => t.replace(/^ {4}size: \d+$/m, "    size: 1e400"));
    const line = fs.readFileSync(path.join(dir, bad), "utf8").split("\n").indexOf("    size: 1e400") + 1;
    const said = `bad\\.plan\\.yaml:${line}:11: not a valid layer plan: layers\\[0\\]\\.size: must be a finite number, not Infinity\n`;
    expectFailure(["diff", bad, "good.plan.yaml"], new RegExp(`^layerpack: ${said}$`));
    expectFailure(["plan", config("profile: ./profile"), "--previous", bad], new RegExp(`^layerpack: --previous: ${said}$`));
  });

  it("listing one store item in two layers is refused, naming the item, both layers and the lines", () => {
    // The second layer's item replaced by the first layer's.
    const items = (t: string) => [...t.matchAll(/^ {6}- path: (\S+)$/gm)].map((m) => m[1]!);
    const twice = planFile("twice.plan.yaml", (t) => t.replace(`- path: ${items(t)[1]}\n`, `- path: ${items(t)[0]}\n`));
    const lines = fs.readFileSync(path.join(dir, twice), "utf8").split("\n");
    const item = items(lines.join("\n"))[0]!;
    const [first, again] = lines.flatMap((l, i) => (l === `      - path: ${item}` ? [i + 1] : []));
    const said = `twice\\.plan\\.yaml:${again}:9: not a valid layer plan: layers\\[1\\]\\.items\\[0\\]: ${item} is in layers\\[0\\] too \\(line ${first}\\); a store item lies in exactly one layer\n`;
    expectFailure(["diff", twice, "good.plan.yaml"], new RegExp(`^layerpack: ${said}$`));
    expectFailure(["plan", config("profile: ./profile"), "--previous", twice], new RegExp(`^layerpack: --previous: ${said}$`));
  });
});

describe("an unusable cache directory is a warning, never a hang", () => {
  it("under /proc, where Node's recursive mkdir never returns", () => {
    const r = layerpack(["build", config("profile: ./profile")], { cwd: dir, env: { LAYERPACK_CACHE_DIR: "/proc/layerpack-nope" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^layerpack: warning: cannot use the cache directory \/proc\/layerpack-nope: .*; building without a cache/m);
  });

  it("holding a file where one of its directories belongs", () => {
    const cache = path.join(dir, "odd-cache");
    fs.mkdirSync(cache, { recursive: true });
    fs.writeFileSync(path.join(cache, "layers"), "");
    const r = layerpack(["build", config("profile: ./profile")], { cwd: dir, env: { LAYERPACK_CACHE_DIR: cache } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^layerpack: warning: cannot use the cache directory .*odd-cache: .*ENOTDIR.*; building without a cache/m);
  });
});

describe("push --to names a registry", () => {
  it("oci:DIR and other transports are refused, saying what writes them; docker://HOST/NAME:TAG is the registry reference", () => {
    const cfg = config("profile: ./profile");
    const r = layerpack(["push", cfg, "--to", "oci:out-oci"], { cwd: dir });
    expect([r.status, r.stderr.split("\n")[0]]).toEqual([2, "layerpack push: --to oci:out-oci: push sends to a registry (--to REGISTRY/NAME[:TAG], or docker://REGISTRY/NAME[:TAG]), not to oci:; to write the image to a file or directory, run build with output.format docker-archive, oci-archive or oci-layout and -o PATH"]);
    // A registry host that happens to be called oci, with a port, is a registry.
    const host = layerpack(["push", cfg, "--to", "oci:1/x:1", "-q"], { cwd: dir, env: { LAYERPACK_REGISTRY_TIMEOUT: "5" } });
    expect(host.stderr).not.toMatch(/not to oci:/);
    const docker = layerpack(["push", cfg, "--to", "docker://127.0.0.1:1/x:1", "-q"], { cwd: dir, env: { LAYERPACK_REGISTRY_TIMEOUT: "5" } });
    expect(docker.status).toBe(1);
    expect(docker.stderr).toMatch(/127\.0\.0\.1:1/);
    expect(docker.stderr).not.toMatch(/not a registry host/);
  });

  it("a tag in --to beside another --tag is refused: the --tag would be dropped", () => {
    const r = layerpack(["push", config("profile: ./profile"), "--to", "127.0.0.1:1/x:a", "--tag", "b"], { cwd: dir });
    expect([r.status, r.stderr.split("\n")[0]]).toEqual([2, "layerpack push: --to 127.0.0.1:1/x:a names the tag a, and --tag b another; give the tags in one place (--to without a tag and --tag for each, or one --to per push)"]);
    const from = layerpack(["push", "--from", "x.tar", "--to", "127.0.0.1:1/x:a", "--tag", "b"], { cwd: dir });
    expect(from.status).toBe(2);
  });
});

describe("a command that finds no config leaves nothing behind", () => {
  it.each([["build"], ["push", "--to", "127.0.0.1:1/x"]])("%s where there is no config creates no cache directory", (...args) => {
    const empty = fs.mkdtempSync(path.join(dir, "no-config-"));
    const cache = path.join(empty, "cache");
    const r = layerpack(args, { cwd: empty, env: { LAYERPACK_CACHE_DIR: cache } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^layerpack: no config found in /);
    expect(fs.existsSync(cache)).toBe(false);
  });
});

describe("words from outside cannot forge output", () => {
  it("a registry's error message in a warning is printed on one line, its control characters escaped", async () => {
    // The registry runs in another process: the command line below blocks this one.
    const hostile = "\\u001b]0;PWNED\\u0007\\u001b[2J\\u001b[32mlayerpack: build succeeded\\nfake line\\u009b31m";
    const script = `require("http").createServer((q, s) => { if (q.url === "/v2/") { s.writeHead(200); return s.end("{}"); }
      s.writeHead(404, { "content-type": "application/json" }); s.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "${hostile}" }] })); })
      .listen(0, "127.0.0.1", function () { console.log(this.address().port); });`;
    const server = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = await new Promise<string>((resolve) => server.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())));
      const r = layerpack(["build", config("profile: ./profile"), "--cache-from", `docker://127.0.0.1:${port}/x:y`], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      const warning = r.stderr.split("\n").find((l) => l.startsWith("layerpack: warning: cache source"));
      expect(warning).toContain("\\x1b]0;PWNED\\x07");
      expect(warning).toContain("build succeeded\\x0afake line");
      expect(r.stderr).not.toMatch(/[\u001b\u0007\u009b]/);
      expect(r.stderr).not.toMatch(/^fake line/m);
    } finally {
      server.kill();
    }
  });
});
