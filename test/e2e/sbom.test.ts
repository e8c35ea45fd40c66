/**
 * `sbom:` end to end, on a closure nix-bin built: every item listed with the NAR hash `nix path-info` reports
 * (computed by layerpack while it packs, the closure scanned, not read from nix's database), valid against the
 * published schemas; files beside a docker archive; artifacts with the image as subject in an OCI layout and in a
 * registry (referrers tag schema on Debian's docker-registry); same bytes on a second build.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { requireTool } from "../fixtures/tools.ts";
import { startRegistry, type TestRegistry } from "../fixtures/registry.ts";
import { buildNixClosure, chmodRemove, type NixClosure } from "./nix-closure.ts";
import { layerpack } from "./cli.ts";
import { cyclonedxValidator, errorsOf, spdxValidator } from "../sbom/validate.ts";

const hasTools = requireTool("nix-build", "nix-bin") && requireTool("skopeo") && requireTool("docker-registry") && requireTool("busybox", "busybox-static");
const skopeo = async (args: string[]) => (await promisify(execFile)("skopeo", args, { encoding: "utf8" })).stdout;

describe.runIf(hasTools)("SBOMs of a nix closure", () => {
  let dir: string;
  let nc: NixClosure;
  let reg: TestRegistry;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-sbom-"));
    nc = buildNixClosure(dir);
    reg = await startRegistry();
  }, 180_000);
  afterAll(async () => {
    await reg?.stop();
    chmodRemove(dir);
  });

  function config(name: string, output: string): string {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, `name: ${name}\ntag: "1"\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\nclosure: { from: scan }\nsbom: [spdx, cyclonedx]\noutput: ${output}\n`);
    return file;
  }

  it("beside a docker archive: every item with nix's NAR hash, valid, the same bytes twice", () => {
    const cfg = config("sb", "{ path: ./sb.tar }");
    const r = layerpack(["build", cfg, "--no-cache"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const spdxText = fs.readFileSync(path.join(dir, "sb.tar.spdx.json"));
    const spdx = JSON.parse(spdxText.toString());
    const cdx = JSON.parse(fs.readFileSync(path.join(dir, "sb.tar.cdx.json"), "utf8"));
    expect(errorsOf(spdxValidator(), spdx)).toEqual([]);
    expect(errorsOf(cyclonedxValidator(), cdx)).toEqual([]);
    const info = nc.nix.pathInfo([nc.profile]);
    const byPath = new Map(spdx.packages.filter((p: { packageFileName?: string }) => p.packageFileName).map((p: { packageFileName: string }) => [p.packageFileName, p]));
    expect([...byPath.keys()].sort()).toEqual(info.map((i) => i.path));
    for (const item of info) {
      const pkg = byPath.get(item.path) as { checksums: { algorithm: string; checksumValue: string }[] };
      expect(pkg.checksums, item.path).toEqual([{ algorithm: "SHA256", checksumValue: item.narHash.slice("sha256:".length) }]);
      const comp = cdx.components.find((c: { "bom-ref": string }) => c["bom-ref"] === item.path);
      expect(comp.hashes, item.path).toEqual([{ alg: "SHA-256", content: item.narHash.slice("sha256:".length) }]);
    }
    // Again, now through the cache: the same bytes.
    const again = layerpack(["build", cfg], { cwd: dir });
    expect(again.status, again.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, "sb.tar.spdx.json")).equals(spdxText)).toBe(true);
  });

  it("in an OCI layout, as artifacts whose subject is the image", async () => {
    const cfg = config("sbl", "{ format: oci-layout, path: ./sbl }");
    const r = layerpack(["build", cfg], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const index = JSON.parse(fs.readFileSync(path.join(dir, "sbl/index.json"), "utf8"));
    const image = index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.["org.opencontainers.image.ref.name"] === "sbl:1");
    const artifacts = index.manifests.filter((m: { artifactType?: string }) => m.artifactType);
    expect(artifacts.map((a: { artifactType: string }) => a.artifactType).sort()).toEqual(["application/spdx+json", "application/vnd.cyclonedx+json"]);
    for (const a of artifacts) {
      const m = JSON.parse(fs.readFileSync(path.join(dir, "sbl/blobs/sha256", a.digest.slice(7)), "utf8"));
      expect(m.subject.digest).toBe(image.digest);
      expect(fs.existsSync(path.join(dir, "sbl/blobs/sha256", m.layers[0].digest.slice(7)))).toBe(true);
    }
    // The image is still read by name.
    expect(JSON.parse(await skopeo(["inspect", `oci:${path.join(dir, "sbl")}:sbl:1`])).Digest).toBe(image.digest);
    // layerpack's own readers pick the image, not the artifacts about it: inspect and diff need no --ref.
    const inspected = layerpack(["inspect", "sbl", "--json"], { cwd: dir });
    expect(inspected.status, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout).manifestDigest).toBe(image.digest);
    const diffed = layerpack(["diff", "sbl", "sbl"], { cwd: dir });
    expect(diffed.status, diffed.stderr).toBe(0);
    // A rebuild under the same tag keeps one set of artifacts.
    expect(layerpack(["build", cfg], { cwd: dir }).status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "sbl/index.json"), "utf8")).manifests).toHaveLength(3);
  });

  it("pushed with the image, as its referrers", async () => {
    const cfg = config("sbr", `{ format: registry, ref: "${reg.host}/sb/app" }`);
    const r = await promisify(execFile)(process.execPath, [path.join(process.cwd(), "bin/layerpack.js"), "build", cfg, "-q"], { cwd: dir, encoding: "utf8", env: { ...process.env, LAYERPACK_CACHE_DIR: path.join(dir, "cache") } });
    const digest = r.stdout.trim().split("@")[1]!;
    const referrers = JSON.parse(await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/sb/app:sha256-${digest.slice(7)}`]));
    expect(referrers.manifests.map((m: { artifactType: string }) => m.artifactType).sort()).toEqual(["application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.layerpack.cache.v1+json"]);
  });
});
