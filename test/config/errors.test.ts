import { mkdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { MINIMAL_YAML, loadError, tmpConfigDir } from "./helpers.ts";

/** One YAML config in a temp dir, loaded; the error it gives. */
async function yamlError(text: string) {
  const cwd = tmpConfigDir({ "image.config.yaml": text });
  return { err: await loadError({ cwd }), cwd };
}

describe("finding and reading the config", () => {
  test("nothing found names the directory and what was looked for", async () => {
    const cwd = tmpConfigDir();
    const err = await loadError({ cwd });
    expect(err.message).toContain(`no config found in ${cwd}`);
    expect(err.message).toContain("image.config.ts");
    expect(err.message).toContain("package.json#layerpack");
  });

  test("an explicit path that does not exist is named", async () => {
    const cwd = tmpConfigDir();
    const err = await loadError({ cwd, configPath: "nope.yaml" });
    expect(err.message).toBe("cannot read config nope.yaml: no such file");
    expect(err.file).toBe(path.join(cwd, "nope.yaml"));
  });

  test("an unreadable config (a directory) is named, explicit or found by the search", async () => {
    const cwd = tmpConfigDir();
    mkdirSync(path.join(cwd, "image.config.yaml"));
    expect((await loadError({ cwd, configPath: "image.config.yaml" })).message).toBe(
      "cannot read config image.config.yaml: it is a directory, not a regular file",
    );
    expect((await loadError({ cwd })).message).toBe("cannot read config image.config.yaml: it is a directory, not a regular file");
  });

  test("closure.from guix-graph or nix-closure-info without closure.file has the config's line and column", async () => {
    const { err } = await yamlError("name: x\nprofile: ./p\nclosure:\n  from: guix-graph\n");
    expect(err.message).toBe("image.config.yaml:4:3: closure.file: is required with from: guix-graph (the references graph file)");
    const ci = await yamlError("name: x\nprofile: ./p\nclosure: { from: nix-closure-info }\n");
    expect(ci.err.message).toMatch(/^image\.config\.yaml:3:\d+: closure\.file: is required with from: nix-closure-info \(the closureInfo directory\)/);
  });

  test("a paths entry without its type: the type is required, not wrong", async () => {
    const missing = await yamlError("name: x\nprofile: ./p\npaths: [{ path: /etc/x, source: ./motd }]\n");
    expect(missing.err.message).toMatch(/^image\.config\.yaml:3:\d+: paths\[0\]\.type: is required: one of "directory", "file", "symlink"/);
    const wrong = await yamlError("name: x\nprofile: ./p\npaths: [{ path: /etc/x, type: fil }]\n");
    expect(wrong.err.message).toMatch(/paths\[0\]\.type: must be one of "directory", "file", "symlink" \(did you mean "file"\?\)$/);
  });

  test("an empty config file is an error, not skipped", async () => {
    const { err } = await yamlError("# nothing yet\n");
    expect(err.message).toBe("image.config.yaml: the config file is empty");
  });

  test("an unsupported extension is refused", async () => {
    const cwd = tmpConfigDir({ "image.toml": "name = 1" });
    expect((await loadError({ cwd, configPath: "image.toml" })).message).toContain("unsupported config file type");
  });
});

describe("syntax", () => {
  test("YAML syntax error with line:column", async () => {
    const { err } = await yamlError("name: hello\npaths: [1, 2\noutput: {}\n");
    expect(err.message).toMatch(/^image\.config\.yaml:3:1: /);
    expect([err.line, err.column]).toEqual([3, 1]);
  });

  test("duplicate key with the line:column of the second one", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}layers:\n  max: 10\n  max: 20\n`);
    expect(err.message).toBe("image.config.yaml:6:3: duplicate key \"max\" (each key may appear once)");
    expect([err.line, err.column]).toEqual([6, 3]);
  });

  test("a package.json holding the config is held to the config's rules, with line:column; one that does not, only to npm's", async () => {
    const cwd = tmpConfigDir({ "package.json": '{\n  "name": "app",\n  "name": "again",\n  "layerpack": { "name": "hello", "profile": "./p" }\n}\n' });
    const err = await loadError({ cwd });
    expect(err.message).toBe("package.json:3:3: duplicate key \"name\" (each key may appear once)");
    // npm reads a repeated key (the last wins): without the layerpack key it is not this tool's to refuse.
    const other = await loadError({ cwd: tmpConfigDir({ "package.json": '{\n  "name": "app",\n  "name": "again"\n}\n' }) });
    expect(other.message).toMatch(/^no config found in /);
  });

  test("JSON syntax error with line:column", async () => {
    const cwd = tmpConfigDir({ "image.config.json": '{\n  "name": "hello",\n  "output": {"path": "x"\n}\n' });
    const err = await loadError({ cwd });
    expect(err.message).toMatch(/^image\.config\.json:\d+:\d+: /);
    expect(err.line).toBeGreaterThanOrEqual(3);
  });
});

describe("validation", () => {
  test("unknown key: its own line:column, with a suggestion", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}layers:\n  max: 10\n  stratgy: size\n`);
    expect(err.message).toBe('image.config.yaml:6:3: layers.stratgy: unknown key "stratgy" (did you mean "strategy"?)');
    expect([err.file?.endsWith("image.config.yaml"), err.keyPath, err.line, err.column]).toEqual([true, "layers.stratgy", 6, 3]);
  });

  test("a key of another kind of paths entry says which kind has it, not 'did you mean' itself", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}paths:\n  - { type: file, path: /etc/x, content: x, target: /y }\n  - { type: symlink, path: /l, targt: /y }\n`);
    expect(err.message).toContain('paths[0].target: unknown key "target" (not for type "file", which takes "path", "type", "mode", "content", "source")');
    expect(err.message).toContain('paths[1].targt: unknown key "targt" (did you mean "target"?)');
  });

  test("bounds the schema gives no message for are said plainly, not in zod's words", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}tags: []\nentrypoint: ""\n`);
    expect(err.message).toContain('tags: must list at least one entry');
    expect(err.message).toContain('entrypoint: must not be empty');
    expect(err.message).not.toMatch(/Too small/);
  });

  test("unknown top-level key", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}colour: blue\n`);
    expect(err.message).toBe('image.config.yaml:4:1: colour: unknown key "colour"');
  });

  test("wrong type with the value's line:column", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}cmd: "echo hi"\n`);
    expect(err.message).toBe('image.config.yaml:4:6: cmd: expected array, got string "echo hi"');
  });

  test("nested key paths in arrays, with a hint for bare numbers", async () => {
    const { err } = await yamlError(
      `${MINIMAL_YAML}paths:\n  - { path: /tmp, type: directory }\n  - path: /etc/motd\n    type: file\n    mode: 644\n    content: hi\n`,
    );
    expect(err.message).toBe('image.config.yaml:8:11: paths[1].mode: expected string, got number 644 (quote it: "644")');
    expect(err.keyPath).toBe("paths[1].mode");
  });

  test("keys that are not identifiers are quoted in the key path", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}labels:\n  org.example.x: [3]\n`);
    expect(err.message).toBe('image.config.yaml:5:18: labels["org.example.x"]: expected string, got a list');
  });

  test("a missing required key points at the map that lacks it", async () => {
    const { err } = await yamlError("name: hello\nprofile: ./p\noutput: { path: o.tar }\naccounts:\n  users:\n    - name: app\n");
    expect(err.message).toBe("image.config.yaml:6:7: accounts.users[0].uid: is required (number)");
  });

  test.each([
    [0, "must be at least 1 (1 = everything in one layer)"],
    [300, "must be at most 127: overlay file systems stack at most about 128 layers"],
  ])("layers.max %i is refused with the reason", async (max, reason) => {
    const { err } = await yamlError(`${MINIMAL_YAML}layers: { max: ${max} }\n`);
    expect(err.message).toContain(`image.config.yaml:4:16: layers.max: ${reason}`);
  });

  test("profile and roots both given", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}roots: [/gnu/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x]\n`);
    expect(err.message).toBe("image.config.yaml:4:8: roots: give exactly one of profile or roots");
  });

  test("neither profile nor roots: reported at the top of the file", async () => {
    const { err } = await yamlError("name: hello\noutput: { path: ./hello.tar }\n");
    expect(err.message).toBe("image.config.yaml:1:1: give exactly one of profile or roots");
    expect(err.keyPath).toBeUndefined();
  });

  test("zstd with a docker archive points to OCI output", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}compression: zstd\n`);
    expect(err.message).toMatch(/^image\.config\.yaml:4:14: compression: zstd layers are not supported in a docker archive.*OCI/);
  });

  test("all issues, one per line in source order; the error's fields hold the first", async () => {
    const { err } = await yamlError("name: Hello\nprofile: ./p\nbogus: 1\noutput: { path: ./o.tar, format: tar }\n");
    expect(err.message.split("\n")).toEqual([
      "image.config.yaml:1:7: name: must be a lowercase repository name such as hello or team/hello",
      'image.config.yaml:3:1: bogus: unknown key "bogus"',
      'image.config.yaml:4:34: output.format: must be one of "docker-archive", "oci-layout", "oci-archive", "registry"',
    ]);
    expect([err.keyPath, err.line, err.column]).toEqual(["name", 1, 7]);
  });

  test("a misspelt choice gets a did-you-mean", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML.replace(/output:.*\n/, "")}output: { path: ./o, format: oci-layuot }\n`);
    expect(err.message).toMatch(/output\.format: must be one of "docker-archive", "oci-layout", "oci-archive", "registry" \(did you mean "oci-layout"\?\)/);
  });

  test("a union value written as an object reports the object's field", async () => {
    const { err } = await yamlError(`${MINIMAL_YAML}store: { dir: /gnu/store, root: 3 }\n`);
    expect(err.message).toBe("image.config.yaml:4:33: store.root: expected string, got number 3");
  });

  test("package.json#layerpack: key paths relative to the config, positions in package.json", async () => {
    const pkg = '{\n  "name": "app",\n  "layerpack": {\n    "name": "hello",\n    "profile": "./p",\n    "output": { "path": "o.tar" },\n    "layers": { "max": 0 }\n  }\n}\n';
    const cwd = tmpConfigDir({ "package.json": pkg });
    const err = await loadError({ cwd });
    expect(err.message).toMatch(/^package\.json:7:24: layers\.max: must be at least 1/);
  });
});
