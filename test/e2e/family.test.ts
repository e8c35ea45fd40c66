/**
 * Family plans through the command line: two images from one store planned together with `plan --family`, then
 * built with the family plan as layers.previous: the layer of what they share is the same blob in both archives.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extract } from "tar-stream";
import { makeStore, type FakeStore } from "../fixtures/store.ts";
import { layerpack } from "./cli.ts";

let dir: string;
let store: FakeStore;
const run = (args: string[]) => layerpack(args, { cwd: dir });

function config(name: string, app: string): void {
  fs.writeFileSync(
    path.join(dir, `${name}.yaml`),
    `name: ${name}
store: { dir: /gnu/store, root: ./store }
roots: [${store.path(app)}]
closure: { from: scan }
layers: { max: 3, strategy: sharing, previous: family.plan.yaml }
output: { path: ${name}.tar }
`,
  );
}

/** The layer digests of a docker archive, read with tar-stream (not layerpack's reader). */
async function layersOf(file: string): Promise<string[]> {
  const ex = extract();
  fs.createReadStream(file).pipe(ex);
  let manifest = "";
  for await (const e of ex) {
    if (e.header.name === "manifest.json") for await (const chunk of e) manifest += String(chunk);
    else e.resume();
  }
  return (JSON.parse(manifest) as { Layers: string[] }[])[0]!.Layers;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-family-"));
  store = makeStore(path.join(dir, "store"), "/gnu/store", [
    { name: "glibc-2.39", files: { "lib/libc.so.6": "libc ".repeat(2000) } },
    { name: "dash-0.5.12", files: { "bin/dash": { content: "dash ".repeat(400), executable: true } }, refs: ["glibc-2.39"] },
    { name: "hello-2.12", files: { "bin/hello": { content: "#!{{dash-0.5.12}}/bin/dash\necho hello\n", executable: true } }, refs: ["dash-0.5.12"] },
    { name: "greet-1.0", files: { "bin/greet": { content: "#!{{dash-0.5.12}}/bin/dash\necho greetings\n", executable: true } }, refs: ["dash-0.5.12"] },
  ]);
  config("hello", "hello-2.12");
  config("greet", "greet-1.0");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("plan --family", () => {
  it("writes one plan for both images, and their builds share the layer of what they have in common", async () => {
    const written = run(["plan", "--family", "hello.yaml", "greet.yaml", "--write", "family.plan.yaml"]);
    expect(written).toMatchObject({ status: 0, stdout: "" });
    expect(written.stderr).toMatch(/^wrote family\.plan\.yaml: 3 layers, 4 store items, \d+ bytes\n$/);
    const text = fs.readFileSync(path.join(dir, "family.plan.yaml"), "utf8");
    expect(text).toContain("family:\n  - hello\n  - greet\n");
    expect(text).toContain('reason: "items of every image of the family; ');
    expect(text).toContain('reason: "items of image greet only; ');
    // The same inputs write the same bytes.
    expect(run(["plan", "--family", "hello.yaml", "greet.yaml", "--write", "again.plan.yaml"]).status).toBe(0);
    expect(fs.readFileSync(path.join(dir, "again.plan.yaml"), "utf8")).toBe(text);

    for (const name of ["hello", "greet"]) expect(run(["build", `${name}.yaml`, "--quiet"])).toMatchObject({ status: 0 });
    const hello = await layersOf(path.join(dir, "hello.tar"));
    const greet = await layersOf(path.join(dir, "greet.tar"));
    expect(hello).toHaveLength(3);
    expect(greet).toHaveLength(3);
    expect(hello[0]).toBe(greet[0]); // glibc and dash
    expect(hello[1]).not.toBe(greet[1]); // each application
    // Each image's own plan keeps the family's grouping.
    const own = run(["plan", "hello.yaml"]).stdout;
    expect(own).toMatch(/items:\n {6}- path: \/gnu\/store\/\w{32}-dash-0\.5\.12\n[^]*- path: \/gnu\/store\/\w{32}-glibc-2\.39\n/);
  });

  it("refuses one config, several configs without --family, and --previous", () => {
    expect(run(["plan", "--family", "hello.yaml"])).toMatchObject({ status: 2, stderr: expect.stringContaining("--family needs at least two configs") });
    expect(run(["plan", "hello.yaml", "greet.yaml"])).toMatchObject({ status: 2, stderr: expect.stringContaining("too many arguments: greet.yaml (give several configs with --family)") });
    expect(run(["plan", "--family", "hello.yaml", "greet.yaml", "--previous", "x.yaml"])).toMatchObject({ status: 2, stderr: expect.stringContaining("--previous cannot be used with --family") });
    expect(run(["plan", "--family", "hello.yaml", "hello.yaml"])).toMatchObject({ status: 1, stderr: 'layerpack: hello.yaml:1:7: name: two images of the family are named "hello": give each config its own name\n' });
  });

  it("says which config's key makes the family impossible, at its line:column", () => {
    fs.writeFileSync(path.join(dir, "other.yaml"), fs.readFileSync(path.join(dir, "greet.yaml"), "utf8").replace("name: greet", "name: other").replace("strategy: sharing", "strategy: size"));
    expect(run(["plan", "--family", "hello.yaml", "other.yaml"])).toMatchObject({
      status: 1,
      stderr: 'layerpack: other.yaml:5:29: layers.strategy: image "other" uses size and "hello" uses sharing: a family is planned with one strategy\n',
    });
    fs.writeFileSync(path.join(dir, "other.yaml"), fs.readFileSync(path.join(dir, "greet.yaml"), "utf8").replace("name: greet", "name: other").replace("max: 3", "max: 1"));
    expect(run(["plan", "--family", "hello.yaml", "other.yaml"])).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/^layerpack: other\.yaml:5:\d+: layers\.max: 1 \(image "other"\) leaves no store layer/),
    });
  });
});
