/**
 * A synthetic twin of the example store (glibc, dash, hello, profile), built by code so its store paths and NAR
 * sizes are the same on every machine (the real example copies the host's libc). Used for the golden plan files
 * in this directory and by the check/diff end-to-end tests. Regenerate the goldens with
 * `UPDATE_GOLDEN=1 npx vitest run test/plan/plan-file.test.ts` and review the diff.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSpec } from "../../src/config/load.ts";
import { resolveClosure } from "../../src/store/closure.ts";
import { planLayers } from "../../src/plan/index.ts";
import { planFingerprint } from "../../src/plan/fingerprint.ts";
import { planFileText } from "../../src/plan/plan-file.ts";
import { makeStore, type FakeItem } from "../fixtures/store.ts";

export const GOLDEN_DIR = import.meta.dirname;

export interface ExampleOptions {
  strategy?: "size" | "popularity";
  max?: number;
  /** The hello package's version: a new version is a new store item (and a new profile). */
  hello?: string;
  /** Extra config lines (YAML), e.g. `layers.previous`. */
  extra?: string;
}

export function exampleItems(hello = "2.12"): FakeItem[] {
  return [
    { name: "glibc-2.39", files: { "lib/ld-linux-x86-64.so.2": "loader ".repeat(300), "lib/libc.so.6": "libc ".repeat(2000) } },
    {
      name: "dash-0.5.12",
      files: { "bin/dash": { content: "dash ".repeat(400), executable: true }, "bin/sh": { symlink: "dash" }, "lib/libc.so.6": { symlink: "{{glibc-2.39}}/lib/libc.so.6" } },
      refs: ["glibc-2.39"],
    },
    { name: `hello-${hello}`, files: { "bin/hello": { content: `#!{{dash-0.5.12}}/bin/sh\necho "Hello ${hello}"\n`, executable: true } }, refs: ["dash-0.5.12"] },
    {
      name: `profile-${hello}`,
      files: {
        "bin/hello": { symlink: `{{hello-${hello}}}/bin/hello` },
        "bin/sh": { symlink: "{{dash-0.5.12}}/bin/sh" },
        "lib/libc.so.6": { symlink: "{{glibc-2.39}}/lib/libc.so.6" },
      },
      refs: ["glibc-2.39", "dash-0.5.12", `hello-${hello}`],
    },
  ];
}

/** Writes the store under `dir/store-<hello>` (once) and the config `dir/<name>.yaml`; returns the config's path. */
export function writeExample(dir: string, name = "example", options: ExampleOptions = {}): string {
  const hello = options.hello ?? "2.12";
  const storeRoot = path.join(dir, `store-${hello}`);
  if (!fs.existsSync(storeRoot)) makeStore(storeRoot, "/gnu/store", exampleItems(hello), { profile: `profile-${hello}` });
  const config = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    config,
    `name: ${name}
store: { dir: /gnu/store, root: ./store-${hello} }
profile: ./store-${hello}/profile
closure: { from: scan }
symlinks: ["/bin=bin", "/lib=lib"]
entrypoint: bin/hello
architecture: amd64
layers: { max: ${options.max ?? 100}, strategy: ${options.strategy ?? "size"}${options.extra ? `, ${options.extra}` : ""} }
output: { path: ./${name}.tar }
`,
  );
  return config;
}

/** The plan file text `layerpack plan --write` gives for a config, through the library. */
export async function planFileFor(config: string): Promise<string> {
  const loaded = await loadSpec({ configPath: config, env: {} });
  const closure = await resolveClosure(loaded.config, { configDir: loaded.configDir });
  return planFileText(planLayers(loaded.config, closure), planFingerprint(loaded.config, closure));
}
