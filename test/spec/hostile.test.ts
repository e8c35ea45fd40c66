/** Validation up front: what the build would refuse later (or get wrong) is refused when the config is loaded. */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { loadSpec } from "../../src/spec/load.ts";
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

  test("a 100 000-key YAML config loads (the duplicate check is linear)", async () => {
    const labels = Array.from({ length: 100_000 }, (_, i) => `  k${i}: v${i}`).join("\n");
    const r = await loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels:\n${labels}\n` }), env: {} });
    expect(Object.keys(r.config.labels)).toHaveLength(100_000);
    const dup = await loadError({ cwd: tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}labels:\n${labels}\n  k5: again\n` }) });
    expect(dup.message).toBe(`image.config.yaml:${100_005}:3: duplicate key "k5" (each key may appear once)`);
  });
});
