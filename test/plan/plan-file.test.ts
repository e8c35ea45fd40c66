import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { planLayers } from "../../src/plan/index.ts";
import { parsePlanFile, planFileText, previousPlanFor, readPlanFile, writePlanFile } from "../../src/plan/plan-file.ts";
import { GOLDEN_DIR, planFileFor, writeExample } from "../golden/example.ts";
import { closureOf, specOf } from "./fixtures.ts";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-planfile-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const GOLDENS = [
  { file: "example.size.plan.yaml", options: { strategy: "size" as const } },
  { file: "example.popularity.plan.yaml", options: { strategy: "popularity" as const } },
  { file: "example.max3.plan.yaml", options: { strategy: "size" as const, max: 3 } },
];

describe("golden plan files of the (synthetic) example", () => {
  for (const g of GOLDENS) {
    it(`${g.file} is what plan --write gives, on any machine`, async () => {
      // Two stores in two directories: the store root (a host path) must not reach the file.
      const a = await planFileFor(writeExample(path.join(dir, `${g.file}-a`), "example", g.options));
      fs.mkdirSync(path.join(dir, "elsewhere"), { recursive: true });
      const b = await planFileFor(writeExample(fs.mkdtempSync(path.join(dir, "elsewhere/")), "example", g.options));
      expect(b).toBe(a);
      expect(a).not.toContain(dir);
      const golden = path.join(GOLDEN_DIR, g.file);
      if (process.env.UPDATE_GOLDEN) fs.writeFileSync(golden, a);
      expect(a).toBe(fs.readFileSync(golden, "utf8"));
      expect(parsePlanFile(a).fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    });
  }
});

const plan = planLayers(specOf({ name: "hello", layers: { max: 3, strategy: "size" } }), closureOf([{ name: "profile", size: 10, refs: ["a"] }, { name: "a", size: 50 }], { profile: "profile" }));
const FP = `sha256:${"ab".repeat(32)}`;

describe("parsePlanFile", () => {
  it("reads back what planFileText writes", () => {
    expect(parsePlanFile(planFileText(plan, FP))).toEqual({ ...plan, fingerprint: FP });
  });

  it("names a newer format version instead of a schema error", () => {
    const text = planFileText(plan, FP).replace("version: 1", "version: 2");
    expect(() => parsePlanFile(text, { file: "image.plan.yaml" })).toThrow(
      "image.plan.yaml: plan format version 2 is newer than this layerpack reads (version 1); upgrade layerpack",
    );
  });

  it("refuses the plan of another config", () => {
    expect(() => parsePlanFile(planFileText(plan, FP), { file: "image.plan.yaml", expectName: "other", configLabel: "other.yaml" })).toThrow(
      'image.plan.yaml is the plan of image "hello", not of "other" (other.yaml): give this config\'s plan file, or write it with layerpack plan --write',
    );
  });

  it("gives line:column for YAML syntax errors", () => {
    const text = planFileText(plan, FP).replace("strategy: size", "strategy: [size");
    expect(() => parsePlanFile(text, { file: "p.yaml" })).toThrow(/^p\.yaml:\d+:\d+: not valid YAML or JSON: /);
  });

  it("gives line:column of the offending value for schema errors", () => {
    const text = planFileText(plan, FP).replace("    size: 50\n", "    size: fifty\n");
    const line = text.split("\n").findIndex((l) => l === "    size: fifty") + 1;
    expect(() => parsePlanFile(text, { file: "p.yaml" })).toThrow(`p.yaml:${line}:11: not a valid layer plan: layers[0].size: expected number, got string "fifty"`);
  });

  it("says plainly what is wrong, one line per problem at its line:column, not zod's text", () => {
    const text = planFileText(plan, FP).replace("    size: 50\n", "    size: 1e400\n").replace("max: 3\n", "max: 2.5\nstrategi: size\n");
    const lineOf = (l: string) => text.split("\n").findIndex((x) => x === l) + 1;
    let message = "";
    try {
      parsePlanFile(text, { file: "p.yaml" });
    } catch (e) {
      message = (e as PlanError).message;
    }
    expect(message.split("\n")).toEqual([
      `p.yaml:${lineOf("max: 2.5")}:6: not a valid layer plan: max: must be a whole number, not 2.5`,
      `p.yaml:${lineOf("strategi: size")}:1: strategi: unknown key "strategi" (did you mean "strategy"?)`,
      `p.yaml:${lineOf("    size: 1e400")}:11: layers[0].size: must be a finite number, not Infinity`,
    ]);
    expect(message).not.toMatch(/Invalid input|more problems/);
  });

  it("points at the parent of a missing key, and refuses a bad fingerprint", () => {
    const noName = planFileText(plan, FP).replace("name: hello\n", "");
    expect(() => parsePlanFile(noName, { file: "p.yaml" })).toThrow(/^p\.yaml:3:1: not a valid layer plan: name: is required \(string\)$/);
    const badFp = planFileText(plan, FP).replace(FP, "sha256:xyz");
    expect(() => parsePlanFile(badFp, { file: "p.yaml" })).toThrow(/^p\.yaml:8:14: not a valid layer plan: fingerprint: must be sha256: and 64 hex digits/);
  });

  it("refuses something that is not a mapping", () => {
    expect(() => parsePlanFile("- 1\n- 2\n", { file: "p.yaml" })).toThrow("p.yaml: not a layer plan");
  });

  it("refuses a file of more nodes than any real plan before parsing it (8 MB of [0,0,... took 4 GB), and a plan of over 1000 layers", () => {
    const flood = `layers: [${"0,".repeat(600_000)}0]\n`;
    expect(() => parsePlanFile(flood, { file: "flood.yaml" })).toThrow("flood.yaml: not a layer plan: it has more than 500,000 lines and list items, more than any plan of a real closure (about 4 per store item in YAML, 7 in JSON)");
    const text = planFileText(plan, FP);
    const many = text.replace(/^layers:\n/m, `layers:\n${"  - kind: custom\n    entries: []\n".repeat(1001)}`);
    expect(() => parsePlanFile(many, { file: "many.yaml" })).toThrow(/many\.yaml:\d+:\d+: .*layers.*1000/);
  });
});

describe("reading, writing and previous plans", () => {
  it("writes atomically and reads back; a missing file is named", () => {
    const f = path.join(dir, "w.plan.yaml");
    writePlanFile(f, planFileText(plan, FP));
    expect(readPlanFile(f).name).toBe("hello");
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp"))).toEqual([]);
    expect(() => readPlanFile(path.join(dir, "nope.yaml"), { shown: "nope.yaml" })).toThrow("cannot read plan file nope.yaml: no such file");
  });

  it("layers.previous may not exist yet; --previous must", () => {
    const spec = { name: "hello", layers: { previous: "missing.plan.yaml" } };
    expect(previousPlanFor({ spec, configDir: dir, cwd: dir })).toEqual({ file: path.join(dir, "missing.plan.yaml"), missing: true });
    expect(() => previousPlanFor({ spec, configDir: dir, cwd: dir, explicit: "missing.plan.yaml" })).toThrow("--previous: cannot read plan file missing.plan.yaml");
    const f = path.join(dir, "prev.plan.yaml");
    writePlanFile(f, planFileText(plan, FP));
    expect(previousPlanFor({ spec: { name: "hello", layers: { previous: "prev.plan.yaml" } }, configDir: dir, cwd: "/" }).plan?.name).toBe("hello");
    expect(() => previousPlanFor({ spec: { name: "other", layers: { previous: "prev.plan.yaml" } }, configDir: dir, cwd: dir })).toThrow(
      new PlanError('layers.previous: prev.plan.yaml is the plan of image "hello", not of "other": give this config\'s plan file, or write it with layerpack plan --write'),
    );
  });
});

describe("a config where a plan goes", () => {
  it("is named as a config, with the command that writes its plan", () => {
    expect(() => parsePlanFile("name: hello\nprofile: ./result\nlayers: { max: 10 }\n", { file: "image.config.yaml" })).toThrow(
      new PlanError("image.config.yaml: this is an image config, not a layer plan; write its plan with layerpack plan image.config.yaml --write FILE"),
    );
  });
});

describe("a store item listed twice", () => {
  const two = planLayers(specOf({ name: "hello", layers: { max: 4, strategy: "size" } }), closureOf([{ name: "profile", size: 10, refs: ["a", "b"] }, { name: "a", size: 50 }, { name: "b", size: 30 }], { profile: "profile" }));
  const text = planFileText(two, FP);
  const store = two.layers.filter((l) => l.kind === "store");
  const [first, second] = [store[0]!.items[0]!.path, store[1]!.items[0]!.path];
  const lineOf = (t: string, s: string, from = 0) => t.split("\n").findIndex((l, i) => i >= from && l === s) + 1;

  it("in two layers is refused, naming the item, both layers and their lines", () => {
    const edited = text.replace(`      - path: ${second}\n`, `      - path: ${first}\n`);
    const line = lineOf(edited, `      - path: ${first}`);
    const again = lineOf(edited, `      - path: ${first}`, line);
    expect(() => parsePlanFile(edited, { file: "p.yaml" })).toThrow(
      new PlanError(`p.yaml:${again}:9: not a valid layer plan: layers[1].items[0]: ${first} is in layers[0] too (line ${line}); a store item lies in exactly one layer`),
    );
  });

  it("twice in one layer is refused too, and in a platform's plan", () => {
    const twice = text.replace(`      - path: ${first}\n        size: 50\n`, `      - path: ${first}\n        size: 50\n      - path: ${first}\n        size: 50\n`);
    expect(twice).not.toBe(text);
    expect(() => parsePlanFile(twice, { file: "p.yaml" })).toThrow(/^p\.yaml:\d+:9: not a valid layer plan: layers\[0\]\.items\[1\]: \S+-a is listed twice in layers\[0\] \(items\[0\], line \d+\)$/);
    const platforms = planFileText({ ...two, platforms: [two, { ...two, layers: [store[0]!, store[0]!, ...two.layers.slice(2)] }] }, FP);
    expect(() => parsePlanFile(platforms)).toThrow(/^plan:\d+:\d+: not a valid layer plan: platforms\[1\]\.layers\[1\]\.items\[0\]: \S+-a is in platforms\[1\]\.layers\[0\] too \(line \d+\)/);
  });

  it("in a layer and in base.items is refused: the base image holds it, so no layer packs it", () => {
    const digest = `sha256:${"1".repeat(64)}`;
    const onBase = planLayers(
      specOf({ name: "hello", layers: { max: 5, strategy: "size" } }),
      closureOf([{ name: "profile", size: 10, refs: ["a", "b", "c"] }, { name: "a", size: 50 }, { name: "b", size: 30 }, { name: "c", size: 20 }], { profile: "profile" }),
      { base: { image: "base:1", id: digest, layers: [{ digest, diffId: digest, size: 1, mediaType: "application/vnd.oci.image.layer.v1.tar" }], paths: [] } },
    );
    const packed = onBase.layers.find((l) => l.kind === "store")!.items[0]!.path;
    const text = planFileText({ ...onBase, base: { ...onBase.base!, items: [packed] } }, FP);
    expect(() => parsePlanFile(text, { file: "p.yaml" })).toThrow(
      new RegExp(`^p\\.yaml:\\d+:9: not a valid layer plan: layers\\[\\d\\]\\.items\\[0\\]: ${packed} is in base\\.items too \\(line \\d+\\): the base image holds it, so no layer of this plan packs it$`),
    );
    const twice = planFileText({ ...onBase, base: { ...onBase.base!, items: ["/gnu/store/x", "/gnu/store/x"] } }, FP);
    expect(() => parsePlanFile(twice, { file: "p.yaml" })).toThrow(/^p\.yaml:\d+:\d+: not a valid layer plan: base\.items\[1\]: \/gnu\/store\/x is listed twice in base\.items \(items\[0\], line \d+\)$/);
  });
});
