import { describe, expect, test } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatReference, isLoopback, parseReference } from "../../src/registry/reference.ts";
import { findCredentials, parseChallenge, parseChallenges, withPushHost } from "../../src/registry/auth.ts";
import { RegistryError } from "../../src/errors.ts";

describe("parseReference", () => {
  test.each([
    ["localhost:5000/hello:1.0", { registry: "localhost:5000", repository: "hello", tag: "1.0" }],
    ["127.0.0.1:5000/team/hello", { registry: "127.0.0.1:5000", repository: "team/hello" }],
    ["ghcr.io/o/app:v2", { registry: "ghcr.io", repository: "o/app", tag: "v2" }],
    ["hello", { registry: "docker.io", repository: "library/hello" }],
    ["hello:22", { registry: "docker.io", repository: "library/hello", tag: "22" }],
    ["team/hello:x", { registry: "docker.io", repository: "team/hello", tag: "x" }],
    [`r.example/a@sha256:${"a".repeat(64)}`, { registry: "r.example", repository: "a", digest: `sha256:${"a".repeat(64)}` }],
  ])("%s", (text, want) => {
    expect(parseReference(text)).toEqual(want);
  });

  test.each([
    ["", "it is empty"],
    ["localhost:5000/Hello:1", "'Hello' is not a valid repository name component"],
    ["localhost:5000/hello:bad tag", "is not a valid tag"],
    ["localhost:5000/", "is not a valid repository name component"],
    ["host.example/a@sha256:xyz", "is not a digest"],
    ["bad_host.example:5000/a", "is not a registry host"],
    ["127.0.0.1:5055", "it names a registry host:port but no repository; write 127.0.0.1:5055/NAME[:TAG]"],
    ["localhost:5000", "write localhost:5000/NAME[:TAG]"],
  ])("refuses %j", (text, why) => {
    expect(() => parseReference(text)).toThrow(RegistryError);
    expect(() => parseReference(text)).toThrow(why);
  });

  test("formats back and knows loopback hosts", () => {
    expect(formatReference(parseReference("localhost:5000/a/b:c"))).toBe("localhost:5000/a/b:c");
    expect(isLoopback("127.0.0.1:5000")).toBe(true);
    expect(isLoopback("localhost")).toBe(true);
    expect(isLoopback("[::1]:5000")).toBe(true);
    expect(isLoopback("registry.example:5000")).toBe(false);
  });
});

describe("credentials", () => {
  test("environment variables win, and must come as a pair", () => {
    const env = { LAYERPACK_REGISTRY_USER: "u", LAYERPACK_REGISTRY_PASSWORD: "p", HOME: "/nonexistent" };
    expect(findCredentials("r.example", env, true)).toMatchObject({ username: "u", password: "p" });
    expect(() => findCredentials("r.example", { LAYERPACK_REGISTRY_USER: "u", HOME: "/nonexistent" })).toThrow(/set both/);
  });

  test("environment variables go to one registry: the one pushed to, or LAYERPACK_REGISTRY_HOST's", () => {
    const env = { LAYERPACK_REGISTRY_USER: "u", LAYERPACK_REGISTRY_PASSWORD: "p", HOME: "/nonexistent" };
    // A read (a base image, a cache source, inspect) of another registry gets none.
    expect(findCredentials("r.example", env)).toBeUndefined();
    expect(findCredentials("r.example", { ...env, LAYERPACK_REGISTRY_HOST: "r.example" })).toMatchObject({ username: "u" });
    expect(findCredentials("other.example", { ...env, LAYERPACK_REGISTRY_HOST: "r.example" }, true)).toBeUndefined();
    expect(findCredentials("registry-1.docker.io", { ...env, LAYERPACK_REGISTRY_HOST: "docker.io" })).toMatchObject({ username: "u" });
    expect(withPushHost(env, "r.example")).toMatchObject({ LAYERPACK_REGISTRY_HOST: "r.example" });
    expect(() => findCredentials("r.example", { ...env, LAYERPACK_REGISTRY_HOST: "https://r.example/" })).toThrow(/LAYERPACK_REGISTRY_HOST must name a registry as HOST\[:PORT\]/);
    expect(withPushHost({ ...env, LAYERPACK_REGISTRY_HOST: "x.example" }, "r.example")).toMatchObject({ LAYERPACK_REGISTRY_HOST: "x.example" });
  });

  test("REGISTRY_AUTH_FILE and ~/.docker/config.json, matched by registry host", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-auth-"));
    try {
      const auth = Buffer.from("alice:s3cret:x").toString("base64");
      const file = path.join(dir, "auth.json");
      fs.writeFileSync(file, JSON.stringify({ auths: { "r.example:5000": { auth }, "https://other.example": { username: "bob", password: "pw" } } }));
      expect(findCredentials("r.example:5000", { REGISTRY_AUTH_FILE: file })).toMatchObject({ username: "alice", password: "s3cret:x" });
      expect(findCredentials("other.example", { REGISTRY_AUTH_FILE: file })).toMatchObject({ username: "bob", password: "pw" });
      expect(findCredentials("third.example", { REGISTRY_AUTH_FILE: file, HOME: dir })).toBeUndefined();
      fs.mkdirSync(path.join(dir, ".docker"));
      fs.copyFileSync(file, path.join(dir, ".docker", "config.json"));
      expect(findCredentials("r.example:5000", { HOME: dir })).toMatchObject({ username: "alice" });
      fs.writeFileSync(file, "{ not json");
      expect(() => findCredentials("r.example:5000", { REGISTRY_AUTH_FILE: file })).toThrow(`cannot read the registry auth file ${file}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("parses WWW-Authenticate challenges", () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: "basic", params: { realm: "x" } });
  });

  test("two challenges in one header (fetch joins repeated headers) stay apart; Bearer is answered before Basic", () => {
    const bearer = { scheme: "bearer", params: { realm: "http://127.0.0.1:5000/token", service: "fake", scope: "repository:a:pull" } };
    const basic = { scheme: "basic", params: { realm: "Registry Realm" } };
    const joined = 'Bearer realm="http://127.0.0.1:5000/token",service="fake",scope="repository:a:pull", Basic realm="Registry Realm"';
    expect(parseChallenges(joined)).toEqual([bearer, basic]);
    expect(parseChallenge(joined)).toEqual(bearer);
    expect(parseChallenge('Basic realm="Registry Realm", Bearer realm="http://127.0.0.1:5000/token",service=fake,scope="repository:a:pull"')).toEqual(bearer);
    expect(parseChallenge('Negotiate, Basic realm="r"')).toEqual({ scheme: "basic", params: { realm: "r" } });
    expect(parseChallenge('Bearer realm="a\\"b", error="insufficient_scope"')).toEqual({ scheme: "bearer", params: { realm: 'a"b', error: "insufficient_scope" } });
    expect(parseChallenge("")).toEqual({ scheme: "", params: {} });
  });
});

describe("output spec", async () => {
  const { imageSpecSchema } = await import("../../src/config/schema.ts");
  const issues = (output: unknown, extra: Record<string, unknown> = {}) => {
    const r = imageSpecSchema.safeParse({ name: "a", profile: "/p", output, ...extra });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  test("registry needs ref and takes no path; file formats take no ref, and - only as an archive", () => {
    expect(issues({ format: "registry", ref: "localhost:5000/a" })).toEqual([]);
    expect(issues({ format: "registry" })).toEqual(["output.ref: is required (string) for format registry"]);
    expect(issues({ format: "registry", ref: "r/a", path: "x" })).toEqual(["output.path: is not used by format registry; give ref"]);
    expect(issues({ format: "oci-layout" })).toEqual([]); // the loader fills in ./<name>
    expect(issues({ format: "oci-layout", path: "-" })).toEqual(["output.path: - (standard output) is only for the archive formats docker-archive and oci-archive"]);
    expect(issues({ format: "oci-archive", path: "x.tar", ref: "r/a" })).toEqual(["output.ref: is only for format registry"]);
  });

  test("zstd is refused only for docker archives", () => {
    expect(issues({ path: "x.tar" }, { compression: "zstd" })).toHaveLength(1);
    for (const format of ["oci-layout", "oci-archive"]) expect(issues({ format, path: "x" }, { compression: "zstd" })).toEqual([]);
  });
});
