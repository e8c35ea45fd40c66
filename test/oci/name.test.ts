import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatImageName, parseImageName, type ImageName } from "../../src/oci/name.ts";
import { LayerpackError } from "../../src/errors.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const cwd = "/work/here";
const parse = (text: string) => parseImageName(text, { cwd });

describe("parseImageName: transports", () => {
  it.each([
    ["docker-archive:/tmp/img.tar", { transport: "docker-archive", path: "/tmp/img.tar" }],
    ["docker-archive:img.tar", { transport: "docker-archive", path: "/work/here/img.tar" }],
    ["docker-archive:/tmp/a:b", { transport: "docker-archive", path: "/tmp/a:b" }],
    ["oci:/tmp/lay:v1", { transport: "oci", path: "/tmp/lay", ref: "v1" }],
    ["oci:/tmp/lay:hello:1.0", { transport: "oci", path: "/tmp/lay", ref: "hello:1.0" }],
    ["oci:/tmp/lay", { transport: "oci", path: "/tmp/lay" }],
    ["oci:./dir", { transport: "oci", path: "/work/here/dir" }],
    ["oci:../up/dir:latest", { transport: "oci", path: "/work/up/dir", ref: "latest" }],
    ["oci:lay:1.0-rc_2", { transport: "oci", path: "/work/here/lay", ref: "1.0-rc_2" }],
    ["oci:/tmp/a:b/c", { transport: "oci", path: "/tmp/a:b/c" }],
    ["oci:/tmp/a:b:c", { transport: "oci", path: "/tmp/a", ref: "b:c" }],
    ["oci:/tmp/lay:app@x+y", { transport: "oci", path: "/tmp/lay", ref: "app@x+y" }],
    ["oci:/tmp/lay:-bad", { transport: "oci", path: "/tmp/lay:-bad" }],
    [`oci:/tmp/lay:${"r".repeat(128)}`, { transport: "oci", path: "/tmp/lay", ref: "r".repeat(128) }],
    [`oci:/tmp/lay:${"r".repeat(129)}`, { transport: "oci", path: `/tmp/lay:${"r".repeat(129)}` }],
    ["oci-archive:/tmp/img.tar:v2", { transport: "oci-archive", path: "/tmp/img.tar", ref: "v2" }],
    ["oci-archive:img.tar", { transport: "oci-archive", path: "/work/here/img.tar" }],
    ["oci-archive:/tmp/x:y/z.tar", { transport: "oci-archive", path: "/tmp/x:y/z.tar" }],
    ["docker://localhost:5000/app:1", { transport: "registry", reference: { registry: "localhost:5000", repository: "app", tag: "1" } }],
    ["docker://hello", { transport: "registry", reference: { registry: "docker.io", repository: "library/hello" } }],
    [`docker://registry.example/team/app@${DIGEST}`, { transport: "registry", reference: { registry: "registry.example", repository: "team/app", digest: DIGEST } }],
  ])("%s", (text, want) => {
    expect(parse(text)).toEqual({ ...want, text });
  });

  it("takes a ref with a slash (team/hello:1.2, as layerpack names images) when the path before it exists", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-name-"));
    try {
      fs.mkdirSync(path.join(dir, "team-hello"));
      fs.writeFileSync(path.join(dir, "img.tar"), "");
      expect(parseImageName("oci:team-hello:team/hello:1.2", { cwd: dir })).toMatchObject({ path: path.join(dir, "team-hello"), ref: "team/hello:1.2" });
      expect(parseImageName("oci-archive:img.tar:team/hello:latest", { cwd: dir })).toMatchObject({ path: path.join(dir, "img.tar"), ref: "team/hello:latest" });
      // Without such a path the slash stays part of the path, as before.
      expect(parseImageName("oci:nothing:team/hello:1.2", { cwd: dir })).toMatchObject({ path: path.join(dir, "nothing:team/hello"), ref: "1.2" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves ~ alone and defaults cwd to the process's", () => {
    expect(parse("oci:~/lay")).toMatchObject({ path: "/work/here/~/lay" });
    expect(parseImageName("oci:lay")).toMatchObject({ path: path.join(process.cwd(), "lay") });
  });
});

describe("parseImageName: plain forms", () => {
  it.each([
    ["/tmp/img.tar", "/tmp/img.tar"],
    ["./img.tar", "/work/here/img.tar"],
    ["../img.tar", "/work/img.tar"],
    ["/tmp/odd:name", "/tmp/odd:name"],
  ])("%s is a path", (text, want) => {
    expect(parse(text)).toEqual({ transport: "path", path: want, text });
  });

  it("a name on disk is a path, otherwise a registry reference", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-name-"));
    try {
      fs.writeFileSync(path.join(dir, "app"), "");
      fs.writeFileSync(path.join(dir, "dir:x"), "");
      expect(parseImageName("app", { cwd: dir })).toEqual({ transport: "path", path: path.join(dir, "app"), text: "app" });
      // What is on disk wins over a transport-like spelling, as plain paths always did.
      expect(parseImageName("dir:x", { cwd: dir })).toMatchObject({ transport: "path", path: path.join(dir, "dir:x") });
      expect(parseImageName("other", { cwd: dir })).toEqual({
        transport: "registry",
        reference: { registry: "docker.io", repository: "library/other" },
        text: "other",
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ["localhost:5000/app:1", { registry: "localhost:5000", repository: "app", tag: "1" }],
    ["127.0.0.1:5000/team/app", { registry: "127.0.0.1:5000", repository: "team/app" }],
    ["dir:5000/app", { registry: "dir:5000", repository: "app" }],
    [`registry.example/app@${DIGEST}`, { registry: "registry.example", repository: "app", digest: DIGEST }],
    ["alpine:3.19", { registry: "docker.io", repository: "library/alpine", tag: "3.19" }],
    ["docker:dind", { registry: "docker.io", repository: "library/docker", tag: "dind" }],
  ])("%s is a registry reference", (text, reference) => {
    expect(parse(text)).toEqual({ transport: "registry", reference, text });
  });
});

describe("parseImageName: errors", () => {
  it.each([
    ["", 'image "": give an image'],
    ["  ", 'image "  ": give an image'],
    ["docker-archive:", 'image "docker-archive:": give a path after docker-archive:'],
    ["oci:", 'image "oci:": give a directory after oci:'],
    ["oci::v1", 'image "oci::v1": give a directory after oci:'],
    ["oci-archive:", 'image "oci-archive:": give a path after oci-archive:'],
    ["docker://", 'image "docker://": give a registry reference after docker://'],
    ["docker://Bad/Name", `image "docker://Bad/Name": malformed image reference 'Bad/Name'`],
    ["not a ref", `image "not a ref": malformed image reference 'not a ref'`],
    ["dir:x", 'image "dir:x": transport dir: is not supported; use docker-archive:, oci:, oci-archive: or docker://'],
    ["containers-storage:x", 'image "containers-storage:x": transport containers-storage: is not supported'],
    ["docker-daemon:app:1", 'image "docker-daemon:app:1": transport docker-daemon: is not supported'],
  ])("%j", (text, message) => {
    expect(() => parse(text)).toThrow(LayerpackError);
    expect(() => parse(text)).toThrow(message);
  });

  it.each([
    "docker://alice:s3cr3t@registry.example/app:1",
    "docker://alice:s3/cr3t@registry.example/app",
    `docker://alice:s3cr3t@registry.example/app@${DIGEST}`,
    "alice:s3cr3t@registry.example/app",
    "dir:s3cr3t@registry.example/app",
  ])("never shows the password in %s", (text) => {
    let message = "";
    try {
      parse(text);
    } catch (err) {
      expect(err).toBeInstanceOf(LayerpackError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/\*\*\*@registry\.example/);
    expect(message).not.toContain("s3cr3t");
    expect(message).not.toContain("cr3t");
    expect(message).not.toContain("alice");
  });
});

describe("formatImageName", () => {
  const names: [string, string][] = [
    ["docker-archive:img.tar", "docker-archive:/work/here/img.tar"],
    ["oci:./lay:v1", "oci:/work/here/lay:v1"],
    ["oci:/tmp/lay", "oci:/tmp/lay"],
    ["oci:/tmp/a:b/c", "oci:/tmp/a:b/c"],
    ["oci-archive:/tmp/img.tar:v2", "oci-archive:/tmp/img.tar:v2"],
    ["oci-archive:img.tar", "oci-archive:/work/here/img.tar"],
    ["docker://hello", "docker://docker.io/library/hello"],
    ["localhost:5000/app:1", "docker://localhost:5000/app:1"],
    [`docker://r.example/a@${DIGEST}`, `docker://r.example/a@${DIGEST}`],
    ["./img.tar", "/work/here/img.tar"],
  ];
  const withoutText = ({ text: _text, ...rest }: ImageName) => rest;

  it.each(names)("%s is shown as %s and reads back the same", (text, shown) => {
    const name = parse(text);
    expect(formatImageName(name)).toBe(shown);
    const again = parse(formatImageName(name));
    expect(withoutText(again)).toEqual(withoutText(name));
    expect(again.text).toBe(shown);
  });

  it("covers every transport", () => {
    expect(new Set(names.map(([text]) => parse(text).transport))).toEqual(new Set(["docker-archive", "oci", "oci-archive", "registry", "path"]));
  });
});

describe("a missing file-like name", () => {
  it.each(["nope.yaml", "image.tar", "old.tar.gz", "plan.json"])("%s is a path (a missing file), not a Docker Hub repository", (text) => {
    expect(parseImageName(text, { cwd: "/nowhere" })).toEqual({ transport: "path", path: `/nowhere/${text}`, text });
  });
});
