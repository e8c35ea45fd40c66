/**
 * Plans in code review through the real command line: plan --write, check (passing, failing with a diff and the
 * update command), diff of plan files and of built images, sticky plans, and the bad inputs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extract, pack } from "tar-stream";
import { GOLDEN_DIR, writeExample } from "../golden/example.ts";
import { layerpack } from "./cli.ts";
import { fakeHash } from "../fixtures/store.ts";

let dir: string;
const item = (name: string) => `/gnu/store/${fakeHash("/gnu/store", name)}-${name}`;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-check-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => layerpack(args, { cwd: dir });

/** Entry name -> size of a docker archive's top-level entries, read independently of src/oci/read-archive.ts. */
async function entrySizes(file: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const ex = extract();
  fs.createReadStream(file).pipe(ex);
  for await (const e of ex) {
    out.set(e.header.name, e.header.size);
    e.resume();
  }
  return out;
}

describe("plan --write and check", () => {
  it("writes the golden plan file, byte for byte, twice", () => {
    writeExample(dir, "example");
    expect(run(["plan", "example.yaml", "--write", "image.plan.yaml"])).toMatchObject({ status: 0, stderr: "wrote image.plan.yaml: 5 layers, 4 store items, 17624 bytes\n" });
    const first = fs.readFileSync(path.join(dir, "image.plan.yaml"), "utf8");
    expect(first).toBe(fs.readFileSync(path.join(GOLDEN_DIR, "example.size.plan.yaml"), "utf8"));
    expect(run(["plan", "example.yaml", "--write", "image.plan.yaml"]).status).toBe(0);
    expect(fs.readFileSync(path.join(dir, "image.plan.yaml"), "utf8")).toBe(first);
  });

  it("passes when the inputs still give the committed plan", () => {
    expect(run(["check", "example.yaml"])).toMatchObject({ status: 0, stdout: "image.plan.yaml is up to date (5 layers, 4 store items)\n", stderr: "" });
  });

  it("fails with the differences and the command that updates the plan", () => {
    writeExample(dir, "example", { hello: "2.13" });
    const r = run(["check", "example.yaml"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("layerpack: image.plan.yaml is out of date; update it with:\n  layerpack plan example.yaml --write image.plan.yaml\n");
    const [p12, p13, h12, h13] = [item("profile-2.12"), item("profile-2.13"), item("hello-2.12"), item("hello-2.13")];
    expect(r.stdout.replace(/sha256:[0-9a-f]{12}\.\.\./g, "sha256:…")).toBe(
      [
        "layerpack diff: image.plan.yaml -> the current inputs (plans)",
        "A host that has image.plan.yaml pulls 3 of 5 layers to get the current inputs: 1760 bytes (1.7 KiB) of store items; 2 store items changed or added: 1760 bytes (1.7 KiB).",
        "",
        "note: the inputs' fingerprint changed: sha256:… -> sha256:…",
        "",
        "Layers of the current inputs, bottom first:",
        "  1  unchanged  glibc-2.39  [1 item, 12760 bytes]",
        "  2  unchanged  dash-0.5.12  [1 item, 3104 bytes]",
        "  3  added      profile-2.13  [1 item, 1192 bytes]",
        "  4  added      hello-2.13  [1 item, 568 bytes]",
        "  5  changed    customisation  [0 items, 0 bytes]",
        `       +/bin -> ${p13}/bin`,
        `       +/lib -> ${p13}/lib`,
        `       -/bin -> ${p12}/bin`,
        `       -/lib -> ${p12}/lib`,
        "  -  removed    (was 3)  profile-2.12  [1 item, 1192 bytes]",
        "  -  removed    (was 4)  hello-2.12  [1 item, 568 bytes]",
        "",
        "Added items (2):",
        `  + ${p13} (1192 bytes)`,
        `  + ${h13} (568 bytes)`,
        "",
        "Removed items (2):",
        `  - ${p12} (1192 bytes)`,
        `  - ${h12} (568 bytes)`,
        "",
      ].join("\n"),
    );
  });

  it("passes again after running the command it printed", () => {
    fs.copyFileSync(path.join(dir, "image.plan.yaml"), path.join(dir, "old.plan.yaml"));
    expect(run(["plan", "example.yaml", "--write", "image.plan.yaml"]).status).toBe(0);
    expect(run(["check", "example.yaml"]).status).toBe(0);
  });

  it("fails when only the plan file was edited, and names the layer", () => {
    const file = path.join(dir, "edited.plan.yaml");
    fs.writeFileSync(file, fs.readFileSync(path.join(dir, "image.plan.yaml"), "utf8").replace('reason: "size rank 1: 12760 bytes"', "reason: mine"));
    const r = run(["check", "example.yaml", "--plan", "edited.plan.yaml"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`note: layer 1's reason changed: "mine" -> "size rank 1: 12760 bytes"`);
    expect(r.stderr).toContain("layerpack plan example.yaml --write edited.plan.yaml");
  });
});

describe("bad plan files", () => {
  it("a missing plan file names the command that writes it", () => {
    writeExample(dir, "fresh");
    const r = run(["check", "fresh.yaml", "--plan", "fresh.plan.yaml"]);
    expect(r).toMatchObject({ status: 1, stderr: "layerpack: no plan file fresh.plan.yaml; write it with: layerpack plan fresh.yaml --write fresh.plan.yaml\n" });
  });

  it("the plan of another config", () => {
    const r = run(["check", "fresh.yaml", "--plan", "image.plan.yaml"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'layerpack: image.plan.yaml is the plan of image "example", not of "fresh" (fresh.yaml): give this config\'s plan file, or write it with layerpack plan --write\n',
    );
  });

  it("a newer format version, and a malformed file with line:column", () => {
    const text = fs.readFileSync(path.join(dir, "image.plan.yaml"), "utf8");
    fs.writeFileSync(path.join(dir, "v2.plan.yaml"), text.replace("version: 1", "version: 2"));
    expect(run(["check", "example.yaml", "--plan", "v2.plan.yaml"]).stderr).toBe(
      "layerpack: v2.plan.yaml: plan format version 2 is newer than this layerpack reads (version 1); upgrade layerpack, or rewrite the plan with this one (layerpack plan --write)\n",
    );
    fs.writeFileSync(path.join(dir, "bad.plan.yaml"), text.replace("max: 100", "max: [100"));
    const bad = run(["diff", "bad.plan.yaml", "image.plan.yaml"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^layerpack: bad\.plan\.yaml:8:1: not valid YAML or JSON: Flow sequence/);
  });
});

describe("diff", () => {
  it("of two plan files, as text, markdown and JSON", () => {
    const text = run(["diff", "old.plan.yaml", "image.plan.yaml"]);
    expect(text.status).toBe(0);
    expect(text.stdout.split("\n")[1]).toBe(
      "A host that has old.plan.yaml pulls 3 of 5 layers to get image.plan.yaml: 1760 bytes (1.7 KiB) of store items; 2 store items changed or added: 1760 bytes (1.7 KiB).",
    );
    const md = run(["diff", "old.plan.yaml", "image.plan.yaml", "--format", "markdown"]).stdout;
    expect(md).toContain("| 3 | added | profile-2.13 | 1 | 1192 |  |");
    const json = JSON.parse(run(["diff", "old.plan.yaml", "image.plan.yaml", "--format", "json"]).stdout);
    expect(json.pull).toEqual({ layers: 3, bytes: 1760 });
    expect(json.changed).toEqual({ items: 2, bytes: 1760 });
    expect(run(["diff", "old.plan.yaml", "image.plan.yaml", "--format", "html"])).toMatchObject({ status: 2, stderr: expect.stringMatching(/^layerpack diff: --format html: use text, markdown, json\n\nUsage: layerpack diff/) });
    expect(run(["diff", "old.plan.yaml"]).status).toBe(2);
  });

  it("of two built images: layers pulled by digest, with their compressed sizes", async () => {
    writeExample(dir, "v1", { hello: "2.12" });
    writeExample(dir, "v2", { hello: "2.13" });
    for (const v of ["v1", "v2"]) expect(run(["build", `${v}.yaml`, "-q", "--no-cache"]).status).toBe(0);
    const r = run(["diff", "v1.tar", "v2.tar", "--format", "json"]);
    expect(r.stderr).toBe("");
    const d = JSON.parse(r.stdout);
    // Independently: the layer entries of v2 whose names (<digest>.tar.gz) v1 lacks, and their sizes.
    const [a, b] = [await entrySizes(path.join(dir, "v1.tar")), await entrySizes(path.join(dir, "v2.tar"))];
    const fresh = [...b].filter(([name]) => name.endsWith(".tar.gz") && !a.has(name));
    expect(fresh).toHaveLength(3); // hello, profile, customisation
    expect(d.pull.layers).toBe(3);
    expect(d.pull.bytes).toBe(fresh.reduce((n, [, size]) => n + size, 0));
    expect(d.layers.map((l: { status: string }) => l.status)).toEqual(["unchanged", "unchanged", "added", "added", "changed", "removed", "removed"]);
    expect(d.added.map((i: { path: string }) => i.path).sort()).toEqual([item("hello-2.13"), item("profile-2.13")].sort());
    // Store items' file bytes: hello-2.13's script.
    expect(d.added.find((i: { path: string }) => i.path === item("hello-2.13")).size).toBe(`#!${item("dash-0.5.12")}/bin/sh\necho "Hello 2.13"\n`.length);
    const same = JSON.parse(run(["diff", "v1.tar", "v1.tar", "--format", "json"]).stdout);
    expect(same.pull).toEqual({ layers: 0, bytes: 0, uncompressedBytes: 0 });
    // A store layer's /gnu and /gnu/store directories are not content besides its items: no "+ customisation".
    const labels = d.layers.map((l: { label: string }) => l.label);
    expect(labels.filter((l: string) => l.endsWith("+ customisation"))).toEqual([]);
    expect(labels).toContain("customisation");
  });

  it("of images in any form, by diff_id: a copy skopeo re-compressed to zstd is the same image; an update still shows", () => {
    // skopeo (the real tool) re-compresses every layer: new digests, same diff_ids.
    const copy = spawnSync("skopeo", ["copy", "--quiet", "--dest-compress-format", "zstd", "--dest-compress", `docker-archive:${path.join(dir, "v1.tar")}`, `oci:${path.join(dir, "v1-zstd")}:v1`], { encoding: "utf8" });
    expect(copy.status, copy.stderr).toBe(0);
    const archive = spawnSync("skopeo", ["copy", "--quiet", `docker-archive:${path.join(dir, "v2.tar")}`, `oci-archive:${path.join(dir, "v2.oci.tar")}:v2`], { encoding: "utf8" });
    expect(archive.status, archive.stderr).toBe(0);
    const same = run(["diff", "docker-archive:v1.tar", "oci:v1-zstd:v1", "--format", "json"]);
    expect(same.stderr).toBe("");
    const d = JSON.parse(same.stdout);
    expect(d.pull).toEqual({ layers: 0, bytes: 0, uncompressedBytes: 0 });
    expect(d.layers.every((l: { status: string }) => l.status === "unchanged")).toBe(true);
    // The same update as between the two docker archives, read from an OCI layout and an OCI archive.
    const direct = JSON.parse(run(["diff", "v1.tar", "v2.tar", "--format", "json"]).stdout);
    const mixed = JSON.parse(run(["diff", "oci:v1-zstd:v1", "oci-archive:v2.oci.tar:v2", "--format", "json"]).stdout);
    expect(mixed.pull.layers).toBe(direct.pull.layers);
    expect(mixed.added).toEqual(direct.added);
    expect(mixed.layers.map((l: { status: string }) => l.status)).toEqual(direct.layers.map((l: { status: string }) => l.status));
    // A name of the wrong kind is told so, with the name to use.
    expect(run(["diff", "docker-archive:v1-zstd", "v2.tar"]).stderr).toMatch(/is an OCI layout directory, not a docker archive; name it oci:/);
    // inspect takes the same names.
    const inspected = JSON.parse(run(["inspect", "oci:v1-zstd:v1", "--json"]).stdout);
    expect(inspected.kind).toBe("oci-layout");
    expect(inspected.names).toEqual(["v1"]);
    expect(inspected.layers.every((l: { mediaType: string }) => l.mediaType.endsWith("+zstd"))).toBe(true);
  });

  it("of images for different architectures: explained, not a crash", () => {
    writeExample(dir, "arm", { hello: "2.12" });
    fs.writeFileSync(path.join(dir, "arm.yaml"), fs.readFileSync(path.join(dir, "arm.yaml"), "utf8").replace("architecture: amd64", "architecture: arm64"));
    expect(run(["build", "arm.yaml", "-q", "--no-cache"]).status).toBe(0);
    const r = run(["diff", "v1.tar", "arm.tar"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "layerpack: v1.tar is an image for linux/amd64 and arm.tar one for linux/arm64: a host runs one platform, so it never updates from one to the other and no layer diff between them means anything. Compare two builds for the same architecture (the spec's architecture and os).\n",
    );
  });

  it("of a tar that is not a docker archive: names what is missing", async () => {
    const p = pack();
    p.entry({ name: "hello.txt" }, "hi\n");
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    fs.writeFileSync(path.join(dir, "plain.tar"), Buffer.concat(chunks));
    expect(run(["diff", "plain.tar", "v1.tar"])).toMatchObject({
      status: 1,
      stderr: `layerpack: ${path.join(dir, "plain.tar")} is neither an OCI archive (no oci-layout) nor a docker archive (no manifest.json)\n`,
    });
  });

  it("of a plan and an image, or of something else: a clear message", () => {
    expect(run(["diff", "old.plan.yaml", "v1.tar"]).stderr).toBe("layerpack: old.plan.yaml is a plan file and v1.tar is an image: diff compares two plan files or two images\n");
    expect(run(["diff", "nope.yaml", "v1.tar"]).stderr).toBe("layerpack: cannot read nope.yaml: no such file\n");
    // A plain name not on disk may be a registry image, but the message says first that no such file is here.
    expect(run(["diff", "localhost:1/nope", "v1.tar"]).stderr).toMatch(/^layerpack: localhost:1\/nope: no such file or directory, and as the registry image localhost:1\/nope: cannot reach registry localhost:1/);
    expect(run(["inspect", "docker://localhost:1/nope"]).stderr).toMatch(/^layerpack: cannot reach registry localhost:1/);
  });
});

describe("sticky plans through the command line", () => {
  it("layers.previous: the first run plans without it, check passes, an update keeps the grouping", () => {
    const sticky = (hello: string) => writeExample(dir, "sticky", { hello, max: 4, extra: "previous: sticky.plan.yaml" });
    sticky("2.12");
    const first = run(["plan", "sticky.yaml", "--write", "sticky.plan.yaml"]);
    expect(first.stderr).toBe(`layerpack: note: layers.previous names ${path.join(dir, "sticky.plan.yaml")}, which does not exist yet; planned without it\nwrote sticky.plan.yaml: 4 layers, 4 store items, 17624 bytes\n`);
    expect(run(["check", "sticky.yaml", "--plan", "sticky.plan.yaml"]).status).toBe(0);
    // max 4: glibc and dash have their own layers, hello and profile share one.
    fs.copyFileSync(path.join(dir, "sticky.plan.yaml"), path.join(dir, "sticky-old.plan.yaml"));
    sticky("2.13");
    expect(run(["plan", "sticky.yaml", "--write", "sticky.plan.yaml"]).status).toBe(0);
    const d = JSON.parse(run(["diff", "sticky-old.plan.yaml", "sticky.plan.yaml", "--format", "json"]).stdout);
    expect(d.layers.map((l: { status: string }) => l.status)).toEqual(["unchanged", "unchanged", "added", "changed", "removed"]);
    expect(d.pull).toEqual({ layers: 2, bytes: 1760 });
    // --previous on build: an explicit file must exist.
    expect(run(["build", "sticky.yaml", "-q", "--no-cache", "--previous", "missing.plan.yaml"]).stderr).toBe(
      "layerpack: --previous: cannot read plan file missing.plan.yaml: no such file\n",
    );
    expect(run(["build", "sticky.yaml", "-q", "--no-cache", "--previous", "sticky-old.plan.yaml"]).status).toBe(0);
  });
});
