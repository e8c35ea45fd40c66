/** Runs the real tools a user would (skopeo, podman, GNU tar) with isolated state in a temp dir. */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const CONTAINERS_CONF = path.resolve(import.meta.dirname, "../../../shared/containers.conf");

export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...opts.env }, cwd: opts.cwd, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function skopeoInspect(ref: string, raw = false): unknown {
  return JSON.parse(run("skopeo", ["inspect", ...(raw ? ["--raw"] : []), ref]));
}

/**
 * Debian 12's podman 4.3 sometimes loses the exit code of a `run --rm` on a loaded machine ("getting exit code of
 * container ... from DB: no such exit code (container in state running)"): its cleanup races the wait. That says
 * nothing about the image, so only that message is retried; every other failure is the test's.
 */
export const PODMAN_EXIT_CODE_RACE = /no such exit code/;

/** A podman with its own storage under `dir`, so tests never touch the host's images. */
export function podman(dir: string) {
  fs.mkdirSync(dir, { recursive: true });
  const conf = fs.existsSync(CONTAINERS_CONF) ? CONTAINERS_CONF : path.join(dir, "containers.conf");
  if (!fs.existsSync(conf)) {
    fs.writeFileSync(conf, '[containers]\ndefault_ulimits = []\nnetns = "none"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n');
  }
  const base = ["--root", path.join(dir, "root"), "--runroot", path.join(dir, "runroot"), "--storage-driver", "vfs"];
  const env = { CONTAINERS_CONF: conf };
  return {
    /** The storage options and environment, for running podman some other way (e.g. in a shell pipeline). */
    args: base,
    env,
    load: (archive: string) => run("podman", [...base, "load", "-i", archive], { env }),
    run: (image: string, args: string[] = []) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return run("podman", [...base, "run", "--rm", "--network", "none", image, ...args], { env });
        } catch (e) {
          if (attempt >= 3 || !PODMAN_EXIT_CODE_RACE.test(String(e))) throw e;
        }
      }
    },
    cleanup: () => {
      spawnSync("podman", [...base, "system", "reset", "--force"], { env });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Extracts a docker archive's layers one by one with GNU tar into `dest/<n>/`. */
export function extractLayers(archive: string, dest: string): { manifest: { Config: string; RepoTags: string[]; Layers: string[] }; dirs: string[] } {
  const top = path.join(dest, "archive");
  fs.mkdirSync(top, { recursive: true });
  execFileSync("tar", ["-xf", archive, "-C", top]);
  const manifest = JSON.parse(fs.readFileSync(path.join(top, "manifest.json"), "utf8"))[0];
  const dirs = manifest.Layers.map((layer: string, i: number) => {
    const dir = path.join(dest, `layer-${i}`);
    fs.mkdirSync(dir);
    execFileSync("tar", ["-xf", path.join(top, layer), "-C", dir, "--numeric-owner"]);
    return dir;
  });
  return { manifest, dirs };
}
