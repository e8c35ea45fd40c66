import { describe, expect, it } from "vitest";
import { planFingerprint } from "../../src/plan/fingerprint.ts";
import type { Closure } from "../../src/store/types.ts";
import { closureOf, specOf, storePath } from "./fixtures.ts";

const closure = closureOf(
  [
    { name: "profile", size: 10, refs: ["hello", "glibc"] },
    { name: "hello", size: 300, refs: ["glibc"] },
    { name: "glibc", size: 200 },
  ],
  { profile: "profile" },
);
const spec = specOf({ name: "hello", symlinks: ["/bin=bin"] });
const base = planFingerprint(spec, closure);

const withItem = (c: Closure, i: number, change: Partial<Closure["items"][number]>): Closure => ({
  ...c,
  items: c.items.map((it, j) => (j === i ? { ...it, ...change } : it)),
});

describe("planFingerprint", () => {
  it("is a sha256 digest, the same for the same inputs", () => {
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(planFingerprint(specOf({ name: "hello", symlinks: ["/bin=bin"] }), structuredClone(closure))).toBe(base);
  });

  it("ignores what does not shape the layers: store root, previous plan, output, name, tag, env, NAR hashes", () => {
    const other = specOf({
      name: "renamed",
      tag: "v2",
      symlinks: ["/bin=bin"],
      env: { A: "1" },
      layers: { previous: "image.plan.yaml" },
      output: { path: "/elsewhere/out.tar" },
    });
    const moved: Closure = { ...closure, store: { ...closure.store, root: "/home/someone/chroot" } };
    expect(planFingerprint(other, moved)).toBe(base);
    expect(planFingerprint(spec, withItem(closure, 0, { narHash: `sha256:${"0".repeat(64)}` }))).toBe(base);
  });

  it("covers the root system's listing, not where it is on the host", () => {
    const entry = { path: "/etc/passwd", hostPath: "/home/a/root/etc/passwd", type: "file" as const, mode: 0o644, size: 10, uid: 0, gid: 0 };
    const rs = (e: typeof entry, dir = "/home/a/root") => ({ ...closure, rootSystem: { source: "./root", dir, keepOwners: false, allowDevices: false, entries: [e] } }) as Closure;
    const withRoot = planFingerprint(spec, rs(entry));
    expect(withRoot).not.toBe(base);
    expect(planFingerprint(spec, rs({ ...entry, hostPath: "/elsewhere/etc/passwd" }, "/elsewhere"))).toBe(withRoot);
    expect(planFingerprint(spec, rs({ ...entry, size: 11 }))).not.toBe(withRoot);
  });

  it("changes with each input that shapes the layers", () => {
    const variants = [
      planFingerprint(specOf({ name: "hello", symlinks: ["/bin=bin"], layers: { max: 3 } }), closure),
      planFingerprint(specOf({ name: "hello", symlinks: ["/bin=bin"], layers: { strategy: "popularity" } }), closure),
      planFingerprint(specOf({ name: "hello", symlinks: ["/sbin=bin"] }), closure),
      planFingerprint(specOf({ name: "hello", symlinks: ["/bin=bin"], paths: [{ path: "/tmp", type: "directory", mode: "700" }] }), closure),
      planFingerprint(spec, withItem(closure, 0, { narSize: closure.items[0]!.narSize + 1 })),
      planFingerprint(spec, withItem(closure, 1, { references: [] })),
      planFingerprint(spec, { ...closure, items: closure.items.slice(1) }),
      planFingerprint(spec, { ...closure, roots: [storePath("hello")] }),
      planFingerprint(spec, closureOf([{ name: "x" }], { dir: "/nix/store", profile: "x" })),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });
});
