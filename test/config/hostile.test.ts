/** Validation up front: what the build would refuse later (or get wrong) is refused when the config is loaded. */
import { execFileSync } from "node:child_process";
import { symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { loadSpec } from "../../src/config/load.ts";
import { loadError, MINIMAL_YAML, tmpConfigDir } from "./helpers.ts";

describe("validation up front", () => {
  test("a NUL byte in any string names its key and position", async () => {
    const err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}env: { GREETING: "hi\\0there" }\nlabels: { "a\\0b": x }\n` }) });
    expect(err.message).toMatch(/^image\.config\.yaml:4:\d+: env\.GREETING: must not contain a NUL byte/m);
    expect(err.message).toContain('image.config.yaml:5:19: labels["a\\u0000b"]: must not contain a NUL byte');
  });

  test("a name over 255 bytes or a path over 4096 bytes in the image", async () => {
    const long = "x".repeat(256);
    let err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}paths: [{ path: /etc/${long}, type: directory }]\n` }) });
    expect(err.message).toMatch(/paths\[0\]\.path: every name in it must be at most 255 bytes/);
    const deep = `/${Array.from({ length: 30 }, () => "y".repeat(200)).join("/")}`;
    err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}workingDir: ${deep}\n` }) });
    expect(err.message).toMatch(/workingDir: must be at most 4096 bytes/);
    err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}symlinks: ["/bin/${long}=bin"]\n` }) });
    expect(err.message).toMatch(/symlinks\[0\]: every name in it must be at most 255 bytes/);
    // multi-byte characters count as bytes: 128 two-byte characters are 256 bytes
    err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}paths: [{ path: /${"é".repeat(128)}, type: directory }]\n` }) });
    expect(err.message).toMatch(/every name in it must be at most 255 bytes/);
  });

  test("created outside what a tar header holds", async () => {
    for (const created of ["9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"]) {
      const err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}created: "${created}"\n` }) });
      expect(err.message).toMatch(/created: must be between 1970-01-01T00:00:00Z and 2242-03-16T12:56:31Z/);
    }
    // A date that does not exist gets one message, not also the range's.
    const bad = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}created: "2020-13-01T00:00:00Z"\n` }) });
    expect(bad.message).toMatch(/created: is not a valid date/);
    expect(bad.message).not.toMatch(/must be between/);
    const ok = await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}created: "2242-03-16T12:56:31Z"\n` }), env: {} });
    expect(ok.config.created).toBe("2242-03-16T12:56:31Z");
  });

  test("a YAML file that is not UTF-8 is an error at the first bad byte", async () => {
    const cwd = tmpConfigDir({});
    writeFileSync(path.join(cwd, "image.config.yaml"), Buffer.concat([Buffer.from(`${MINIMAL_YAML}labels: { owner: "Jos`), Buffer.from([0xe9]), Buffer.from(`" }\n`)]));
    const err = await loadError({ cwd });
    expect(err.message).toBe("image.config.yaml:4:22: the file is not UTF-8 text (save it as UTF-8)");
    expect([err.line, err.column]).toEqual([4, 22]);
  });

  test("a FIFO, a device or a huge file as the config is refused at once, not read for ever", async () => {
    const cwd = tmpConfigDir({});
    execFileSync("mkfifo", [path.join(cwd, "fifo.yaml")]);
    let err = await loadError({ cwd, configPath: "fifo.yaml" });
    expect(err.message).toBe("cannot read config fifo.yaml: it is a FIFO, not a regular file");
    err = await loadError({ cwd, configPath: "/dev/zero" });
    expect(err.message).toMatch(/cannot read config \/dev\/zero: it is a device, not a regular file/);
    writeFileSync(path.join(cwd, "big.yaml"), `${MINIMAL_YAML}# ${"x".repeat(17 << 20)}\n`);
    err = await loadError({ cwd, configPath: "big.yaml" });
    expect(err.message).toMatch(/^cannot read config big\.yaml: it is 17 MiB, over the 16 MiB limit$/);
  });

  test("a search for the config refuses a FIFO or device in a search place, package.json included, without opening it", async () => {
    let cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML });
    execFileSync("mkfifo", [path.join(cwd, "package.json")]);
    let err = await loadError({ cwd });
    expect(err.message).toBe("cannot read config package.json: it is a FIFO, not a regular file");
    cwd = tmpConfigDir({});
    symlinkSync("/dev/zero", path.join(cwd, ".layerpackrc"));
    err = await loadError({ cwd });
    expect(err.message).toBe("cannot read config .layerpackrc: it is a device, not a regular file");
    // A package.json that is not JSON (cosmiconfig would throw its own parser's error with a stack) is located.
    cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML, "package.json": '{"name":"x",' });
    err = await loadError({ cwd });
    expect([err.message, err.line, err.column]).toEqual(['package.json:1:13: not JSON: unexpected end of the file (a "}" is missing)', 1, 13]);
    // What npm accepts is accepted: a repeated key, a byte-order mark; a directory in a search place is passed over.
    cwd = tmpConfigDir({ "image.config.yaml": MINIMAL_YAML, "package.json": '{"scripts":{"a":"x"},"scripts":{"b":"y"}}', ".layerpackrc/x": "" });
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("hello");
    cwd = tmpConfigDir({ "package.json": `\uFEFF${JSON.stringify({ name: "app", layerpack: { name: "hello", profile: "./profile" } })}` });
    expect((await loadSpec({ cwd, env: {} })).config.name).toBe("hello");
  });

  test("aliases that expand a small file past 16 MiB are refused with the file's name", async () => {
    // 40 uses of one alias are within the YAML library's alias count; the 1 MiB value they copy is what explodes.
    const big = "x".repeat(1 << 20);
    const cwd = tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels: { a: &a "${big}" }\nx-bomb: [${Array(40).fill("*a").join(",")}]\n` });
    const err = await loadError({ cwd });
    expect(err.message).toBe("image.config.yaml: its values come to more than 16 MiB (aliases *name counted each time they are used); a config is far smaller");
    // The same alias used a few times is fine.
    const ok = tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels: { a: &a "v", b: *a }\n` });
    expect((await loadSpec({ cwd: ok, env: {} })).config.labels).toEqual({ a: "v", b: "v" });
  });

  test("a file of more nodes than any config is refused before the YAML parser holds them (8 MB of [0,0,... took 4 GB)", async () => {
    const cwd = tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}x-flood: [${"0,".repeat(250_000)}0]\n` });
    expect((await loadError({ cwd })).message).toBe("image.config.yaml: it has more than 200,000 lines and list items; a config is far smaller (generate a long list in a TS config instead)");
  });

  test("a 100 000-key YAML config loads (the duplicate check is linear)", async () => {
    const labels = Array.from({ length: 100_000 }, (_, i) => `  k${i}: v${i}`).join("\n");
    const r = await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels:\n${labels}\n` }), env: {} });
    expect(Object.keys(r.config.labels)).toHaveLength(100_000);
    const dup = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels:\n${labels}\n  k5: again\n` }) });
    expect(dup.message).toBe(`image.config.yaml:${100_005}:3: duplicate key "k5" (each key may appear once)`);
  });
});

describe("YAML numbers in string fields", () => {
  test("tag, tags, labels and env keep the text written: 1.2 stays 1.2 and 1.0 stays 1.0", async () => {
    const r = await loadSpec({
      cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}tag: 1.0\ntags: [1.2, latest, 010]\nlabels: { version: 2.10 }\nenv: { PORT: 8080, V: -3 }\n` }),
      env: {},
    });
    expect([r.config.tag, r.config.tags, r.config.labels, r.config.env]).toEqual(["1.0", ["1.2", "latest", "010"], { version: "2.10" }, { PORT: "8080", V: "-3" }]);
  });

  test("an ambiguous number is refused with the quoted text to write", async () => {
    const err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels: { size: 1e3, mask: 0x1f }\n` }) });
    expect(err.message).toBe(
      'image.config.yaml:4:17: labels.size: YAML reads 1e3 as a number; write it as a string: "1e3"\n' +
        'image.config.yaml:4:28: labels.mask: YAML reads 0x1f as a number; write it as a string: "0x1f"',
    );
  });

  test("numbers elsewhere stay numbers", async () => {
    const r = await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}layers: { max: 10 }\n` }), env: {} });
    expect(r.config.layers.max).toBe(10);
  });
});

describe("what is not plain config data", () => {
  const minimalJson = '{ "name": "hello", "profile": "./profile", "output": { "path": "./hello.tar" }';

  test("a .json config must be JSON: YAML in it is an error at the first byte that is not JSON", async () => {
    const cases: [string, string][] = [
      ["name: hello\nprofile: ./profile\n", 'image.config.json:1:1: not JSON: expected a JSON value, not "n"'],
      [`${minimalJson}, }`, "image.config.json:1:81: not JSON: expected a key in double quotes (JSON has no trailing comma)"],
      [`${minimalJson}, "tags": ['a'] }`, "image.config.json:1:90: not JSON: strings are in double quotes in JSON"],
      [`${minimalJson}, "tags": ["a",] }`, "image.config.json:1:94: not JSON: expected a value (JSON has no trailing comma)"],
      [`${minimalJson} } # comment`, "image.config.json:1:82: not JSON: unexpected text after the JSON value"],
      [`${minimalJson}, "tag": "a\nb" }`, "image.config.json:1:90: not JSON: a control character (a line break, a tab) inside a string; write it as \\n, \\t"],
      [`${minimalJson}, "tag": "\\x41" }`, "image.config.json:1:89: not JSON: the escape \\x is not JSON"],
      [`${minimalJson},\n "tags": ["a"`, 'image.config.json:2:14: not JSON: unexpected end of the file (a "]" is missing)'],
    ];
    for (const [text, message] of cases) {
      const err = await loadError({ cwd: tmpConfigDir({ "image.config.json": text }) });
      expect(err.message).toBe(`${message} (a .json config is JSON; YAML goes in .yaml)`);
      expect(`${err.line}:${err.column}`).toBe(message.split(":").slice(1, 3).join(":"));
    }
    const ok = await loadSpec({ cwd: tmpConfigDir({ "image.config.json": `${minimalJson}, "labels": { "a": "a\\u0041\\n" } }\n` }), env: {} });
    expect(ok.config.labels).toEqual({ a: "aA\n" });
    // package.json's key is held to JSON too, without the hint about file names.
    const err = await loadError({ cwd: tmpConfigDir({ "package.json": `{ "layerpack": ${minimalJson}, } }` }) });
    expect(err.message).toBe("package.json:1:96: not JSON: expected a key in double quotes (JSON has no trailing comma)");
  });

  test("nesting deeper than a config needs is one clear error, in YAML, JSON and a module alike", async () => {
    const deepJson = `${minimalJson}, "labels": ${"[".repeat(5000)}${"]".repeat(5000)} }`;
    let err = await loadError({ cwd: tmpConfigDir({ "image.config.json": deepJson }) });
    expect(err.message).toMatch(/^image\.config\.json:1:\d+: nested too deeply \(a config is at most 64 levels deep\)$/);
    const deepYaml = `${MINIMAL_YAML}labels:\n${Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i + 1)}- `).join("\n")}\n`;
    err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": deepYaml }) });
    expect(err.message).toMatch(/^image\.config\.yaml:\d+:\d+: nested too deeply \(a config is at most 64 levels deep\)$/);
    // Deep enough to parse, too deep for a config: named at its key.
    err = await loadError({ cwd: tmpConfigDir({ "image.config.json": `${minimalJson}, "labels": ${"[".repeat(100)}${"]".repeat(100)} }` }) });
    expect(err.message).toBe("image.config.json:1:91: labels: nested deeper than 64 levels; no config needs that");
    const mod = "const a = []; let c = a;\nfor (let i = 0; i < 5000; i++) { const n = []; c.push(n); c = n; }\nexport default { name: 'hello', profile: './profile', labels: a };\n";
    err = await loadError({ cwd: tmpConfigDir({ "image.config.mjs": mod }) });
    expect(err.message).toBe("image.config.mjs:3:55: labels: nested deeper than 64 levels; no config needs that");
  });

  test("YAML's !!binary, !!set and !!omap are named, not called mappings", async () => {
    const cases: [string, string][] = [
      ["tag: !!binary aGVsbG8=", "image.config.yaml:4:15: tag: binary data (YAML's !!binary, a Buffer or typed array) is not a config value"],
      ["labels: { a: !!binary aGVsbG8= }", "image.config.yaml:4:23: labels.a: binary data (YAML's !!binary, a Buffer or typed array) is not a config value"],
      ["labels: !!set { a }", "image.config.yaml:4:15: labels: a Set (YAML's !!set) is not a config value"],
      ["labels: !!omap [ a: b ]", "image.config.yaml:4:16: labels: a Map (YAML's !!omap or !!pairs) is not a config value"],
    ];
    for (const [line, message] of cases) {
      const err = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}${line}\n` }) });
      expect(err.message).toBe(`${message} (a config holds strings, numbers, booleans, lists and mappings)`);
    }
  });
});
