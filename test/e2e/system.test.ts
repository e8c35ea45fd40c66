/**
 * The system-image and non-root examples (examples/system/) on a closure built by nix-bin, run with podman; and
 * the bad inputs of root systems, accounts and perms, each a clear error with no output (or a warning).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as net from "node:net";
import { execFileSync } from "node:child_process";
import { requireTool } from "../fixtures/tools.ts";
import { makeRootfs, HOSTNAME } from "../../examples/system/make-rootfs.ts";
import { layerpack } from "./cli.ts";
import { extractLayers, podman } from "./run-tools.ts";
import { buildNixClosure, chmodRemove } from "./nix-closure.ts";

const EXAMPLES = path.resolve(import.meta.dirname, "../../examples/system");
const hasTools = requireTool("nix-build", "nix-bin") && requireTool("busybox", "busybox-static") && requireTool("podman") && requireTool("runc");

describe.runIf(hasTools)("system and non-root images", () => {
  let dir: string;
  let pm: ReturnType<typeof podman>;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-system-e2e-"));
    buildNixClosure(dir);
    makeRootfs(path.join(dir, "rootfs"));
    for (const f of ["system.yaml", "non-root.yaml"]) fs.copyFileSync(path.join(EXAMPLES, f), path.join(dir, f));
    pm = podman(path.join(dir, "podman"));
  }, 180_000);
  afterAll(() => {
    pm?.cleanup();
    chmodRemove(dir);
  });

  const build = (cfg: string) => {
    const r = layerpack(["build", path.join(dir, cfg)]);
    expect(r.status, r.stderr).toBe(0);
    return r;
  };

  it("the system image boots its root system's script under podman, with merged accounts", () => {
    build("system.yaml");
    const out = path.join(dir, "example-system.tar");
    const { manifest, dirs } = extractLayers(out, path.join(dir, "x-system"));
    // The root system is the layer just below the customisation layer, with modes kept and owners root.
    const rootLayer = dirs.at(-2)!;
    expect(fs.readFileSync(path.join(rootLayer, "etc/hostname"), "utf8")).toBe(`${HOSTNAME}\n`);
    expect(fs.statSync(path.join(rootLayer, "root")).mode & 0o7777).toBe(0o700);
    expect(fs.readlinkSync(path.join(rootLayer, "etc/mtab"))).toBe("/proc/self/mounts");
    const listing = execFileSync("tar", ["-tvf", path.join(dir, "x-system/archive", manifest.Layers.at(-2)!)], { encoding: "utf8" });
    expect(listing).toMatch(/^-rwxr-xr-x root\/root .* boot$/m);
    const passwd = fs.readFileSync(path.join(dirs.at(-1)!, "etc/passwd"), "utf8");
    expect(passwd).toBe("root:x:0:0:System administrator:/root:/bin/sh\nnobody:x:65534:65534:Unprivileged:/var/empty:/bin/false\noperator:x:500:500::/root:/bin/sh\n");
    expect(fs.readFileSync(path.join(dirs.at(-1)!, "etc/group"), "utf8")).toBe("root:x:0:\nnogroup:x:65534:\noperator:x:500:\n");

    pm.load(out);
    const lines = pm.run("localhost/example-system:latest").trim().split("\n");
    expect(lines).toEqual([
      `booting ${HOSTNAME}`,
      "users: root nobody operator ",
      'rc: NAME="layerpack example system"',
      "system up",
    ]);
  });

  it("the non-root image runs as the configured uid and can write the directory perms gives it", () => {
    build("non-root.yaml");
    const out = path.join(dir, "example-non-root.tar");
    const { manifest, dirs } = extractLayers(out, path.join(dir, "x-nonroot"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "x-nonroot/archive", manifest.Config), "utf8"));
    expect(config.config.User).toBe("1000:1000");
    const custom = execFileSync("tar", ["-tvf", path.join(dir, "x-nonroot/archive", manifest.Layers.at(-1)!), "--numeric-owner"], { encoding: "utf8" });
    expect(custom).toMatch(/^drwxr-x--- 1000\/1000 .* data\/$/m);
    expect(fs.readFileSync(path.join(dirs.at(-1)!, "etc/passwd"), "utf8")).toContain("app:x:1000:1000::/data:/bin/sh\n");

    pm.load(out);
    expect(pm.run("localhost/example-non-root:latest").trim().split("\n")).toEqual(["1000", "1000", "data writable", "etc read-only"]);
  });

  it("perms reach store layers too, and a glob matching nothing is a warning", () => {
    const cfg = path.join(dir, "perms.yaml");
    fs.writeFileSync(
      cfg,
      `name: perms\ntag: t\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\noutput: { path: ./perms.tar }\nperms:\n` +
        `  - { path: "/nix/store/*-hello/share/**", uid: 7, gid: 8, mode: "0600" }\n  - { path: /nowhere/*, uid: 1 }\n`,
    );
    const r = layerpack(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: \S*perms\.yaml:8:5: perms\[1\]: \/nowhere\/\* matches nothing/);
    expect(r.stderr).not.toMatch(/perms\[0\]/);
    const { manifest } = extractLayers(path.join(dir, "perms.tar"), path.join(dir, "x-perms"));
    const all = manifest.Layers.map((l) => execFileSync("tar", ["-tvf", path.join(dir, "x-perms/archive", l), "--numeric-owner"], { encoding: "utf8" })).join("");
    expect(all).toMatch(/^-rw------- 7\/8 .*-hello\/share\/numbers$/m);
    expect(all).toMatch(/^dr-xr-xr-x 0\/0 .*-hello\/share\/$/m); // share itself is not below share/**
    // A rebuild from the cache still knows which rules matched.
    const again = layerpack(["build", cfg]);
    expect(again.stderr).toMatch(/perms\[1\]/);
    expect(again.stderr).not.toMatch(/perms\[0\]/);
  });

  describe("bad input: a clear error and no output", () => {
    const bad = (name: string, body: string, pattern: RegExp) => {
      const cfg = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(cfg, `name: ${name}\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\noutput: { path: ./${name}.tar }\n${body}\n`);
      const r = layerpack(["build", cfg]);
      expect(r.stderr).toMatch(pattern);
      expect(r.status).toBe(1);
      expect(fs.existsSync(path.join(dir, `${name}.tar`))).toBe(false);
    };
    const rootfsWith = (name: string, add: (d: string) => void) => {
      const d = path.join(dir, name);
      fs.mkdirSync(path.join(d, "etc"), { recursive: true });
      fs.writeFileSync(path.join(d, "etc/hostname"), "x\n");
      add(d);
      return d;
    };

    it("rootSystem missing, or holding a socket or a fifo/device", async () => {
      bad("rs-missing", "rootSystem: ./no-such-dir", /rootSystem: .*no-such-dir: no such directory/);
      const sockDir = rootfsWith("rs-socket", () => {});
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(path.join(sockDir, "etc/control.sock"), resolve));
      try {
        bad("rs-socket", "rootSystem: ./rs-socket", /rs-socket\/etc\/control\.sock is a socket/);
      } finally {
        server.close();
      }
      rootfsWith("rs-fifo", (d) => execFileSync("mkfifo", [path.join(d, "etc/initctl")]));
      bad("rs-fifo", "rootSystem: ./rs-fifo", /initctl is a fifo; remove it, or set rootSystem.allowDevices: true/);
      // Allowed on request: the fifo is packed as a fifo.
      const cfg = path.join(dir, "rs-fifo-ok.yaml");
      fs.writeFileSync(cfg, `name: rs-fifo-ok\nstore: { dir: /nix/store, root: ./root }\nprofile: ./result\noutput: { path: ./rs-fifo-ok.tar }\nrootSystem: { dir: ./rs-fifo, allowDevices: true }\n`);
      const r = layerpack(["build", cfg]);
      expect(r.status, r.stderr).toBe(0);
      const { manifest } = extractLayers(path.join(dir, "rs-fifo-ok.tar"), path.join(dir, "x-fifo"));
      expect(execFileSync("tar", ["-tvf", path.join(dir, "x-fifo/archive", manifest.Layers.at(-2)!)], { encoding: "utf8" })).toMatch(/^p.* etc\/initctl$/m);
    });

    it("a path defined twice names both sources; an entrypoint outside the view fails", () => {
      rootfsWith("rs-dup", (d) => fs.writeFileSync(path.join(d, "etc/motd"), "hi\n"));
      bad("dup-path", `rootSystem: ./rs-dup\nsymlinks: ["/etc/motd=share/doc/self"]`, /dup-path\.yaml:6:12: symlinks\[0\]: \/etc\/motd is already in the root system \.\/rs-dup \(a file\); keep one of them\n/);
      bad("no-entry", "rootSystem: ./rs-dup\nentrypoint: /sbin/init", /no-entry\.yaml:6:13: entrypoint: \/sbin\/init: \/sbin does not exist in the image\n/);
      bad("in-store", "rootSystem: ./rs-store", /rootSystem: .*rs-store: no such directory/);
      rootfsWith("rs-store", (d) => {
        fs.mkdirSync(path.join(d, "nix/store"), { recursive: true });
        fs.writeFileSync(path.join(d, "nix/store/stray"), "");
      });
      bad("in-store2", "rootSystem: ./rs-store", /\/nix\/store\/stray is inside the store directory/);
    });

    it("accounts: duplicate user or uid, unknown runAs, ids out of range", () => {
      bad("dup-user", "accounts: { users: [{ name: a, uid: 1 }, { name: a, uid: 2 }] }", /accounts\.users\[1\]\.name: duplicate user a/);
      bad("dup-uid", "accounts: { users: [{ name: a, uid: 1 }, { name: b, uid: 1 }] }", /accounts\.users\[1\]\.uid: duplicate uid 1/);
      rootfsWith("rs-users", (d) => fs.writeFileSync(path.join(d, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:80:80::/:/bin/false\n"));
      bad("dup-rs-user", "rootSystem: ./rs-users\naccounts: { users: [{ name: web, uid: 81 }] }", /user web is defined twice: the root system's \/etc\/passwd \(\.\/rs-users\) line 2/);
      bad("dup-rs-uid", "rootSystem: ./rs-users\naccounts: { users: [{ name: www, uid: 80 }] }", /uid 80 is used twice: the root system's \/etc\/passwd \(\.\/rs-users\) line 2 \(web\)/);
      bad("run-as", "accounts: { users: [{ name: a, uid: 1 }], runAs: b }", /accounts\.runAs: b is not a defined user.*\(defined: a\)/);
      bad("uid-range", "accounts: { users: [{ name: a, uid: 4294967295 }] }", /accounts\.users\[0\]\.uid: must be at most 4294967294/);
      bad("gid-range", "perms: [{ path: /tmp, gid: -1 }]", /perms\[0\]\.gid: must be at least 0/);
    });
  });
});
