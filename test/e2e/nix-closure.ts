/**
 * A small real closure built by nix-bin for the database and system tests: a static busybox (packed the way
 * test/e2e/nix.test.ts packs it, so its applets work), a `hello` script referring to it (and to itself), and a
 * profile linking to hello.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { derivation, makeNixStore, type NixStore } from "../fixtures/nix.ts";

export interface NixClosure {
  nix: NixStore;
  /** Host link to the profile (nix-build's out link). */
  profileLink: string;
  profile: string;
  hello: string;
  busybox: string;
}

export function buildNixClosure(dir: string): NixClosure {
  const nix = makeNixStore(dir);
  const bbDir = path.join(dir, "busybox-src");
  fs.mkdirSync(path.join(bbDir, "bin"), { recursive: true });
  const bb = execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim();
  fs.copyFileSync(fs.realpathSync(bb), path.join(bbDir, "bin/busybox"));
  fs.chmodSync(path.join(bbDir, "bin/busybox"), 0o555);
  fs.symlinkSync("busybox", path.join(bbDir, "bin/sh"));
  const expr = path.join(dir, "closure.nix");
  fs.writeFileSync(
    expr,
    `rec {
      busybox = builtins.path { path = ${bbDir}; name = "busybox"; };
      hello = ${derivation("hello", `mkdir -p $out/bin $out/share/doc
        printf '#!%s/bin/busybox sh\\necho Hello from $0\\n' ${"${busybox}"} > $out/bin/hello
        chmod 555 $out/bin/hello
        echo "self: $out" > $out/share/doc/self
        seq 1 5000 > $out/share/numbers
        ln -s ../share/numbers $out/bin/numbers`)};
      profile = ${derivation("profile", `mkdir -p $out/bin; ln -s ${"${hello}"}/bin/hello $out/bin/hello; ln -s ${"${busybox}"}/bin/busybox $out/bin/busybox; ln -s ${"${busybox}"}/bin/sh $out/bin/sh`)};
    }`,
  );
  const profileLink = path.join(dir, "result");
  const profile = nix.build(expr, "profile", profileLink);
  const hello = nix.build(expr, "hello", path.join(dir, "result-hello"));
  const busybox = nix.pathInfo([hello]).find((i) => i.path.endsWith("-busybox"))!.path;
  return { nix, profileLink, profile, hello, busybox };
}

/** Unpacks every layer of a docker archive into one directory, in order, with GNU tar (as a runtime would). */
export function unpackImage(archive: string, dest: string): void {
  const top = `${dest}.archive`;
  fs.mkdirSync(top, { recursive: true });
  fs.mkdirSync(dest, { recursive: true });
  execFileSync("tar", ["-xf", archive, "-C", top]);
  const manifest = JSON.parse(fs.readFileSync(path.join(top, "manifest.json"), "utf8"))[0] as { Layers: string[] };
  for (const layer of manifest.Layers) execFileSync("tar", ["-xf", path.join(top, layer), "-C", dest, "--numeric-owner"]);
}

export function chmodRemove(dir: string): void {
  if (!fs.existsSync(dir)) return;
  execFileSync("chmod", ["-R", "u+w", dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}
