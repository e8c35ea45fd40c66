import { describe, expect, it } from "vitest";
import { parseDrvName, parseStoreName, storeName } from "../../src/sbom/index.ts";
import { storePath } from "./fixtures.ts";

describe("store names", () => {
  it("splits like builtins.parseDrvName: the version starts after the first dash not followed by a letter", () => {
    // The rule of DrvName::DrvName in Nix (libstore names.cc), which builtins.parseDrvName calls.
    expect(parseDrvName("hello-2.12.1")).toEqual({ name: "hello", version: "2.12.1" });
    expect(parseDrvName("python3.11-requests-2.31.0")).toEqual({ name: "python3.11-requests", version: "2.31.0" });
    expect(parseDrvName("nix-unstable-2.22pre")).toEqual({ name: "nix-unstable", version: "2.22pre" });
    expect(parseDrvName("foo-_1")).toEqual({ name: "foo", version: "_1" });
    expect(parseDrvName("profile")).toEqual({ name: "profile", version: "" });
    expect(parseDrvName("trailing-")).toEqual({ name: "trailing-", version: "" });
  });

  it("takes the name after the hash part of a store path", () => {
    const p = storePath("/nix/store", "glibc-2.39-52");
    expect(storeName(p)).toBe("glibc-2.39-52");
    expect(storeName("/nix/store/not-a-hash-1.0")).toBe("not-a-hash-1.0");
  });

  it.each([
    // nixpkgs
    ["glibc-2.39-52", { name: "glibc", version: "2.39-52" }],
    ["glibc-2.39-52-bin", { name: "glibc", version: "2.39-52", output: "bin" }],
    ["openssl-3.0.13-dev", { name: "openssl", version: "3.0.13", output: "dev" }],
    ["gcc-13.2.0-lib", { name: "gcc", version: "13.2.0", output: "lib" }],
    ["xgcc-13.2.0-libgcc", { name: "xgcc", version: "13.2.0", output: "libgcc" }],
    ["bash-interactive-5.2p26-man", { name: "bash-interactive", version: "5.2p26", output: "man" }],
    ["util-linux-minimal-2.39.3-lib", { name: "util-linux-minimal", version: "2.39.3", output: "lib" }],
    ["python3.11-requests-2.31.0", { name: "python3.11-requests", version: "2.31.0" }],
    ["tzdata-2024a", { name: "tzdata", version: "2024a" }],
    ["nss-cacert-3.98", { name: "nss-cacert", version: "3.98" }],
    ["source", { name: "source" }],
    ["hello-bin", { name: "hello-bin" }], // no version: which part is an output is unknowable
    // Guix
    ["guile-3.0.9", { name: "guile", version: "3.0.9" }],
    ["gcc-11.3.0-lib", { name: "gcc", version: "11.3.0", output: "lib" }],
    ["glib-2.78.0-bin", { name: "glib", version: "2.78.0", output: "bin" }],
    ["python-3.10.7-tk", { name: "python", version: "3.10.7-tk" }], // a package-specific output stays in the version
    ["ca-certificate-bundle", { name: "ca-certificate-bundle" }],
    // the real closures' Debian packages repackaged as store items (../shared/closures)
    ["libcom-err2-1.47.0-2", { name: "libcom-err2", version: "1.47.0-2" }],
    ["libfontconfig-dev-2.14.1-4", { name: "libfontconfig-dev", version: "2.14.1-4" }],
    ["git-man-1_2.39.5-0+deb12u3", { name: "git-man", version: "1_2.39.5-0+deb12u3" }],
    ["libtasn1-6-4.19.0-2+deb12u1", { name: "libtasn1", version: "6-4.19.0-2+deb12u1" }], // as Nix would split it
  ])("%s", (name, expected) => {
    expect(parseStoreName(storePath("/nix/store", name))).toEqual(expected);
    expect(parseStoreName(name)).toEqual(expected);
  });
});
