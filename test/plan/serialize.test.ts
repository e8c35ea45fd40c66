import { describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { planLayers } from "../../src/plan/index.ts";
import { parsePlan, planToJson, planToYaml } from "../../src/plan/serialize.ts";
import type { LayerPlan } from "../../src/plan/types.ts";
import { closureOf, prng, randomClosure, specOf, storePath } from "./fixtures.ts";

const small = planLayers(
  specOf({
    name: "hello",
    architecture: "arm64",
    variant: "v8",
    layers: { max: 3, strategy: "size" },
    symlinks: ["/bin=bin"],
    paths: [
      { path: "/tmp", type: "directory", mode: "1777" },
      { path: "/etc/motd", type: "file", content: "hi: there\n# not a comment\n" },
    ],
  }),
  closureOf(
    [
      { name: "profile", size: 10, refs: ["hello"] },
      { name: "hello", size: 300 },
      { name: "glibc", size: 200 },
    ],
    { profile: "profile" },
  ),
);

describe("planToYaml", () => {
  it("writes the stable, reviewable form", () => {
    const [hello, glibc, profile] = ["hello", "glibc", "profile"].map((n) => storePath(n));
    const shared = [glibc!, profile!].sort();
    const sizeOf = (p: string) => (p === glibc ? 200 : 10);
    expect(planToYaml(small)).toBe(
      [
        "# layerpack layer plan for hello: 3 layers, 3 store items, 510 bytes (bottom layer first)",
        "",
        "version: 1",
        "name: hello",
        "storeDir: /gnu/store",
        "strategy: size",
        "max: 3",
        "platform:",
        "  os: linux",
        "  architecture: arm64",
        "  variant: v8",
        "totals:",
        "  items: 3",
        "  bytes: 510",
        "  layers: 3",
        "layers:",
        "  - kind: store",
        "    size: 300",
        "    reason: \"size rank 1: 300 bytes\"",
        "    items:",
        `      - path: ${hello}`,
        "        size: 300",
        "  - kind: store",
        "    size: 210",
        "    reason: the 2 smallest items share this layer (max 3 layers)",
        "    items:",
        ...shared.flatMap((p) => [`      - path: ${p}`, `        size: ${sizeOf(p)}`]),
        "  - kind: customisation",
        "    entries:",
        "      - path: /bin",
        "        type: symlink",
        `        target: ${profile}/bin`,
        "      - path: /etc",
        "        type: directory",
        '        mode: "755"',
        "      - path: /etc/motd",
        "        type: file",
        '        mode: "644"',
        "        content: |",
        "          hi: there",
        "          # not a comment",
        "      - path: /tmp",
        "        type: directory",
        '        mode: "1777"',
        "",
      ].join("\n"),
    );
  });

  it("fixes the key order whatever order the plan object has", () => {
    const scrambled = reverseKeys(small) as LayerPlan;
    expect(Object.keys(scrambled)[0]).toBe("totals");
    expect(planToYaml(scrambled)).toBe(planToYaml(small));
    expect(planToJson(scrambled)).toBe(planToJson(small));
  });
});

/** A deep copy with every object's keys in reverse order. */
function reverseKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(reverseKeys);
  if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  return x;
}

describe("round trips", () => {
  it("YAML and JSON read back to the same plan, and write the same bytes again", () => {
    const rand = prng(11);
    const plans = [small];
    for (let i = 0; i < 10; i++) {
      const max = 1 + Math.floor(rand() * 20);
      plans.push(planLayers(specOf({ roots: ["/x"], layers: { max, strategy: i % 2 ? "size" : "popularity" } }), randomClosure(rand, 15)));
    }
    for (const plan of plans) {
      const yaml = planToYaml(plan);
      const json = planToJson(plan);
      expect(yaml.endsWith("\n")).toBe(true);
      expect(json.endsWith("}\n")).toBe(true);
      expect(parsePlan(yaml)).toEqual(plan);
      expect(parsePlan(json)).toEqual(plan);
      expect(planToYaml(parsePlan(yaml))).toBe(yaml);
      expect(planToJson(parsePlan(json))).toBe(json);
    }
  });

  it("keeps max 1's merged entries and awkward strings", () => {
    const plan = planLayers(
      specOf({ layers: { max: 1 }, paths: [{ path: "/etc/x: y", type: "file", content: "- 'quoted' \"both\"\n\ttab\n", mode: "0600" }] }),
      closureOf([{ name: "profile" }], { profile: "profile" }),
    );
    expect(parsePlan(planToYaml(plan))).toEqual(plan);
    expect(parsePlan(planToJson(plan))).toEqual(plan);
  });
});

describe("parsePlan errors", () => {
  it("names file, line and column for bad YAML", () => {
    expect(() => parsePlan("version: 1\nname: [oops\n", "plan.yaml")).toThrow(PlanError);
    expect(() => parsePlan("version: 1\nname: [oops\n", "plan.yaml")).toThrow(/^plan\.yaml:\d+:\d+: not valid YAML or JSON/);
    expect(() => parsePlan("a: 1\na: 2\n", "dup.yaml")).toThrow(/dup\.yaml:2:1/);
  });

  it("names the key path of a schema violation", () => {
    const bad = planToYaml(small).replace("size: 300\n    reason", "size: -3\n    reason");
    expect(() => parsePlan(bad, "p.yaml")).toThrow(/^p\.yaml:\d+:\d+: not a valid layer plan: layers\[0\]\.size: must be at least 0$/);
    const extra = planToJson(small).replace('"version": 1', '"version": 1, "surprise": 2');
    expect(() => parsePlan(extra)).toThrow(/surprise/);
  });
});

describe("characters a reviewer cannot see", () => {
  // Bidi marks, overrides and isolates, zero-width joiners, the BOM, C1 controls and DEL, besides ESC.
  const hidden = ["\u202e", "\u200e", "\u200f", "\u202a", "\u2066", "\u2069", "\u200d", "\ufeff", "\u009b", "\u007f", "\u001b"];
  const sneaky = `gnu\u202eexe.txt`;
  const plan = planLayers(
    specOf({
      paths: [
        { path: `/etc/${sneaky}`, type: "file", content: `line one ${hidden.join("")}\nline two\n` },
        { path: "/bin/x", type: "symlink", target: `/opt/\u2066y\u2069` },
      ],
    }),
    closureOf([{ name: "profile", refs: [`a\u202e`] }, { name: `a\u202e` }], { profile: "profile" }),
  );

  it("are escaped in the YAML (\\u202e, as ESC is \\x1b), which reads back to the same plan", () => {
    const yaml = planToYaml(plan);
    for (const c of hidden) expect(yaml).not.toContain(c);
    expect(yaml).toContain(`path: "/etc/gnu\\u202eexe.txt"`);
    expect(yaml).toContain(`target: "/opt/\\u2066y\\u2069"`);
    expect(yaml).toContain(`content: "line one \\u202e\\u200e\\u200f\\u202a\\u2066\\u2069\\u200d\\ufeff\\x9b\\x7f\\e\\nline two\\n"`);
    expect(yaml).toMatch(/- path: "\/gnu\/store\/[0-9a-z]{32}-a\\u202e"/);
    expect(parsePlan(yaml)).toEqual(plan);
  });

  it("are escaped in the JSON (plan --json) as \\uNNNN, which parses back to the same plan", () => {
    const json = planToJson(plan);
    for (const c of hidden) expect(json).not.toContain(c);
    expect(json).toContain(`"path": "/etc/gnu\\u202eexe.txt"`);
    expect(json).toContain(`\\u009b\\u007f\\u001b`);
    expect(parsePlan(json)).toEqual(plan);
    expect(planToJson(small)).not.toMatch(/\\u/);
  });

  it("leave strings without them as they were", () => {
    expect(planToYaml(small)).not.toMatch(/\\u|\\x/);
  });
});
