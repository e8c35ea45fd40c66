/**
 * Outputs never destroy inputs or devices: an output path that is the config, a file it imports, a paths[].source,
 * a device, FIFO or directory, or that lies in the store, the root system or the cache is refused before any work,
 * naming both roles — and the thing it named is left exactly as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { removeExample, setUpExample } from "./example-dir.ts";
import { layerpack } from "./cli.ts";

let dir: string;
let storeItem: string;

beforeAll(() => {
  const { dir: d, ex } = setUpExample("layerpack-guard-");
  dir = d;
  storeItem = path.join(ex.storeRoot, "gnu/store", fs.readdirSync(path.join(ex.storeRoot, "gnu/store"))[0]!);
  fs.writeFileSync(path.join(dir, "motd"), "hello\n");
  fs.mkdirSync(path.join(dir, "rootfs/etc"), { recursive: true });
  fs.writeFileSync(path.join(dir, "rootfs/etc/hostname"), "box\n");
});
afterAll(() => removeExample(dir));

/** Writes the config (YAML, or TS when `ts`) and returns its path. */
function config(output: string, extra = "", name = "image.yaml"): string {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    `name: guarded\nstore: { dir: /gnu/store, root: ./store }\nprofile: ./profile\nclosure: { from: scan }\n` +
      `paths: [{ path: /etc/motd, type: file, mode: "644", source: ./motd }]\n${extra}output: ${output}\n`,
  );
  return file;
}

function refused(file: string, message: RegExp, protect: string, cacheDir?: string) {
  refusedBy(["build", file, ...(cacheDir ? ["--cache-dir", cacheDir] : [])], message, protect);
}

/** `args` fail with `message` and exit 1, leave `protect` exactly as it was and no temp file. */
function refusedBy(args: string[], message: RegExp, protect: string) {
  const before = fs.lstatSync(protect, { bigint: true });
  const content = before.isFile() ? fs.readFileSync(protect) : undefined;
  const r = layerpack(args, { cwd: dir });
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(r.status).toBe(1);
  const after = fs.lstatSync(protect, { bigint: true });
  expect([after.ino, after.mode, after.size, after.mtimeNs]).toEqual([before.ino, before.mode, before.size, before.mtimeNs]);
  if (content) expect(fs.readFileSync(protect)).toEqual(content);
  expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
}

describe("outputs never destroy inputs", () => {
  it("the config itself", () => {
    const file = config("{ path: ./image.yaml }");
    refused(file, /output\.path .*image\.yaml is the config \(.*image\.yaml\); writing the image there would destroy it/, file);
  });

  it("package.json holding the config", () => {
    const pkg = path.join(dir, "package.json");
    fs.writeFileSync(pkg, JSON.stringify({ name: "app", layerpack: { name: "p", store: { dir: "/gnu/store", root: "./store" }, profile: "./profile", closure: { from: "scan" }, output: { path: "./package.json" } } }));
    try {
      refused(pkg, /output\.path .*package\.json is the config/, pkg);
    } finally {
      fs.rmSync(pkg);
    }
  });

  it("a file a TS config imports, reached through a symlinked directory", () => {
    fs.mkdirSync(path.join(dir, "lib"), { recursive: true });
    fs.writeFileSync(path.join(dir, "lib/base.ts"), 'export const store = { dir: "/gnu/store", root: "./store" };\n');
    fs.symlinkSync("lib", path.join(dir, "lib-link"));
    const file = path.join(dir, "image.config.ts");
    fs.writeFileSync(
      file,
      'import { store } from "./lib/base.ts";\nexport default { name: "ts", store, profile: "./profile", closure: { from: "scan" }, output: { path: "./lib-link/base.ts" } };\n',
    );
    try {
      refused(file, /output\.path .*lib-link\/base\.ts is a file the config reads \(an import or the previous plan\)/, path.join(dir, "lib/base.ts"));
    } finally {
      fs.rmSync(file);
    }
  });

  it("a paths[].source, also as a hard link", () => {
    refused(config("{ path: ./motd }"), /output\.path .*motd is paths\[0\]\.source/, path.join(dir, "motd"));
    // Given on the command line, the output is named as it was given.
    refusedBy(["build", config("{ path: ./out.tar }"), "-o", "motd"], /^layerpack: -o motd is paths\[0\]\.source/m, path.join(dir, "motd"));
    fs.linkSync(path.join(dir, "motd"), path.join(dir, "motd-link"));
    refused(config("{ path: ./motd-link }"), /output\.path .*motd-link is paths\[0\]\.source/, path.join(dir, "motd"));
    fs.rmSync(path.join(dir, "motd-link"));
  });

  it("anything in the store or the root system", () => {
    const inStore = path.join(storeItem, "image.tar");
    refused(config(`{ path: ${inStore} }`), /output\.path .*image\.tar is inside the store \(.*gnu\/store\)/, storeItem);
    refused(config("{ path: ./rootfs/etc/hostname }", "rootSystem: ./rootfs\nlayers: { max: 10 }\n"), /is inside the rootSystem directory/, path.join(dir, "rootfs/etc/hostname"));
  });

  it("the profile link (its target dangles on the host under store.root) and the committed plan file", () => {
    const file = config("{ path: ./out.tar }");
    const profile = path.join(dir, "profile");
    expect(fs.lstatSync(profile).isSymbolicLink()).toBe(true);
    refusedBy(["build", file, "-o", "profile"], /^layerpack: -o profile is the profile link \(.*profile\); writing the image there would destroy it/m, profile);
    refusedBy(["report", file, "-o", "./profile"], /-o \.\/profile is the profile link/, profile);
    expect(layerpack(["plan", file, "--write", "image.plan.yaml"], { cwd: dir }).status).toBe(0);
    const plan = path.join(dir, "image.plan.yaml");
    refusedBy(["build", file, "-o", "image.plan.yaml"], /-o image\.plan\.yaml is the committed plan file \(image\.plan\.yaml, which check reads\)/, plan);
    // plan --write keeps it up to date.
    expect(layerpack(["plan", file, "--write", "image.plan.yaml"], { cwd: dir }).status).toBe(0);
    fs.rmSync(plan);
  });

  it("the layer cache", () => {
    const cacheDir = path.join(dir, "cache");
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(path.join(cacheDir, "image.tar"), "not an image");
    refused(config("{ path: ./cache/image.tar }"), /output\.path .*cache\/image\.tar is inside the layer cache/, path.join(cacheDir, "image.tar"), cacheDir);
  });

  it("an OCI layout directory holding the config", () => {
    const file = config("{ format: oci-layout, path: . }");
    refused(file, /output\.path .* is a directory that holds no OCI layout|holds the config/, file);
  });
});

describe("outputs never replace devices, FIFOs or directories", () => {
  it("a device", () => {
    refused(config("{ path: /dev/null }"), /output\.path \/dev\/null is a device; the image is written as a new file that replaces what is there — give a file path \(-o - writes/, "/dev/null");
  });

  it("a FIFO (without hanging)", () => {
    const fifo = path.join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    refused(config("{ path: ./pipe }"), /output\.path .*pipe is a FIFO/, fifo);
    fs.rmSync(fifo);
  });

  it("a link naming the standard output pipe or socket, as /dev/stdout does (its /proc target resolves to no path)", () => {
    const link = path.join(dir, "stdout-link");
    fs.symlinkSync("/proc/self/fd/1", link);
    try {
      refused(config("{ path: ./stdout-link }"), /output\.path .*stdout-link is a (FIFO|socket); .* \(-o - writes the archive to standard output\)/, link);
    } finally {
      fs.rmSync(link);
    }
  });

  it("the SBOM files beside an archive: a FIFO or a link to /dev/zero there is refused before any work, not waited on or read for ever", () => {
    const fifo = path.join(dir, "sb.tar.spdx.json");
    execFileSync("mkfifo", [fifo]);
    refused(config("{ path: ./sb.tar }", "sbom: [cyclonedx, spdx]\n"), /^layerpack: sbom: the SBOM file .*sb\.tar\.spdx\.json is a FIFO; the SBOM is written as a new file that replaces what is there — remove it, or give output\.path another name$/m, fifo);
    expect(fs.existsSync(path.join(dir, "sb.tar"))).toBe(false);
    fs.rmSync(fifo);
    const zero = path.join(dir, "sb.tar.cdx.json");
    fs.symlinkSync("/dev/zero", zero);
    refused(config("{ path: ./sb.tar }", "sbom: cyclonedx\n"), /sbom: the SBOM file .*sb\.tar\.cdx\.json is a device/, zero);
    fs.rmSync(zero);
  });

  it("a directory, for an archive", () => {
    fs.mkdirSync(path.join(dir, "outdir"), { recursive: true });
    fs.writeFileSync(path.join(dir, "outdir/keep"), "x");
    refused(config("{ path: ./outdir }"), /output\.path .*outdir is a directory; the image is written as a new file that replaces what is there/, path.join(dir, "outdir/keep"));
  });

  it("a file, for an OCI layout", () => {
    fs.writeFileSync(path.join(dir, "notes.txt"), "mine\n");
    refused(config("{ format: oci-layout, path: ./notes.txt }"), /output\.path .*notes\.txt is a file; an OCI layout is written as a directory/, path.join(dir, "notes.txt"));
  });

  it("an existing OCI layout whose blobs/ is a symlink: nothing written where it points", () => {
    const victim = path.join(dir, "victim");
    const layout = path.join(dir, "linked-layout");
    fs.mkdirSync(victim, { recursive: true });
    fs.mkdirSync(layout, { recursive: true });
    fs.writeFileSync(path.join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(path.join(layout, "index.json"), '{"schemaVersion":2,"manifests":[]}');
    fs.symlinkSync(victim, path.join(layout, "blobs"));
    refused(config("{ format: oci-layout, path: ./linked-layout }"), /output .*linked-layout: blobs is a symlink; blobs are written only into the layout's own directories/, victim);
    expect(fs.readdirSync(victim)).toEqual([]);
  });

  it("a symlink, to a file or to nothing: the rename would replace the link (-o /dev/stdout replaced the system's)", () => {
    // /dev/stdout when standard output is a file: a link into /proc naming a regular file.
    const fd = fs.openSync(path.join(dir, "stdout.txt"), "w");
    const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../bin/layerpack.js"), "build", config("{ path: ./out.tar }"), "-o", "/dev/stdout"], { cwd: dir, stdio: ["ignore", fd, "pipe"], encoding: "utf8" });
    fs.closeSync(fd);
    expect(r.stderr).toMatch(/^layerpack: -o \/dev\/stdout is a symlink \(to \/proc\/self\/fd\/1\); .*; -o - writes the archive to standard output\n$/);
    expect([r.status, fs.readFileSync(path.join(dir, "stdout.txt"), "utf8")]).toEqual([1, ""]);
    expect(fs.lstatSync("/dev/stdout").isSymbolicLink()).toBe(true);
    fs.rmSync(path.join(dir, "stdout.txt"));
    fs.writeFileSync(path.join(dir, "target.tar"), "mine");
    fs.symlinkSync("target.tar", path.join(dir, "to-file.tar"));
    fs.symlinkSync("nowhere.tar", path.join(dir, "dangling.tar"));
    try {
      refused(config("{ path: ./to-file.tar }"), /output\.path .*to-file\.tar is a symlink \(to target\.tar\); writing the image would replace the link, not what it points to — give the path itself\n/, path.join(dir, "to-file.tar"));
      expect(fs.readFileSync(path.join(dir, "target.tar"), "utf8")).toBe("mine");
      refusedBy(["build", config("{ path: ./out.tar }"), "-o", "dangling.tar"], /^layerpack: -o dangling\.tar is a symlink \(to nowhere\.tar\)/, path.join(dir, "dangling.tar"));
      refusedBy(["plan", config("{ path: ./out.tar }"), "--write", "to-file.tar"], /--write to-file\.tar is a symlink/, path.join(dir, "to-file.tar"));
      refusedBy(["report", config("{ path: ./out.tar }"), "-o", "dangling.tar"], /-o dangling\.tar is a symlink/, path.join(dir, "dangling.tar"));
      expect(fs.existsSync(path.join(dir, "nowhere.tar"))).toBe(false);
    } finally {
      for (const f of ["target.tar", "to-file.tar", "dangling.tar"]) fs.rmSync(path.join(dir, f));
    }
  });

  it("a symlink to an existing OCI layout directory is written into, as the directory itself", () => {
    const layout = path.join(dir, "real-layout");
    fs.symlinkSync("real-layout", path.join(dir, "layout-link"));
    try {
      expect(layerpack(["build", config("{ format: oci-layout, path: ./real-layout }"), "-q"], { cwd: dir }).status).toBe(0);
      const r = layerpack(["build", config("{ format: oci-layout, path: ./layout-link }"), "-q", "--tag", "again"], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      expect(fs.lstatSync(path.join(dir, "layout-link")).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(path.join(layout, "index.json"), "utf8")).toContain("guarded:again");
    } finally {
      fs.unlinkSync(path.join(dir, "layout-link"));
      fs.rmSync(layout, { recursive: true });
    }
  });

  it("a regular old output is still replaced", () => {
    fs.writeFileSync(path.join(dir, "old.tar"), "old");
    const r = layerpack(["build", config("{ path: ./old.tar }"), "-q"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(path.join(dir, "old.tar")).size).toBeGreaterThan(1000);
  });
});

describe("plan --write and report -o keep to the same rules", () => {
  it("plan --write refuses the config, the store, a FIFO and a link to the standard output pipe", () => {
    const file = config("{ path: ./out.tar }");
    refusedBy(["plan", file, "--write", "image.yaml"], /^layerpack: --write image\.yaml is the config \(.*image\.yaml\); writing the plan file there would destroy it/, file);
    refusedBy(["plan", file, "--write", path.join(storeItem, "p.yaml")], /--write .*p\.yaml is inside the store/, storeItem);
    const fifo = path.join(dir, "plan-pipe");
    execFileSync("mkfifo", [fifo]);
    const link = path.join(dir, "plan-stdout");
    fs.symlinkSync("/proc/self/fd/1", link);
    try {
      refusedBy(["plan", file, "--write", "plan-pipe"], /--write plan-pipe is a FIFO; the plan file is written as a new file/, fifo);
      refusedBy(["plan", file, "--write", "plan-stdout"], /--write plan-stdout is a (FIFO|socket)/, link);
    } finally {
      fs.rmSync(fifo);
      fs.rmSync(link);
    }
  });

  it("plan --write refuses the image the config builds", () => {
    const file = config("{ path: ./built.tar }");
    fs.writeFileSync(path.join(dir, "built.tar"), "the image");
    refusedBy(["plan", file, "--write", "built.tar"], /^layerpack: --write built\.tar is the image the config builds \(.*built\.tar\); writing the plan file there would destroy it/, path.join(dir, "built.tar"));
    expect(fs.readFileSync(path.join(dir, "built.tar"), "utf8")).toBe("the image");
  });

  it("plan --write into a directory that does not exist says so", () => {
    const r = layerpack(["plan", config("{ path: ./out.tar }"), "--write", "no-dir/p.yaml"], { cwd: dir });
    expect([r.status, r.stderr.split("\n")[0]]).toEqual([1, `layerpack: --write no-dir/p.yaml: the directory ${path.join(dir, "no-dir")} does not exist; create it first`]);
  });

  it("plan --write may replace the previous plan: that keeps a sticky plan up to date", () => {
    const file = config("{ path: ./out.tar }", "layers: { previous: ./sticky.plan.yaml }\n");
    expect(layerpack(["plan", file, "--write", "sticky.plan.yaml"], { cwd: dir }).status).toBe(0);
    const r = layerpack(["plan", file, "--write", "sticky.plan.yaml"], { cwd: dir });
    expect(r.stderr).toMatch(/^wrote sticky\.plan\.yaml: /);
    expect(r.status).toBe(0);
  });

  it("report -o refuses a link to a FIFO and a paths[].source", () => {
    const file = config("{ path: ./out.tar }");
    const fifo = path.join(dir, "report-pipe");
    execFileSync("mkfifo", [fifo]);
    const link = path.join(dir, "report-link");
    fs.symlinkSync("report-pipe", link);
    try {
      refusedBy(["report", file, "-o", "report-link"], /-o report-link is a FIFO; the report is written as a new file/, link);
    } finally {
      fs.rmSync(fifo);
      fs.rmSync(link);
    }
    refusedBy(["report", file, "-o", "motd"], /-o motd is paths\[0\]\.source/, path.join(dir, "motd"));
  });

  it("the base image, as a docker archive and as a layout holding the output", () => {
    const base = config("{ path: ./base.tar }");
    expect(layerpack(["build", base], { cwd: dir }).status).toBe(0);
    refused(config("{ path: ./base.tar }", "base: docker-archive:./base.tar\n", "on-base.yaml"), /output\.path .*base\.tar is the base image \(.*base\.tar\)/, path.join(dir, "base.tar"));
    refused(config("{ path: ./base.tar }", "base: ./base.tar\n", "on-base.yaml"), /is the base image/, path.join(dir, "base.tar"));
    expect(layerpack(["build", config("{ format: oci-layout, path: ./base-layout }", "tag: b1\n")], { cwd: dir }).status).toBe(0);
    refused(config("{ format: oci-layout, path: ./base-layout }", "base: oci:./base-layout\n", "on-base.yaml"), /is the base image/, path.join(dir, "base-layout/index.json"));
    refused(config("{ format: oci-layout, path: ./base-layout }", "tag: b1\nbase: oci:./base-layout:guarded:b1\n", "on-base.yaml"), /is the base image/, path.join(dir, "base-layout/index.json"));
    // Under another ref the base stays in the layout beside the new image: that is allowed.
    const beside = layerpack(["build", config("{ format: oci-layout, path: ./base-layout }", "tag: a1\nbase: oci:./base-layout:guarded:b1\n", "on-base.yaml")], { cwd: dir });
    expect(beside.status, beside.stderr).toBe(0);
    const refs = JSON.parse(fs.readFileSync(path.join(dir, "base-layout/index.json"), "utf8")).manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.["org.opencontainers.image.ref.name"]);
    expect(refs.filter(Boolean).sort()).toEqual(["guarded:a1", "guarded:b1"]);
  });

  it("report -o refuses the images and plans it reads and the config's own output", () => {
    const file = config("{ path: ./built.tar }");
    expect(layerpack(["build", file], { cwd: dir }).status).toBe(0);
    fs.copyFileSync(path.join(dir, "built.tar"), path.join(dir, "other.tar"));
    expect(layerpack(["plan", file, "--write", "old.plan.yaml"], { cwd: dir }).status).toBe(0);
    refusedBy(["report", file, "-o", "built.tar"], /-o built\.tar is the image the config builds/, path.join(dir, "built.tar"));
    refusedBy(["report", file, "--image", "other.tar", "-o", "other.tar"], /-o other\.tar is the --image image/, path.join(dir, "other.tar"));
    refusedBy(["report", file, "--previous", "docker-archive:./other.tar", "-o", "other.tar"], /-o other\.tar is the --previous plan or image/, path.join(dir, "other.tar"));
    fs.symlinkSync("old.plan.yaml", path.join(dir, "plan-link.yaml"));
    refusedBy(["report", file, "--previous", "plan-link.yaml", "-o", "old.plan.yaml"], /-o old\.plan\.yaml is the --previous plan or image/, path.join(dir, "old.plan.yaml"));
  });
});
