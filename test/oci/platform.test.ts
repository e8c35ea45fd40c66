import { describe, expect, it } from "vitest";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, specPlatform } from "../../src/oci/platform.ts";

describe("platforms in OCI names", () => {
  it("maps Node's architectures to OCI's, with the variants OCI tools record", () => {
    expect(hostPlatform("x64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(hostPlatform("arm64")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(hostPlatform("arm", "6")).toEqual({ os: "linux", architecture: "arm", variant: "v6" });
    expect(hostPlatform("ia32")).toEqual({ os: "linux", architecture: "386" });
    expect(hostPlatform("ppc64")).toEqual({ os: "linux", architecture: "ppc64le" });
    expect(hostPlatform("s390x")).toEqual({ os: "linux", architecture: "s390x" });
  });

  it("a config's platform: its own, else the host's", () => {
    expect(specPlatform({ os: "linux", architecture: "arm64", variant: "v8" })).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(specPlatform({ os: "linux", architecture: "amd64" })).toEqual({ os: "linux", architecture: "amd64" });
    expect(specPlatform({ os: "linux" })).toEqual(hostPlatform());
  });

  it("parses --platform and refuses what is not os/arch[/variant]", () => {
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(formatPlatform(parsePlatform("linux/amd64"))).toBe("linux/amd64");
    for (const bad of ["amd64", "linux/", "linux/amd64/v1/x", "Linux/AMD64", "linux/../x"]) expect(() => parsePlatform(bad)).toThrow(/give os\/architecture\[\/variant\]/);
  });

  it("matches index entries; arm64 without a variant is v8", () => {
    expect(platformMatches({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm64", variant: "v8" })).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm", variant: "v7" })).toBe(false);
    expect(platformMatches({ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "amd64" })).toBe(true);
    expect(platformMatches({ os: "windows", architecture: "amd64" }, { os: "linux", architecture: "amd64" })).toBe(false);
    expect(platformMatches(undefined, { os: "linux", architecture: "amd64" })).toBe(false);
  });
});
