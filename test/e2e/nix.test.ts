/**
 * A closure built by nix-bin from real store items (a static busybox and scripts referring to it), packed from
 * the Nix store database: the image runs under podman, layers extract to the items byte for byte, and two images
 * whose closures share busybox share its layer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { requireTool } from "../fixtures/tools.ts";
import { derivation, makeNixStore, type NixStore } from "../fixtures/nix.ts";
import { layerpack } from "./cli.ts";
import { extractLayers, podman, skopeoInspect } from "./run-tools.ts";

const hasTools = requireTool("nix-build", "nix-bin") && requireTool("busybox", "busybox-static") && requireTool("podman") && requireTool("skopeo");

describe.runIf(hasTools)("an image of a closure built by nix", () => {
  let dir: string;
  let nix: NixStore;
  let hello: string;
  let other: string;
  let busybox: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-nix-e2e-"));
    nix = makeNixStore(dir);
    const expr = path.join(dir, "image.nix");
    // busybox picks its applet from argv[1] only when its own name starts with "busybox": keep it in bin/.
    const bbDir = path.join(dir, "busybox-src");
    fs.mkdirSync(path.join(bbDir, "bin"), { recursive: true });
    const bb = execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim();
    fs.copyFileSync(fs.realpathSync(bb), path.join(bbDir, "bin/busybox"));
    fs.chmodSync(path.join(bbDir, "bin/busybox"), 0o555);
    fs.writeFileSync(
      expr,
      `rec {
        busybox = builtins.path { path = ${bbDir}; name = "busybox"; };
        hello = ${derivation("hello", `mkdir -p $out/bin $out/share
          printf '#!%s/bin/busybox sh\\necho Hello from nix\\n' ${"${busybox}"} > $out/bin/hello
          chmod 555 $out/bin/hello
          seq 1 20000 > $out/share/numbers`)};
        other = ${derivation("other", `mkdir -p $out/bin
          printf '#!%s/bin/busybox sh\\necho other\\n' ${"${busybox}"} > $out/bin/other
          chmod 555 $out/bin/other`)};
        profile = ${derivation("profile", `mkdir -p $out/bin; ln -s ${"${hello}"}/bin/hello $out/bin/hello`)};
      }`,
    );
    nix.build(expr, "profile", path.join(dir, "result"));
    other = nix.build(expr, "other", path.join(dir, "result-other"));
    hello = nix.build(expr, "hello", path.join(dir, "result-hello"));
    busybox = nix.pathInfo([other]).find((i) => i.path.endsWith("-busybox"))!.path;
  }, 180_000);

  afterAll(() => {
    if (dir) {
      execFileSync("chmod", ["-R", "u+w", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  function build(name: string, body: string) {
    const cfg = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(cfg, `name: ${name}\ntag: t\nstore: { dir: /nix/store, root: ./root }\noutput: { path: ./${name}.tar }\n${body}\n`);
    const r = layerpack(["build", cfg]);
    expect(r.status, r.stderr).toBe(0);
    return path.join(dir, `${name}.tar`);
  }

  it("runs under podman, and its layers hold exactly the closure nix reports", () => {
    const out = build("nix-hello", "profile: ./result\nclosure: { from: auto }\nentrypoint: bin/hello\nsymlinks: [\"/bin=bin\"]");
    const closure = nix.pathInfo([fs.readlinkSync(path.join(dir, "result"))]).map((i) => i.path);
    expect(closure).toHaveLength(3);

    const { manifest, dirs } = extractLayers(out, path.join(dir, "x"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "x/archive", manifest.Config), "utf8"));
    expect((skopeoInspect(`docker-archive:${out}`) as { Layers: string[] }).Layers).toEqual(config.rootfs.diff_ids);
    const packed: string[] = [];
    for (const layer of dirs) {
      const store = path.join(layer, "nix/store");
      if (!fs.existsSync(store)) continue;
      for (const name of fs.readdirSync(store)) {
        packed.push(`/nix/store/${name}`);
        execFileSync("diff", ["-r", "--no-dereference", nix.host(`/nix/store/${name}`), path.join(store, name)]);
      }
    }
    expect(packed.sort()).toEqual(closure);

    const pm = podman(path.join(dir, "podman"));
    try {
      pm.load(out);
      expect(pm.run("localhost/nix-hello:t").trim()).toBe("Hello from nix");
    } finally {
      pm.cleanup();
    }
  });

  it("shares busybox's layer with another image from the same store", () => {
    const a = build("nix-a", `roots: ["${hello}"]\nentrypoint: ${hello}/bin/hello\nclosure: { from: database }`);
    const b = build("nix-b", `roots: ["${other}"]\nentrypoint: ${other}/bin/other\nclosure: { from: scan }`);
    const layers = (out: string, n: string) => extractLayers(out, path.join(dir, n));
    const la = layers(a, "xa");
    const lb = layers(b, "xb");
    const busyboxLayer = (l: ReturnType<typeof layers>) =>
      l.manifest.Layers.filter((_, i) => fs.existsSync(path.join(l.dirs[i]!, busybox.slice(1))));
    expect(busyboxLayer(la)).toHaveLength(1);
    expect(busyboxLayer(la)).toEqual(busyboxLayer(lb));
  });
});
