import { describe, expect, it } from "vitest";
import { PlanError } from "../../src/errors.ts";
import { comparePaths, customEntries, resolveEntrypoint } from "../../src/plan/custom.ts";
import type { ImageSpec } from "../../src/config/schema.ts";
import { closureOf, specOf, storePath } from "./fixtures.ts";

const withProfile = closureOf([{ name: "profile", refs: ["hello"] }, { name: "hello" }], { profile: "profile" });
const noProfile = closureOf([{ name: "hello" }]);
const P = storePath("profile");
const TMP = { path: "/tmp", type: "directory", mode: "1777" };

describe("customisation entries", () => {
  const table: { name: string; spec: Parameters<typeof specOf>[0]; entries: unknown[] }[] = [
    { name: "the default: /tmp 1777 as Guix", spec: {}, entries: [{ path: "/tmp", type: "directory", mode: "1777" }] },
    { name: "paths given: /tmp is still added", spec: { paths: [{ path: "/data", type: "directory" }] }, entries: [{ path: "/data", type: "directory", mode: "755" }, TMP] },
    { name: "a /tmp of the spec's own wins", spec: { paths: [{ path: "/tmp", type: "directory", mode: "0700" }] }, entries: [{ path: "/tmp", type: "directory", mode: "700" }] },
    { name: "a link /tmp wins too", spec: { symlinks: ["/tmp=var/tmp"] }, entries: [{ path: "/tmp", type: "symlink", target: `${P}/var/tmp` }] },
    { name: "entries below /tmp go into the 1777 /tmp", spec: { paths: [{ path: "/tmp/x", type: "file", content: "" }] }, entries: [TMP, { path: "/tmp/x", type: "file", mode: "644", content: "" }] },
    {
      name: "/bin=bin links to the profile's bin",
      spec: { symlinks: ["/bin=bin"] },
      entries: [{ path: "/bin", type: "symlink", target: `${P}/bin` }, TMP],
    },
    {
      name: "an absolute target is kept as written; parents are implicit 755 directories",
      spec: { symlinks: ["/usr/local/bin/sh=/gnu/store/x/bin/sh"] },
      entries: [
        TMP,
        { path: "/usr", type: "directory", mode: "755" },
        { path: "/usr/local", type: "directory", mode: "755" },
        { path: "/usr/local/bin", type: "directory", mode: "755" },
        { path: "/usr/local/bin/sh", type: "symlink", target: "/gnu/store/x/bin/sh" },
      ],
    },
    {
      name: "a target of . is the profile itself; ./ and // are normalised",
      spec: { symlinks: ["/opt//app/=.", "/etc/./x=./share//x"] },
      entries: [
        { path: "/etc", type: "directory", mode: "755" },
        { path: "/etc/x", type: "symlink", target: `${P}/share/x` },
        { path: "/opt", type: "directory", mode: "755" },
        { path: "/opt/app", type: "symlink", target: P },
        TMP,
      ],
    },
    {
      name: "sorted component by component (/a, /a/b before /a-b), parents first",
      spec: {
        paths: [
          { path: "/a-b", type: "directory" },
          { path: "/a/b/c", type: "file", content: "x" },
          { path: "/a", type: "directory", mode: "0700" },
          { path: "/B", type: "symlink", target: "../a" },
        ],
      },
      entries: [
        { path: "/B", type: "symlink", target: "../a" },
        { path: "/a", type: "directory", mode: "700" },
        { path: "/a/b", type: "directory", mode: "755" },
        { path: "/a/b/c", type: "file", mode: "644", content: "x" },
        { path: "/a-b", type: "directory", mode: "755" },
        TMP,
      ],
    },
    {
      name: "files keep their source as written",
      spec: { paths: [{ path: "/etc/motd", type: "file", source: "motd.txt", mode: "444" }] },
      entries: [
        { path: "/etc", type: "directory", mode: "755" },
        { path: "/etc/motd", type: "file", mode: "444", source: "motd.txt" },
        TMP,
      ],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      expect(customEntries(specOf(row.spec), withProfile)).toEqual(row.entries);
    });
  }

  it("an absolute target needs no profile; a relative one does", () => {
    const roots = { roots: [storePath("hello")] };
    expect(customEntries(specOf({ ...roots, symlinks: ["/bin=/gnu/store/x/bin"] }), noProfile)).toEqual([
      { path: "/bin", type: "symlink", target: "/gnu/store/x/bin" },
      TMP,
    ]);
    expect(() => customEntries(specOf({ ...roots, symlinks: ["/bin=bin"] }), noProfile)).toThrow(
      /^symlinks\[0\]: target "bin" is relative to the profile, but the spec has no profile/,
    );
  });

  it("no default /tmp where the root system has one or the store lies under /tmp", () => {
    const tmpLink = { path: "/tmp", hostPath: "/host/rootfs/tmp", type: "symlink" as const, target: "var/tmp", mode: 0o777, size: 0, uid: 0, gid: 0 };
    const rootSystem = { source: "./rootfs", dir: "/host/rootfs", keepOwners: false, allowDevices: false, entries: [tmpLink] };
    expect(customEntries(specOf(), { ...withProfile, rootSystem })).toEqual([]);
    const underTmp = closureOf([{ name: "hello" }], { dir: "/tmp/store" });
    expect(customEntries(specOf({ roots: [storePath("hello", "/tmp/store")], store: "/tmp/store" }), underTmp)).toEqual([]);
  });

  it("two definitions of one path name both", () => {
    const spec = specOf({ symlinks: ["/tmp=tmp"], paths: [{ path: "/tmp", type: "directory", mode: "1777" }] });
    expect(() => customEntries(spec, withProfile)).toThrow(PlanError);
    expect(() => customEntries(spec, withProfile)).toThrow('paths[0]: /tmp is already defined by symlinks[0] "/tmp=tmp"; keep one of them');
    const twice = specOf({ paths: [{ path: "/x", type: "directory" }, { path: "/x/", type: "directory" }] });
    expect(() => customEntries(twice, withProfile)).toThrow("paths[1]: /x is already defined by paths[0] (/x); keep one of them");
  });

  it("a path below a symlink or file is an error naming both", () => {
    const spec = specOf({ symlinks: ["/bin=bin"], paths: [{ path: "/bin/sh", type: "file", content: "" }] });
    expect(() => customEntries(spec, withProfile)).toThrow(
      /^paths\[0\]: \/bin\/sh needs \/bin to be a directory, but symlinks\[0\] "\/bin=bin" makes it a symlink to/,
    );
  });

  it("marks its errors with the config key of the entry (the pipeline gives its line:column)", () => {
    const keyOf = (over: Partial<ImageSpec>) => {
      try {
        customEntries({ ...specOf(), ...over }, withProfile);
      } catch (e) {
        return [(e as PlanError).configKey, (e as PlanError).message];
      }
      return undefined;
    };
    const dir = (path: string) => ({ path, type: "directory" as const, mode: "755" });
    expect(keyOf({ paths: [dir("/etc/x"), dir("/etc/x")] })).toEqual([["paths", 1], "paths[1]: /etc/x is already defined by paths[0] (/etc/x); keep one of them"]);
    expect(keyOf({ paths: [dir("/")] })).toEqual([["paths", 0], 'paths[0]: cannot replace the image root "/"; name a path below it']);
    expect(keyOf({ paths: [dir("/gnu/store/x")] })?.[0]).toEqual(["paths", 0]);
    expect(keyOf({ symlinks: ["/bin=bin", "/bin/sh=bin/sh"] })).toEqual([["symlinks", 1], 'symlinks[1]: /bin/sh needs /bin to be a directory, but symlinks[0] "/bin=bin" makes it a symlink to ' + `${P}/bin`]);
    expect(keyOf({ symlinks: ["/x=../y"] })?.[0]).toEqual(["symlinks", 0]);
  });

  it("refuses .. (even when the schema was bypassed), the root, and the store", () => {
    const base = specOf();
    const bad = (over: Partial<ImageSpec>) => () => customEntries({ ...base, ...over }, withProfile);
    expect(bad({ symlinks: ["/bin=../etc"] })).toThrow(/must not contain '\.\.'/);
    expect(bad({ symlinks: ["/x/../bin=bin"] })).toThrow(/must not contain '\.\.'/);
    expect(bad({ symlinks: ["/bin=/gnu/store/../etc"] })).toThrow(/must not contain '\.\.'/);
    expect(bad({ paths: [{ path: "/a/../b", type: "directory", mode: "755" }] })).toThrow(/paths\[0\].*'\.\.'/);
    expect(bad({ symlinks: ["/=bin"] })).toThrow(/cannot replace the image root/);
    expect(bad({ symlinks: ["/gnu/store/foo=bin"] })).toThrow(/a path inside the store/);
    expect(bad({ paths: [{ path: "/gnu", type: "directory", mode: "700" }] })).toThrow(/the store directory or one of its parents/);
    expect(bad({ paths: [{ path: "/tmp", type: "directory", mode: "999" }] })).toThrow(/mode "999" must be octal/);
  });

  it("does not mutate the spec", () => {
    const spec = specOf({ symlinks: ["/bin=bin"] });
    const copy = structuredClone(spec);
    customEntries(spec, withProfile);
    expect(spec).toEqual(copy);
  });
});

describe("comparePaths", () => {
  it("orders like tar --sort=name: component by component, bytewise", () => {
    const paths = ["/a-b", "/a/b", "/a", "/Z", "/é", "/a/b/c", "/ab"];
    expect([...paths].sort(comparePaths)).toEqual(["/Z", "/a", "/a/b", "/a/b/c", "/a-b", "/ab", "/é"]);
  });
});

describe("resolveEntrypoint", () => {
  const roots = { roots: [storePath("hello")] };
  const table: { spec: Parameters<typeof specOf>[0]; closure: typeof withProfile; expected: string | undefined }[] = [
    { spec: {}, closure: withProfile, expected: undefined },
    { spec: { entrypoint: "bin/hello" }, closure: withProfile, expected: `${P}/bin/hello` },
    { spec: { entrypoint: "./bin//hello" }, closure: withProfile, expected: `${P}/bin/hello` },
    { spec: { entrypoint: "/bin/sh" }, closure: withProfile, expected: "/bin/sh" },
    { spec: { ...roots, entrypoint: "/gnu/store/x/bin/sh" }, closure: noProfile, expected: "/gnu/store/x/bin/sh" },
  ];
  for (const row of table) {
    it(`${row.spec?.entrypoint ?? "(none)"} -> ${row.expected}`, () => {
      expect(resolveEntrypoint(specOf(row.spec), row.closure)).toBe(row.expected);
    });
  }

  it("refuses a relative entrypoint without a profile, and ..", () => {
    const spec = { ...specOf(roots), entrypoint: "bin/hello" };
    expect(() => resolveEntrypoint(spec, noProfile)).toThrow(/^entrypoint: "bin\/hello" is relative to the profile, but the spec has no profile/);
    expect(() => resolveEntrypoint({ ...specOf(), entrypoint: "../x" }, withProfile)).toThrow(/must not contain '\.\.'/);
    expect(() => resolveEntrypoint({ ...specOf(), entrypoint: "/" }, withProfile)).toThrow(PlanError);
  });
});
