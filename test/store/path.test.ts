import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.ts";
import {
  hashPart,
  hostPath,
  isStorePath,
  itemOf,
  nix32Decode,
  nix32Encode,
  normaliseNarHash,
  parseStorePath,
  resolveProfile,
  resolveRoots,
} from "../../src/store/path.ts";
import { makeStore } from "../fixtures/store.ts";

const H = "0123456789abcdfghijklmnpqrsvwxyz";

describe("store paths", () => {
  it("parses items and paths inside them", () => {
    expect(parseStorePath(`/gnu/store/${H}-hello-2.12`, "/gnu/store")).toEqual({ dir: "/gnu/store", hash: H, name: "hello-2.12", sub: "" });
    expect(parseStorePath(`/gnu/store/${H}-hello/bin/hello`, "/gnu/store")?.sub).toBe("bin/hello");
    expect(itemOf(`/gnu/store/${H}-hello/bin/hello`, "/gnu/store")).toBe(`/gnu/store/${H}-hello`);
    expect(isStorePath(`/gnu/store/${H}-hello`, "/gnu/store")).toBe(true);
    expect(isStorePath(`/gnu/store/${H}-hello/bin`, "/gnu/store")).toBe(false);
  });

  it("rejects malformed paths", () => {
    for (const bad of [
      `/nix/store/${H}-hello`, // other store dir
      `/gnu/store/${H.replace("a", "e")}-hello`, // e is not nix32
      `/gnu/store/${H.slice(1)}-hello`, // 31 chars
      `/gnu/store/${H}hello`, // no dash
      `/gnu/store/${H}-`, // empty name
      `/gnu/storex/${H}-hello`,
      "/gnu/store",
    ]) {
      expect(parseStorePath(bad, "/gnu/store"), bad).toBeUndefined();
    }
  });

  it("gives the hash part", () => {
    expect(hashPart(`/nix/store/${H}-x`)).toBe(H);
    expect(() => hashPart("/nix/store/abc-x")).toThrow(StoreError);
  });

  it("maps logical paths through the root", () => {
    expect(hostPath({ dir: "/gnu/store", root: "/" }, "/gnu/store/x")).toBe("/gnu/store/x");
    expect(hostPath({ dir: "/gnu/store", root: "/tmp/r" }, "/gnu/store/x")).toBe("/tmp/r/gnu/store/x");
  });
});

describe("nix32 and hashes", () => {
  it("round-trips and matches known values", () => {
    // sha256 of "hello\n" (nix hash to-base32 gives this for the hex below)
    const hex = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const b = Buffer.from(hex, "hex");
    const s = nix32Encode(b);
    expect(s).toHaveLength(52);
    expect(Buffer.from(nix32Decode(s, 32)!).toString("hex")).toBe(hex);
    expect(nix32Encode(Buffer.alloc(20))).toBe("0".repeat(32));
    expect(nix32Encode(Buffer.from([1]))).toBe("01");
    expect(nix32Encode(Buffer.from([0x20]))).toBe("10");
    expect(nix32Decode("z".repeat(52), 32)).toBeUndefined(); // overflows 256 bits
    expect(nix32Decode("e".repeat(52), 32)).toBeUndefined();
  });

  it("normalises hash spellings to sha256:<hex>", () => {
    const hex = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const want = `sha256:${hex}`;
    const b = Buffer.from(hex, "hex");
    expect(normaliseNarHash(want)).toBe(want);
    expect(normaliseNarHash(`sha256:${hex.toUpperCase()}`)).toBe(want);
    expect(normaliseNarHash(hex)).toBe(want);
    expect(normaliseNarHash(`sha256:${nix32Encode(b)}`)).toBe(want);
    expect(normaliseNarHash(`sha256-${b.toString("base64")}`)).toBe(want);
    expect(normaliseNarHash("md5:abc")).toBeUndefined();
    expect(normaliseNarHash("sha256:xyz")).toBeUndefined();
  });
});

describe("resolveProfile", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-path-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("follows a chroot-style link chain to the item", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "profile", files: { "bin/x": "x" } }], { profile: "profile" });
    expect(resolveProfile(s.store, s.profile!)).toBe(s.path("profile"));
    // the store path itself, logically or on the host
    expect(resolveProfile(s.store, s.path("profile"))).toBe(s.path("profile"));
    expect(resolveProfile(s.store, s.host("profile"))).toBe(s.path("profile"));
  });

  it("a path in the store directory that is no item name says so, even when it exists under store.root", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "profile", files: { "bin/x": "x" } }], { profile: "profile" });
    fs.mkdirSync(path.join(s.store.root, "gnu/store/abc-foo"));
    expect(() => resolveProfile(s.store, "/gnu/store/abc-foo")).toThrow(/^profile \/gnu\/store\/abc-foo: abc-foo is not a store item name \(<32 nix32 characters>-<name>/);
  });

  it("follows links in the store itself and relative links", () => {
    const s = makeStore(dir, "/gnu/store", [
      { name: "real", files: { f: "x" } },
      { name: "alias", files: { symlink: "{{real}}" } },
    ]);
    fs.mkdirSync(path.join(dir, "profiles"));
    fs.symlinkSync(`../gnu/store/${path.basename(s.path("real"))}`, path.join(dir, "profiles", "rel"));
    // absolute targets are read inside the root: /profiles/rel is <root>/profiles/rel
    fs.symlinkSync("/profiles/rel", path.join(dir, "abs-host"));
    expect(resolveProfile(s.store, path.join(dir, "abs-host"))).toBe(s.path("real"));
    // a store item that is itself a symlink is an item
    expect(resolveProfile(s.store, s.path("alias"))).toBe(s.path("alias"));
  });

  it("works with a real root", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p", files: { f: "x" } }]);
    const real = { dir: path.join(dir, "gnu/store"), root: "/" };
    const item = path.join(dir, s.path("p"));
    fs.symlinkSync(item, path.join(dir, "link"));
    expect(resolveProfile(real, path.join(dir, "link"))).toBe(item);
  });

  it("fails on a missing profile and a dangling chain", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p", files: { f: "x" } }]);
    expect(() => resolveProfile(s.store, path.join(dir, "nope"))).toThrow(/nope does not exist/);
    fs.symlinkSync("/gnu/store/00000000000000000000000000000000-gone", path.join(dir, "dangling"));
    const err = catchError(() => resolveProfile(s.store, path.join(dir, "dangling")));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toMatch(/\/gnu\/store\/0{32}-gone does not exist/);
    expect(s.store.root).not.toBe("/");
    expect(err.message).toContain(`; absolute link targets are read under store.root ${s.store.root}, as ${s.store.root}/gnu/store/`);
  });

  it("fails when the chain ends outside the store", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p", files: { f: "x" } }]);
    fs.mkdirSync(path.join(dir, "etc"));
    fs.symlinkSync("/etc", path.join(dir, "out"));
    const err = catchError(() => resolveProfile(s.store, path.join(dir, "out")));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toMatch(/resolves to \/etc, which is outside the store \/gnu\/store/);
    expect(() => resolveProfile(s.store, path.join(dir, "etc"))).toThrow(/outside the store/);
  });

  it("a Nix profile with the default /gnu/store says to set store: /nix/store", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p", files: { f: "x" } }]);
    fs.mkdirSync(path.join(s.store.root ?? "/", "nix/store/00000000000000000000000000000000-hello"), { recursive: true });
    fs.symlinkSync("/nix/store/00000000000000000000000000000000-hello", path.join(dir, "result"));
    expect(() => resolveProfile(s.store, path.join(dir, "result"))).toThrow(/which is outside the store \/gnu\/store.*; for a profile in \/nix\/store, set store: \/nix\/store$/);
  });

  it("fails when the profile points inside an item, naming the item", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p", files: { "bin/x": "x" } }]);
    fs.symlinkSync(`${s.path("p")}/bin`, path.join(dir, "inside"));
    const err = catchError(() => resolveProfile(s.store, path.join(dir, "inside")));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toContain(`inside the store item ${s.path("p")}`);
  });

  it("fails on a link loop", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "p" }]);
    fs.symlinkSync("b", path.join(dir, "a"));
    fs.symlinkSync("a", path.join(dir, "b"));
    expect(() => resolveProfile(s.store, path.join(dir, "a"))).toThrow(/too many levels/);
  });

  it("resolves roots: store paths and links, sorted and deduplicated", () => {
    const s = makeStore(dir, "/gnu/store", [{ name: "b" }, { name: "a" }], { profile: "a" });
    const got = resolveRoots(s.store, [s.path("b"), s.profile!, s.path("a")]);
    expect(got).toEqual([s.path("a"), s.path("b")].sort());
    expect(() => resolveRoots(s.store, [path.join(dir, "missing")])).toThrow(/^root .*missing does not exist/);
  });
});

function catchError(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}
