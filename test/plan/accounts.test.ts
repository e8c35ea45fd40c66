/**
 * accounts -> /etc/passwd and /etc/group (merged with a root system's), the image User from runAs, and the plan's
 * checks: duplicates name both places, runAs must be a user, root-system paths defined twice, a root-system layer
 * between the store layers and the customisation layer counting toward max.
 */
import { describe, expect, it } from "vitest";
import { accountFiles, imageUser } from "../../src/plan/accounts.ts";
import { customEntries, parsePlan, planLayers, planToYaml } from "../../src/plan/index.ts";
import { imageSpecSchema } from "../../src/config/schema.ts";
import type { Closure, RootSystem } from "../../src/store/types.ts";
import { closureOf, specOf } from "./fixtures.ts";

const accounts = (a: unknown) => imageSpecSchema.shape.accounts.parse(a);

function rootSystem(over: Partial<RootSystem> = {}): RootSystem {
  return {
    source: "./rootfs",
    dir: "/host/rootfs",
    keepOwners: false,
    allowDevices: false,
    entries: [
      { path: "/etc", hostPath: "/host/rootfs/etc", type: "directory", mode: 0o755, size: 0, uid: 0, gid: 0 },
      { path: "/etc/group", hostPath: "/host/rootfs/etc/group", type: "file", mode: 0o644, size: 10, uid: 0, gid: 0 },
      { path: "/etc/motd", hostPath: "/host/rootfs/etc/motd", type: "file", mode: 0o644, size: 3, uid: 0, gid: 0 },
      { path: "/etc/passwd", hostPath: "/host/rootfs/etc/passwd", type: "file", mode: 0o644, size: 30, uid: 0, gid: 0 },
      { path: "/srv", hostPath: "/host/rootfs/srv", type: "directory", mode: 0o750, size: 0, uid: 0, gid: 0 },
    ],
    passwd: "root:x:0:0::/root:/bin/sh\nweb:x:80:80::/srv:/bin/false\n",
    group: "root:x:0:\nweb:x:80:\n",
    ...over,
  };
}

describe("accountFiles", () => {
  it("writes users and groups after a default root, and a group for a user whose gid none has", () => {
    const files = accountFiles(
      { accounts: accounts({ users: [{ name: "app", uid: 1000 }, { name: "svc", uid: 1001, gid: 2000, home: "/srv", shell: "/bin/false", comment: "Service" }], groups: [{ name: "staff", gid: 2000, members: ["app", "svc"] }] }) },
      {},
    )!;
    expect(files.passwd).toBe("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\nsvc:x:1001:2000:Service:/srv:/bin/false\n");
    expect(files.group).toBe("root:x:0:\nstaff:x:2000:app,svc\napp:x:1000:\n");
  });

  it("keeps the root system's lines first and verbatim", () => {
    const files = accountFiles({ accounts: accounts({ users: [{ name: "app", uid: 1000, gid: 80 }] }) }, { rootSystem: rootSystem() })!;
    expect(files.passwd).toBe("root:x:0:0::/root:/bin/sh\nweb:x:80:80::/srv:/bin/false\napp:x:1000:80::/:/bin/sh\n");
    expect(files.group).toBe("root:x:0:\nweb:x:80:\n");
  });

  it("refuses users, uids, groups and gids the root system already has, naming its line", () => {
    const rs = { rootSystem: rootSystem() };
    expect(() => accountFiles({ accounts: accounts({ users: [{ name: "web", uid: 81 }] }) }, rs)).toThrow(
      "accounts.users[0] (web): user web is defined twice: the root system's /etc/passwd (./rootfs) line 2 already defines it",
    );
    expect(() => accountFiles({ accounts: accounts({ users: [{ name: "www", uid: 80 }] }) }, rs)).toThrow(/uid 80 is used twice: .* line 2 \(web\)/);
    expect(() => accountFiles({ accounts: accounts({ groups: [{ name: "web", gid: 81 }] }) }, rs)).toThrow(/group web is defined twice/);
    expect(() => accountFiles({ accounts: accounts({ groups: [{ name: "w", gid: 80 }] }) }, rs)).toThrow(/gid 80 is used twice/);
    expect(() => accountFiles({ accounts: accounts({ groups: [{ name: "g", gid: 5, members: ["nobody"] }] }) }, rs)).toThrow(/member nobody is not a user/);
  });

  it("the schema refuses duplicates within accounts and ids out of range", () => {
    expect(() => accounts({ users: [{ name: "a", uid: 1 }, { name: "a", uid: 2 }] })).toThrow(/duplicate user a/);
    expect(() => accounts({ users: [{ name: "a", uid: 1 }, { name: "b", uid: 1 }] })).toThrow(/duplicate uid 1/);
    expect(() => accounts({ groups: [{ name: "g", gid: 1 }, { name: "g", gid: 2 }] })).toThrow(/duplicate group g/);
    expect(() => accounts({ users: [{ name: "a", uid: 2 ** 32 }] })).toThrow(/at most 4294967294/);
    expect(() => accounts({ users: [{ name: "a", uid: 1.5 }] })).toThrow(/whole number/);
    expect(() => accounts({ users: [{ name: "a:b", uid: 1 }] })).toThrow(/user or group name/);
  });
});

describe("imageUser", () => {
  it("is uid:gid of runAs, from accounts or the root system, else the spec's user", () => {
    const spec = (runAs?: string) => ({ user: "0:0", accounts: accounts({ users: [{ name: "app", uid: 1000 }], ...(runAs ? { runAs } : {}) }) });
    expect(imageUser(spec("app"), {})).toBe("1000:1000");
    expect(imageUser(spec("web"), { rootSystem: rootSystem() })).toBe("80:80");
    expect(imageUser(spec(), {})).toBe("0:0");
    expect(() => imageUser(spec("nobody"), { rootSystem: rootSystem() })).toThrow("accounts.runAs: nobody is not a defined user; define it in accounts.users (defined: app, root, web)");
  });
});

describe("plan with a root system", () => {
  const closure = (rs?: RootSystem): Closure => ({ ...closureOf([{ name: "a", size: 10 }, { name: "b", size: 20 }, { name: "c", size: 30 }]), ...(rs ? { rootSystem: rs } : {}) });

  it("puts the root-system layer between the store layers and the customisation layer, within max", () => {
    const plan = planLayers(specOf({ rootSystem: "./rootfs", layers: { max: 4 } }), closure(rootSystem()));
    expect(plan.layers.map((l) => l.kind)).toEqual(["store", "store", "root-system", "customisation"]);
    expect(plan.layers[2]).toEqual({ kind: "root-system", source: "./rootfs", files: 5, size: 43 });
    expect(() => planLayers(specOf({ rootSystem: "./rootfs", layers: { max: 2 } }), closure(rootSystem()))).toThrow(/at least 3 layers/);
    // The plan file round-trips with the new layer kind and a generated database entry.
    const withDb = planLayers(specOf({ rootSystem: "./rootfs", database: true, layers: { max: 4 } }), closure(rootSystem()));
    expect(parsePlan(planToYaml(withDb), "plan.yaml")).toEqual(withDb);
    expect(planToYaml(withDb)).toContain("generated: guix-database");
    expect(() => planLayers(specOf({ rootSystem: "./rootfs" }), closure())).toThrow(/no listing of the root system/);
  });

  it("merges passwd/group, keeps root-system directory modes for implicit parents, refuses paths defined twice", () => {
    const spec = specOf({ rootSystem: "./rootfs", paths: [{ path: "/srv/www/index.html", type: "file", content: "hi" }], accounts: { users: [{ name: "app", uid: 1000 }] } });
    const entries = customEntries(spec, closure(rootSystem()));
    expect(entries.find((e) => e.path === "/srv")).toEqual({ path: "/srv", type: "directory", mode: "750" });
    expect(entries.find((e) => e.path === "/etc/passwd")).toMatchObject({ type: "file", content: expect.stringContaining("app:x:1000") });
    const twice = specOf({ rootSystem: "./rootfs", symlinks: ["/etc/motd=/srv/motd"] });
    expect(() => customEntries(twice, closure(rootSystem()))).toThrow(
      "symlinks[0]: /etc/motd is already in the root system ./rootfs (a file); keep one of them",
    );
    // A parent the entry needs, where the root system has a file.
    const below = specOf({ rootSystem: "./rootfs", paths: [{ path: "/etc/motd/x", type: "file", content: "" }] });
    expect(() => customEntries(below, closure(rootSystem()))).toThrow("paths[0]: needs /etc/motd to be a directory, but the root system ./rootfs has a file");
    // Without accounts, /etc/passwd from paths is a plain duplicate too.
    const passwd = specOf({ rootSystem: "./rootfs", paths: [{ path: "/etc/passwd", type: "file", content: "x" }] });
    expect(() => customEntries(passwd, closure(rootSystem()))).toThrow(/^paths\[0\]: \/etc\/passwd is already in the root system/);
    // And accounts plus paths defining /etc/passwd names both.
    const both = specOf({ paths: [{ path: "/etc/passwd", type: "file", content: "x" }], accounts: { users: [] } });
    expect(() => customEntries(both, closure())).toThrow("accounts: /etc/passwd is already defined by paths[0] (/etc/passwd); keep one of them");
  });

  it("refuses a root system with files inside the store directory", () => {
    const rs = rootSystem({ entries: [...rootSystem().entries, { path: "/gnu", hostPath: "/h/gnu", type: "directory", mode: 0o755, size: 0, uid: 0, gid: 0 }, { path: "/gnu/store/x", hostPath: "/h/x", type: "file", mode: 0o644, size: 0, uid: 0, gid: 0 }] });
    expect(() => customEntries(specOf({ rootSystem: "./rootfs" }), closure(rs))).toThrow("rootSystem: ./rootfs: /gnu/store/x is inside the store directory /gnu/store; the store layers own it");
  });
});
