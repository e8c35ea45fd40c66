/**
 * `layerpack push` to a real registry (docker-registry behind the recording proxy, on 127.0.0.1), checked with
 * skopeo: same digests via docker:// and after copying back; shared layers and repeated pushes upload nothing
 * twice; htpasswd auth; and every bad input gives a clear error. The CLI runs asynchronously so the in-process
 * proxy keeps answering.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { makeExampleStore, type ExampleStore } from "../../examples/make-store.ts";
import { requireTool } from "../fixtures/tools.ts";
import { freePort, startRegistry, type TestRegistry } from "../fixtures/registry.ts";

const BIN = path.resolve(import.meta.dirname, "../../bin/layerpack.js");
let dir: string;
let cacheDir: string;
let ex: ExampleStore;

function exec(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
const layerpack = (args: string[], env: Record<string, string> = {}) =>
  exec(process.execPath, [BIN, ...args], { LAYERPACK_CACHE_DIR: cacheDir, LAYERPACK_REGISTRY_USER: "", LAYERPACK_REGISTRY_PASSWORD: "", ...env });
async function skopeo(args: string[]): Promise<string> {
  const r = await exec("skopeo", args);
  if (r.status !== 0) throw new Error(`skopeo ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function writeConfig(name: string, extra: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    `name: ${name}\ntag: test\nstore: { dir: /gnu/store, root: ./store }\nclosure: { from: scan }\nsymlinks: ["/lib64=${ex.glibc}/lib"]\ncompression: gzip\n${extra}\noutput: { path: ./${name}.tar }\n`,
  );
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-reg-e2e-"));
  cacheDir = path.join(dir, "cache");
  ex = makeExampleStore(path.join(dir, "store"), { profileLink: path.join(dir, "profile") });
});
afterAll(() => {
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const hasTools = requireTool("docker-registry") && requireTool("skopeo");

describe.runIf(hasTools)("push to a registry", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg?.stop());

  // The image's blob uploads: those before its manifest (the cache record artifact follows it).
  const uploads = (from: number, repo: string) => {
    const after = reg.requests.slice(from);
    const manifest = after.findIndex((r) => r.method === "PUT" && r.path.includes(`/${repo}/manifests/`));
    return after.slice(0, manifest < 0 ? undefined : manifest).filter((r) => (r.method === "PUT" || r.method === "PATCH") && r.path.includes(`/${repo}/blobs/`));
  };

  it("pushes an image that skopeo reads, and copies back with the same digests", async () => {
    const cfg = writeConfig("img-a", `roots: ["${ex.hello}"]\nentrypoint: ${ex.hello}/bin/hello`);
    const r = await layerpack(["push", cfg, "--to", `${reg.host}/team/img-a:1.0`]);
    expect(r.status, r.stderr).toBe(0);
    const [pushed, digest] = r.stdout.trim().split("@");
    expect(pushed).toBe(`${reg.host}/team/img-a:1.0`);
    expect(r.stderr).toMatch(/pushed .*: 5 blobs uploaded .*0 mounted, 0 already there/);

    const raw = JSON.parse(await skopeo(["inspect", "--tls-verify=false", "--raw", `docker://${reg.host}/team/img-a:1.0`]));
    const info = JSON.parse(await skopeo(["inspect", "--tls-verify=false", `docker://${reg.host}/team/img-a:1.0`]));
    expect(info.Digest).toBe(digest);
    expect(raw.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(info.Layers).toEqual(raw.layers.map((l: { digest: string }) => l.digest));

    const back = path.join(dir, "copied");
    await skopeo(["copy", "--src-tls-verify=false", "--preserve-digests", `docker://${reg.host}/team/img-a:1.0`, `oci:${back}:x`]);
    const index = JSON.parse(fs.readFileSync(path.join(back, "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(digest);
    const manifest = JSON.parse(fs.readFileSync(path.join(back, "blobs/sha256", digest!.slice(7)), "utf8"));
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(info.Layers);

    // inspect reads it from the registry too, with each layer's store items.
    const shown = JSON.parse((await layerpack(["inspect", `${reg.host}/team/img-a:1.0`, "--json"])).stdout);
    expect(shown.manifestDigest).toBe(digest);
    expect(shown.layers.map((l: { comment: string }) => l.comment)).toContain("store: hello");
  });

  it("a second image sharing layers sends only its new blobs; the same push again sends nothing", async () => {
    const cfg = writeConfig("img-b", `roots: ["${ex.shell}"]\nentrypoint: ${ex.shell}/bin/sh`);
    // img-b's glibc and shell layers (and the /lib64 customisation layer) are img-a's: only its config is new.
    let from = reg.requests.length;
    const r = await layerpack(["push", cfg, "--to", `${reg.host}/team/img-a:b`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/: 1 blobs uploaded .* 0 mounted, 3 already there/);
    expect(uploads(from, "team/img-a")).toHaveLength(1);

    // Another repository on the same registry: blobs this machine pushed before are mounted, not uploaded.
    from = reg.requests.length;
    const other = await layerpack(["push", cfg, "--to", `${reg.host}/other/img-b:1`]);
    expect(other.status, other.stderr).toBe(0);
    expect(uploads(from, "other/img-b")).toHaveLength(0);
    expect(reg.requests.slice(from).filter((q) => q.method === "POST" && q.query.includes("mount="))).toHaveLength(4);

    from = reg.requests.length;
    const again = await layerpack(["push", cfg, "--to", `${reg.host}/other/img-b:1`]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/0 blobs uploaded \(0 B\), 0 mounted, 4 already there; 0 layers built, 3 reused/);
    expect(reg.requests.slice(from).filter((q) => q.method !== "HEAD" && q.method !== "GET")).toEqual([]);
  });

  it("mount hints the cache holds are never trusted blindly: a FIFO there is skipped, not waited on; bad entries are dropped; a link for registry/ is refused", async () => {
    const cfg = writeConfig("img-b", `roots: ["${ex.shell}"]\nentrypoint: ${ex.shell}/bin/sh`);
    const registryDir = path.join(cacheDir, "registry");
    const [hints] = fs.readdirSync(registryDir).map((f) => path.join(registryDir, f));
    const good = JSON.parse(fs.readFileSync(hints!, "utf8")) as Record<string, string>;
    fs.rmSync(hints!);
    execFileSync("mkfifo", [hints!]);
    let from = reg.requests.length;
    let r = await layerpack(["push", cfg, "--to", `${reg.host}/fifo/img-b:1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(reg.requests.slice(from).filter((q) => q.query.includes("mount="))).toEqual([]);
    expect(fs.lstatSync(hints!).isFile()).toBe(true); // the FIFO was replaced by this push's hints, by rename

    // A repository that would put more into the mount URL's query than a name, and a digest that is no digest.
    const [digest] = Object.keys(good);
    fs.writeFileSync(hints!, JSON.stringify({ [digest!]: "x&from=evil", "sha256:../../x": "team/img-a" }));
    from = reg.requests.length;
    r = await layerpack(["push", cfg, "--to", `${reg.host}/bad/img-b:1`]);
    expect(r.status, r.stderr).toBe(0);
    expect(reg.requests.slice(from).filter((q) => q.query.includes("evil") || q.query.includes("mount="))).toEqual([]);
    expect(fs.readdirSync(registryDir).filter((f) => f.includes(".tmp"))).toEqual([]);

    // As for the cache's other directories: the cache is not used at all, and nothing is written where the link points.
    const elsewhere = path.join(dir, "elsewhere");
    fs.mkdirSync(elsewhere);
    fs.renameSync(registryDir, `${registryDir}-real`);
    fs.symlinkSync(elsewhere, registryDir);
    try {
      r = await layerpack(["push", cfg, "--to", `${reg.host}/link/img-b:1`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/warning: cannot use the cache directory .*registry is a symbolic link, not a directory; the cache's directories are never used through links/);
      expect(fs.readdirSync(elsewhere)).toEqual([]);
    } finally {
      fs.unlinkSync(registryDir);
      fs.renameSync(`${registryDir}-real`, registryDir);
    }
  });

  it("push --from mounts what this machine pushed to another repository of the registry, as a build's push does", async () => {
    const from = reg.requests.length;
    const r = await layerpack(["push", "--from", `docker://${reg.host}/team/img-a:b`, "--to", `${reg.host}/mirror/img-b:1`, "--insecure"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/: 0 blobs uploaded \(0 B\), 4 mounted, 0 already there/);
    expect(uploads(from, "mirror/img-b")).toHaveLength(0);
    const none = await layerpack(["push", "--from", `docker://${reg.host}/team/img-a:b`, "--to", `${reg.host}/mirror2/img-b:1`, "--insecure", "--no-cache"]);
    expect(none.stderr).toMatch(/: 4 blobs uploaded .*, 0 mounted/);
    // A cache directory no build has used: push --from keeps its hints there all the same, without a warning.
    const fresh = path.join(dir, "fresh-cache");
    const first = await layerpack(["push", "--from", `docker://${reg.host}/team/img-a:b`, "--to", `${reg.host}/mirror3/img-b:1`, "--insecure", "--cache-dir", fresh]);
    expect([first.status, first.stderr]).toEqual([0, expect.not.stringMatching(/warning/)]);
    const second = await layerpack(["push", "--from", `docker://${reg.host}/team/img-a:b`, "--to", `${reg.host}/mirror4/img-b:1`, "--insecure", "--cache-dir", fresh]);
    expect(second.stderr).toMatch(/: 0 blobs uploaded \(0 B\), 4 mounted/);
  });

  it("output.format registry pushes on build, under every tag", async () => {
    const cfg = path.join(dir, "reg.yaml");
    fs.writeFileSync(
      cfg,
      fs.readFileSync(writeConfig("img-c", `roots: ["${ex.hello}"]\ntags: [x, y]`), "utf8").replace("output: { path: ./img-c.tar }", `output: { format: registry, ref: "${reg.host}/c" }`),
    );
    const r = await layerpack(["build", cfg, "-q"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => l.split("@")[0])).toEqual(["test", "x", "y"].map((t) => `${reg.host}/c:${t}`));
    const tags = JSON.parse(await skopeo(["list-tags", "--tls-verify=false", `docker://${reg.host}/c`])).Tags;
    // sha256-<hex>: the referrers tag (the registry has no referrers API) listing the image's cache record.
    expect(tags.filter((t: string) => !t.startsWith("sha256-")).sort()).toEqual(["test", "x", "y"]);
  });

  it("push --from pushes an existing image without building it: same digests from a docker archive, an OCI layout and a registry", async () => {
    const cfg = writeConfig("img-d", `roots: ["${ex.hello}"]`);
    expect((await layerpack(["build", cfg, "-q"])).status).toBe(0);
    const archive = path.join(dir, "img-d.tar");
    // The build's own push as the reference: the same layers and config (a docker archive has no manifest
    // annotations, so its manifest lacks the build's org.opencontainers.image.* ones).
    const built = await layerpack(["push", cfg, "--to", `${reg.host}/from/built:1`, "-q"]);
    expect(built.status, built.stderr).toBe(0);
    expect(built.stdout.trim().split("@")[1]).toMatch(/^sha256:[0-9a-f]{64}$/);

    let from = reg.requests.length;
    const r = await layerpack(["push", "--from", `docker-archive:${archive}`, "--to", `${reg.host}/from/archive:1`, "-q"]);
    expect(r.status, r.stderr).toBe(0);
    const archiveDigest = r.stdout.trim().split("@")[1];
    const raw = async (ref: string) => JSON.parse(await skopeo(["inspect", "--tls-verify=false", "--raw", `docker://${reg.host}/${ref}`]));
    const [builtManifest, archiveManifest] = [await raw("from/built:1"), await raw("from/archive:1")];
    expect(archiveManifest.config).toEqual(builtManifest.config);
    expect(archiveManifest.layers).toEqual(builtManifest.layers);
    expect(builtManifest.annotations["org.opencontainers.image.title"]).toBe("img-d");
    // Blobs the registry holds in another repository are uploaded again (no mount hints without a cache), none twice.
    const sent = uploads(from, "from/archive").filter((q) => q.method === "PUT");
    expect(new Set(sent.map((q) => q.path)).size).toBe(sent.length);

    // From an OCI layout skopeo made (re-compressed: other digests), and from the registry itself.
    const layout = path.join(dir, "from-layout");
    await skopeo(["copy", "--quiet", "--dest-compress-format", "zstd", "--dest-compress", `docker-archive:${archive}`, `oci:${layout}:v1`]);
    const fromLayout = await layerpack(["push", "--from", `oci:${layout}:v1`, "--to", `${reg.host}/from/layout`, "--json"]);
    expect(fromLayout.status, fromLayout.stderr).toBe(0);
    const events = fromLayout.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "pushed", references: [`${reg.host}/from/layout:v1`] }); // the layout's own ref name as tag
    // Every event has its time, as build's do.
    for (const e of events) expect(e.time, JSON.stringify(e)).toMatch(/^\d{4}-\d\d-\d\dT/);
    const layers = JSON.parse(await skopeo(["inspect", "--tls-verify=false", "--raw", `docker://${reg.host}/from/layout:v1`])).layers;
    const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"));
    expect(layers.map((l: { digest: string }) => l.digest)).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
    expect(layers.every((l: { mediaType: string }) => l.mediaType.endsWith("+zstd"))).toBe(true);

    from = reg.requests.length;
    const copy = await layerpack(["push", "--from", `docker://${reg.host}/from/archive:1`, "--to", `${reg.host}/from/copy:2`, "-q"]);
    expect(copy.status, copy.stderr).toBe(0);
    expect(copy.stdout.trim()).toBe(`${reg.host}/from/copy:2@${archiveDigest}`);
    // Without -q the summary goes to stderr and the references still to stdout, as for a built push.
    const again = await layerpack(["push", "--from", `docker://${reg.host}/from/archive:1`, "--to", `${reg.host}/from/copy:3`]);
    expect([again.status, again.stdout]).toEqual([0, `${reg.host}/from/copy:3@${archiveDigest}\n`]);
    expect(again.stderr).toMatch(/^pushed .*copy:3: .*manifest sha256:/);

    // Bad uses are refused before any work.
    expect((await layerpack(["push", cfg, "--from", archive, "--to", `${reg.host}/x:1`])).stderr).toMatch(/either a config to build or --from IMAGE, not both/);
    expect((await layerpack(["push", "--from", archive])).stderr).toMatch(/push --from: give --to/);
    const missing = await layerpack(["push", "--from", "docker-archive:./nope.tar", "--to", `${reg.host}/x:1`]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope\.tar: no such file/);
  });

  it("a registry image as base: fetched into the cache once, its layers reused byte for byte, pushed back by mount or HEAD", async () => {
    const cfg = writeConfig("on-reg", `base: docker://${reg.host}/team/img-a:1.0\nroots: ["${ex.shell}"]`);
    let from = reg.requests.length;
    const first = await layerpack(["build", cfg, "-q"]);
    expect(first.status, first.stderr).toBe(0);
    const blobGets = (since: number) => reg.requests.slice(since).filter((q) => q.method === "GET" && q.path.includes("/blobs/sha256:"));
    const baseInfo = JSON.parse(await skopeo(["inspect", "--tls-verify=false", "--raw", `docker://${reg.host}/team/img-a:1.0`]));
    // Every base layer once (the config is read again when the build checks that the base has not moved).
    const layerGets = blobGets(from).filter((q) => baseInfo.layers.some((l: { digest: string }) => q.path.endsWith(l.digest)));
    expect(layerGets.map((q) => q.path).sort()).toEqual(baseInfo.layers.map((l: { digest: string }) => `/v2/team/img-a/blobs/${l.digest}`).sort());
    from = reg.requests.length;
    expect((await layerpack(["build", cfg, "-q"])).status).toBe(0);
    expect(blobGets(from).filter((q) => baseInfo.layers.some((l: { digest: string }) => q.path.endsWith(l.digest)))).toEqual([]);
    const built = JSON.parse((await layerpack(["inspect", path.join(dir, "on-reg.tar"), "--json"])).stdout);
    expect(built.layers.slice(0, baseInfo.layers.length).map((l: { digest: string }) => l.digest)).toEqual(baseInfo.layers.map((l: { digest: string }) => l.digest));
    from = reg.requests.length;
    const pushed = await layerpack(["push", cfg, "--to", `${reg.host}/team/on-reg:1`]);
    expect(pushed.status, pushed.stderr).toBe(0);
    // The base's blobs are in the registry already (another repository): none of them is uploaded again.
    const sent = uploads(from, "team/on-reg").filter((q) => q.method === "PUT").map((q) => q.query);
    for (const l of baseInfo.layers) expect(sent.some((q: string) => q.includes(l.digest.slice(7)))).toBe(false);
  });

  it("shows the registry's error code and message", async () => {
    reg.failNext((req) => req.method === "PUT" && req.url!.includes("/denied/manifests/"), 1, 403, "DENIED", "requested access to the resource is denied");
    const cfg = writeConfig("img-d", `roots: ["${ex.hello}"]`);
    const r = await layerpack(["push", cfg, "--to", `${reg.host}/denied:1`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("DENIED: requested access to the resource is denied");
  });

  it("refuses a malformed reference (before any work) and reports an unreachable registry", async () => {
    const cfg = writeConfig("img-e", `roots: ["${ex.hello}"]`);
    const bad = await layerpack(["push", cfg, "--to", `${reg.host}/Bad:1`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`layerpack push: --to: malformed image reference '${reg.host}/Bad:1': 'Bad' is not a valid repository name component`);
    const port = await freePort();
    const down = await layerpack(["push", cfg, "--to", `127.0.0.1:${port}/x:1`]);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`layerpack: cannot reach registry 127\\.0\\.0\\.1:${port} \\(GET /v2/\\): .*ECONNREFUSED`));
    expect(down.stderr).not.toContain("internal error");
  });
});

describe.runIf(hasTools && requireTool("htpasswd", "apache2-utils"))("push with htpasswd auth", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: { user: "alice", password: "wonderland" } });
  });
  afterAll(async () => reg?.stop());

  it("works with the right credentials, from the environment or an auth file", async () => {
    const cfg = writeConfig("auth-a", `roots: ["${ex.hello}"]`);
    const r = await layerpack(["push", cfg, "--to", `${reg.host}/auth:1`], { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "wonderland" });
    expect(r.status, r.stderr).toBe(0);
    const authFile = path.join(dir, "auth.json");
    fs.writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from("alice:wonderland").toString("base64") } } }));
    const viaFile = await exec(process.execPath, [BIN, "push", cfg, "--to", `${reg.host}/auth:2`], { LAYERPACK_CACHE_DIR: cacheDir, REGISTRY_AUTH_FILE: authFile });
    expect(viaFile.status, viaFile.stderr).toBe(0);
  });

  it("works with docker's credential helper (credHelpers), as docker login with a keychain leaves it", async () => {
    const cfg = writeConfig("auth-c", `roots: ["${ex.hello}"]`);
    const home = fs.mkdtempSync(path.join(dir, "home-"));
    fs.mkdirSync(path.join(home, "bin"));
    const helper = path.join(home, "bin", "docker-credential-testkeys");
    fs.writeFileSync(helper, `#!/bin/sh\nread host\n[ "$host" = "${reg.host}" ] || exit 1\necho '{"Username":"alice","Secret":"wonderland"}'\n`);
    fs.chmodSync(helper, 0o755);
    fs.mkdirSync(path.join(home, ".docker"));
    fs.writeFileSync(path.join(home, ".docker", "config.json"), JSON.stringify({ credHelpers: { [reg.host]: "testkeys" } }));
    const r = await exec(process.execPath, [BIN, "push", cfg, "--to", `${reg.host}/auth:4`], {
      LAYERPACK_CACHE_DIR: cacheDir,
      HOME: home,
      REGISTRY_AUTH_FILE: "",
      XDG_RUNTIME_DIR: path.join(home, "run"),
      PATH: `${path.join(home, "bin")}:${process.env.PATH}`,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain("wonderland");
    expect(reg.count("PUT", "/auth/manifests/4")).toBe(1);
  });

  it("fails clearly with wrong or missing credentials, never printing them", async () => {
    const cfg = writeConfig("auth-b", `roots: ["${ex.hello}"]`);
    const wrong = await layerpack(["push", cfg, "--to", `${reg.host}/auth:3`], { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "hunter2" });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/authentication with registry .* failed .*UNAUTHORIZED.*: the credentials from LAYERPACK_REGISTRY_USER\/LAYERPACK_REGISTRY_PASSWORD were refused/);
    expect(wrong.stderr + wrong.stdout).not.toContain("hunter2");
    const none = await exec(process.execPath, [BIN, "push", cfg, "--to", `${reg.host}/auth:3`], { LAYERPACK_CACHE_DIR: cacheDir, HOME: dir, REGISTRY_AUTH_FILE: "" });
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/no credentials found: set LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD \(with LAYERPACK_REGISTRY_HOST=.* when not pushing there\), or log in \(looked in .*containers\/auth\.json, .*\.docker\/config\.json\)/);
    expect(reg.count("PUT", "/auth/manifests/3")).toBe(0);
  });
});
