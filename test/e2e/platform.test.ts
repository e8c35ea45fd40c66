/**
 * Platforms through the command line: a config without architecture builds for the host (recorded in the plan);
 * `inspect` of a multi-platform index shows the host's image and lists the others; `--platform` picks one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeExample } from "../golden/example.ts";
import { hostPlatform, formatPlatform } from "../../src/oci/platform.ts";
import { layerpack } from "./cli.ts";

let dir: string;
const run = (args: string[]) => layerpack(args, { cwd: dir });
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-platform-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The example config for `arch` (none: the host's), written into one OCI layout under tag `tag`. */
function config(name: string, arch: string | undefined, tag: string): string {
  const file = writeExample(dir, name);
  const text = fs.readFileSync(file, "utf8").replace("architecture: amd64\n", arch ? `architecture: ${arch}\n` : "").replace(/output: .*\n/, `tag: ${tag}\noutput: { format: oci-layout, path: ./multi }\n`);
  fs.writeFileSync(file, text);
  return path.basename(file);
}

describe("platforms", () => {
  it("without architecture: the host's, in OCI names, in the plan and the image", () => {
    const plan = JSON.parse(run(["plan", config("host", undefined, "host"), "--json"]).stdout);
    expect(plan.platform).toEqual(hostPlatform());
    expect(run(["build", "host.yaml", "-q"]).status).toBe(0);
    const image = JSON.parse(run(["inspect", "oci:multi:host:host", "--json"]).stdout);
    expect(image.config.architecture).toBe(hostPlatform().architecture);
  });

  it("inspect of a multi-platform index: the host's image, the platforms listed, --platform picks another", () => {
    for (const [name, arch] of [["amd", "amd64"], ["arm", "arm64"]] as const) {
      const cfg = config(name, arch, arch);
      if (arch === "arm64") fs.appendFileSync(path.join(dir, cfg), "variant: v8\n");
      const r = run(["build", cfg, "-q"]);
      expect(r.status, r.stderr).toBe(0);
    }
    // An index over the two manifests, with their platforms, as `docker buildx` or `podman manifest` make one.
    const layout = path.join(dir, "multi");
    const top = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8"));
    const pick = (tag: string) => top.manifests.find((m: { annotations: Record<string, string> }) => m.annotations["org.opencontainers.image.ref.name"]?.endsWith(`:${tag}`));
    const entries = [
      { ...pick("amd64"), annotations: undefined, platform: { os: "linux", architecture: "amd64" } },
      { ...pick("arm64"), annotations: undefined, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ];
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: entries }));
    const digest = `sha256:${createHash("sha256").update(index).digest("hex")}`;
    fs.writeFileSync(path.join(layout, "blobs", "sha256", digest.slice(7)), index);
    top.manifests.push({ mediaType: "application/vnd.oci.image.index.v1+json", digest, size: index.length, annotations: { "org.opencontainers.image.ref.name": "both" } });
    fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify(top));

    const host = formatPlatform(hostPlatform());
    const shown = run(["inspect", "oci:multi:both"]);
    expect(shown.status, shown.stderr).toBe(0);
    if (host === "linux/amd64" || host === "linux/arm64/v8") {
      expect(shown.stdout).toContain(`platforms    linux/amd64, linux/arm64/v8 (an index; this is ${host}, pick another with --platform)`);
    }
    const arm = JSON.parse(run(["inspect", "oci:multi:both", "--platform", "linux/arm64", "--json"]).stdout);
    expect(arm.config.architecture).toBe("arm64");
    expect(arm.config.variant).toBe("v8");
    expect(arm.manifestDigest).toBe(pick("arm64").digest);
    const none = run(["inspect", "oci:multi:both", "--platform", "linux/s390x"]);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain("has no image for linux/s390x; it has linux/amd64, linux/arm64/v8: choose one with --platform");
    expect(run(["inspect", "oci:multi:both", "--platform", "arm64"]).stderr).toMatch(/give os\/architecture\[\/variant\]/);
  });
});
