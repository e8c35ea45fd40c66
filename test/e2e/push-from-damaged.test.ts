/**
 * `push --from` of an image damaged after it was written, to a real registry (docker-registry behind the recording
 * proxy): a docker archive with 4 bytes of a gzip layer overwritten, and an OCI layout with a blob overwritten. Each
 * push must exit 1 naming the file, the layer and the digests, and leave no tag at the registry (blobs it uploaded
 * first are harmless). The same archive undamaged still pushes, and skopeo and podman read it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GREETING, makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";
import { startRegistry, type TestRegistry } from "../fixtures/registry.ts";
import { runAsync } from "../fixtures/run-async.ts";
import { PODMAN_EXIT_CODE_RACE, podman } from "./run-tools.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
let dir: string;
let ex: ExampleStore;
let reg: TestRegistry;
const exec = (cmd: string, args: string[], env: Record<string, string> = {}) => runAsync(cmd, args, { cwd: dir, env });
const lp = (args: string[]) => exec(process.execPath, [BIN, ...args], { LAYERPACK_CACHE_DIR: path.join(dir, "cache"), LAYERPACK_REGISTRY_USER: "", LAYERPACK_REGISTRY_PASSWORD: "" });
const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const hasTools = requireTool("docker-registry") && requireTool("skopeo") && requireTool("podman");

/** The regular entries of a plain tar: name, where the data starts, its size. */
function tarEntries(tar: Buffer): { name: string; at: number; size: number }[] {
  const out = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const field = (start: number, len: number) => tar.subarray(off + start, off + start + len).toString("latin1").replace(/\0.*$/s, "");
    const name = field(0, 100);
    if (name === "") break;
    const size = parseInt(field(124, 12).trim(), 8);
    out.push({ name: field(345, 155) ? `${field(345, 155)}/${name}` : name, at: off + 512, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** 4 bytes in the middle of `data` at `at`, `size` overwritten (each bit flipped, so they surely change). */
function flip(data: Buffer, at: number, size: number): void {
  const mid = at + (size >> 1);
  data.writeUInt32BE(~data.readUInt32BE(mid) >>> 0, mid);
}

/** A copy of the docker archive with its biggest gzip layer damaged; what a message about it must name. */
function damageArchive(archive: string, out: string) {
  const tar = fs.readFileSync(archive);
  const entries = tarEntries(tar);
  const data = (e: { at: number; size: number }) => tar.subarray(e.at, e.at + e.size);
  const manifest = JSON.parse(data(entries.find((e) => e.name === "manifest.json")!).toString())[0];
  const config = JSON.parse(data(entries.find((e) => e.name === manifest.Config)!).toString());
  const layer = entries.filter((e) => e.name.endsWith(".tar.gz")).sort((a, b) => b.size - a.size)[0]!;
  flip(tar, layer.at, layer.size);
  fs.writeFileSync(out, tar);
  const index = manifest.Layers.indexOf(layer.name);
  return { name: layer.name, index, diffId: config.rootfs.diff_ids[index] as string, digest: sha256(data(layer)) };
}

/** Whether the registry has `repo:tag`: skopeo's word and the manifest GET's status, asked of the registry itself. */
async function tagAt(repo: string, tag: string): Promise<{ skopeo: number | null; get: number }> {
  const inspect = await exec("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${reg.directHost}/${repo}:${tag}`]);
  const res = await fetch(`http://${reg.directHost}/v2/${repo}/manifests/${tag}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
  await res.body?.cancel();
  return { skopeo: inspect.status, get: res.status };
}

/** Uploads `data` as a blob of `repo` directly, as an older push would have left it. */
async function putBlob(repo: string, data: Buffer): Promise<void> {
  const start = await fetch(`http://${reg.directHost}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(start.status).toBe(202);
  const at = new URL(start.headers.get("location")!, `http://${reg.directHost}`);
  at.searchParams.set("digest", sha256(data));
  const put = await fetch(at, { method: "PUT", body: new Uint8Array(data), headers: { "content-type": "application/octet-stream" } });
  expect(put.status).toBe(201);
}

let archive: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-push-damaged-"));
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
  const cfg = path.join(dir, "hello.yaml");
  fs.writeFileSync(
    cfg,
    `name: hello\ntag: "1"\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nroots: ["${ex.hello}"]\nentrypoint: ${ex.hello}/bin/hello\n` +
      `symlinks: ["/lib64=${ex.glibc}/lib", "/lib=${ex.glibc}/lib"]\ncompression: gzip\noutput: { path: ./hello.tar }\n`,
  );
  if (!hasTools) return;
  const built = await lp(["build", cfg, "-q"]);
  expect(built.status, built.stderr).toBe(0);
  archive = path.join(dir, "hello.tar");
  reg = await startRegistry();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.runIf(hasTools)("push --from a damaged image", () => {
  it("a docker archive with a damaged gzip layer: exit 1 naming the archive, the layer and both digests; nothing sent, no tag", async () => {
    const corrupt = path.join(dir, "corrupt.tar");
    const layer = damageArchive(archive, corrupt);
    const from = reg.requests.length;
    const r = await lp(["push", "--from", corrupt, "--to", `${reg.host}/bad/corrupt:1`]);
    expect(r.status, r.all).toBe(1);
    expect(r.stderr).toContain(
      `layerpack: ${corrupt}: layer ${layer.name} is damaged: its gzip data is corrupt, so it cannot unpack to ${layer.diffId}, the config's rootfs.diff_ids[${layer.index}] (the layer's bytes hash to ${layer.digest})\n`,
    );
    expect(r.stderr).toMatch(/\n {2}caused by: \S/); // zlib's own words ("incorrect data check" & co.)
    expect(r.stderr).not.toMatch(/\n\s+at /); // a LayerpackError, not a bug's stack
    // Refused while the archive was read: the registry was never asked anything.
    expect(reg.requests.slice(from)).toEqual([]);
    const tag = await tagAt("bad/corrupt", "1");
    expect(tag.skopeo).not.toBe(0);
    expect(tag.get).toBe(404);
  });

  it("a registry that already holds the damaged blob (an older push left it) gets no tag either", async () => {
    const corrupt = path.join(dir, "corrupt.tar");
    const layer = damageArchive(archive, corrupt);
    const tar = fs.readFileSync(corrupt);
    const entry = tarEntries(tar).find((e) => e.name === layer.name)!;
    await putBlob("bad/held", tar.subarray(entry.at, entry.at + entry.size));
    const from = reg.requests.length;
    const r = await lp(["push", "--from", `docker-archive:${corrupt}`, "--to", `${reg.host}/bad/held:1`, "-q"]);
    expect(r.status, r.all).toBe(1);
    expect(r.stderr).toContain(`layer ${layer.name} is damaged: its gzip data is corrupt`);
    expect(reg.requests.slice(from).filter((q) => q.path.includes("/manifests/"))).toEqual([]);
    expect((await tagAt("bad/held", "1")).get).toBe(404);
  });

  it("an OCI layout with a damaged layer blob: exit 1 naming the blob and both digests; no tag", async () => {
    const layout = path.join(dir, "layout");
    const copied = await exec("skopeo", ["copy", "--quiet", `docker-archive:${archive}`, `oci:${layout}:v1`]);
    expect(copied.status, copied.all).toBe(0);
    const blobs = path.join(layout, "blobs", "sha256");
    const biggest = fs.readdirSync(blobs).sort((a, b) => fs.statSync(path.join(blobs, b)).size - fs.statSync(path.join(blobs, a)).size)[0]!;
    const file = path.join(blobs, biggest);
    const data = fs.readFileSync(file);
    flip(data, 0, data.length);
    fs.writeFileSync(file, data);
    const r = await lp(["push", "--from", `oci:${layout}:v1`, "--to", `${reg.host}/bad/layout:1`]);
    expect(r.status, r.all).toBe(1);
    expect(r.stderr).toContain(`${file}: blob sha256:${biggest} does not match its digest (its bytes hash to ${sha256(data)})`);
    expect((await tagAt("bad/layout", "1")).get).toBe(404);
  });

  it("the same archive undamaged pushes; skopeo copies it (checking every digest) and podman runs it", async () => {
    const r = await lp(["push", "--from", archive, "--to", `${reg.host}/good/hello:1`, "-q"]);
    expect(r.status, r.all).toBe(0);
    const digest = r.stdout.trim().split("@")[1];
    expect(await tagAt("good/hello", "1")).toEqual({ skopeo: 0, get: 200 });
    const copied = await exec("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${reg.host}/good/hello:1`, `oci:${path.join(dir, "copied")}:x`]);
    expect(copied.status, copied.all).toBe(0);
    const index = JSON.parse(fs.readFileSync(path.join(dir, "copied", "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(digest);
    // podman unpacks every layer and checks it against the config's diff_ids.
    const pm = podman(path.join(dir, "podman"));
    try {
      const args = [...pm.args, "run", "--rm", "--network", "none", "--tls-verify=false", `${reg.host}/good/hello:1`];
      let out = await exec("podman", args, pm.env);
      for (let attempt = 1; attempt < 3 && out.status !== 0 && PODMAN_EXIT_CODE_RACE.test(out.stderr); attempt++) out = await exec("podman", args, pm.env);
      expect(out.status, out.stderr.slice(-1500)).toBe(0);
      expect(out.stdout).toContain(GREETING);
    } finally {
      pm.cleanup();
    }
  });
});
