/** `platforms:` in the config: what is refused, and each platform's spec (config/platforms.ts). */
import { describe, expect, it } from "vitest";
import { imageSpecSchema } from "../../src/config/schema.ts";
import { platformSpecs } from "../../src/config/platforms.ts";

const base = { name: "app", output: { format: "oci-layout", path: "./o" } };
const issues = (spec: unknown) => {
  const r = imageSpecSchema.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("platforms", () => {
  it("gives each platform its architecture and closure roots, the config's where a platform has none", () => {
    const spec = imageSpecSchema.parse({ ...base, profile: "./p", platforms: [{ architecture: "amd64" }, { architecture: "arm64", variant: "v8", roots: ["/gnu/store/x-a"] }] });
    const [amd, arm] = platformSpecs(spec);
    expect(amd).toMatchObject({ architecture: "amd64", os: "linux", profile: "./p" });
    expect(amd!.platforms).toBeUndefined();
    expect(arm).toMatchObject({ architecture: "arm64", variant: "v8", roots: ["/gnu/store/x-a"] });
    expect(arm!.profile).toBeUndefined();
  });

  it("refuses what cannot be built, naming the key", () => {
    expect(issues({ ...base, platforms: [{ architecture: "amd64" }, { architecture: "arm64" }] })).toContain("platforms.0: give exactly one of profile or roots, here or in the config");
    expect(issues({ ...base, profile: "./p", platforms: [{ architecture: "amd64" }, { architecture: "amd64" }] })).toContain("platforms.1: the same platform as platforms[0]");
    expect(issues({ ...base, profile: "./p", architecture: "amd64", platforms: [{ architecture: "amd64" }, { architecture: "arm64" }] })).toContain("architecture: is given per platform when there are platforms");
    expect(issues({ ...base, profile: "./p", output: { format: "docker-archive" }, platforms: [{ architecture: "amd64" }, { architecture: "arm64" }] })[0]).toMatch(/output.format: docker-archive holds one image/);
    expect(issues({ ...base, profile: "./p", platforms: [{ architecture: "amd64" }] })[0]).toMatch(/at least two platforms/);
  });

  it("takes a relative entrypoint when every platform has a profile (its own or the config's), else names the one without", () => {
    const own = { ...base, entrypoint: "bin/hello", platforms: [{ architecture: "amd64", profile: "./x86" }, { architecture: "arm64", profile: "./arm" }] };
    expect(issues(own)).toEqual([]);
    expect(platformSpecs(imageSpecSchema.parse(own)).map((p) => p.profile)).toEqual(["./x86", "./arm"]);
    expect(issues({ ...base, entrypoint: "bin/hello", profile: "./p", platforms: [{ architecture: "amd64" }, { architecture: "arm64" }] })).toEqual([]);
    expect(issues({ ...base, entrypoint: "bin/hello", profile: "./p", platforms: [{ architecture: "amd64" }, { architecture: "arm64", roots: ["/gnu/store/x-a"] }] })).toEqual([
      "entrypoint: must be absolute: platforms[1] has no profile (it packs roots)",
    ]);
    expect(issues({ ...base, entrypoint: "/bin/hello", platforms: [{ architecture: "amd64", roots: ["/gnu/store/x-a"] }, { architecture: "arm64", profile: "./arm" }] })).toEqual([]);
  });

  it("takes OCI platform names only, and names the OCI spelling of a system triple's", () => {
    expect(issues({ ...base, profile: "./p", architecture: "x86_64" })).toEqual(['architecture: "x86_64" is not an OCI architecture name; write "amd64"']);
    expect(issues({ ...base, profile: "./p", architecture: "armv7l" })).toEqual(['architecture: "armv7l" is not an OCI architecture name; write "arm" (with variant: v7)']);
    expect(issues({ ...base, profile: "./p", architecture: "amd46" })[0]).toMatch(/"amd46" is not an OCI architecture name \(Go's GOARCH values, e\.g\. amd64, .*\) \(did you mean "amd64"\?\)$/);
    expect(issues({ ...base, profile: "./p", os: "gnu" })).toEqual(['os: "gnu" is not an OCI operating system name; write "hurd"']);
    expect(issues({ ...base, profile: "./p", platforms: [{ architecture: "aarch64" }, { architecture: 5 }] })).toEqual([
      'platforms.0.architecture: "aarch64" is not an OCI architecture name; write "arm64"',
      "platforms.1.architecture: expected an OCI architecture name such as amd64, arm64, arm, 386, ppc64le, s390x, riscv64, got 5",
    ]);
    expect(issues({ ...base, profile: "./p", os: "hurd", architecture: "386" })).toEqual([]);
  });
});
