/**
 * The system-image example's root file system, made by code (git keeps no owners or modes such as 0700):
 * /etc with hostname, issue, os-release, passwd and group, a /root home, and /boot, the script the image runs.
 *   npx node examples/system/make-rootfs.ts DIR
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const HOSTNAME = "layerpack-system";

const BOOT = `#!/bin/sh
# The example's "init": reports what the provisioned system holds, then runs its arguments.
echo "booting $(busybox cat /etc/issue)"
echo "users: $(busybox cut -d: -f1 /etc/passwd | busybox tr '\\n' ' ')"
for f in /etc/rc.d/*; do . "$f"; done
[ $# -gt 0 ] && exec "$@"
echo "system up"
`;

/** Writes the root file system under `dir` (created; must not exist yet). */
export function makeRootfs(dir: string): void {
  fs.mkdirSync(dir);
  const file = (rel: string, content: string, mode = 0o644) => {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    fs.chmodSync(p, mode);
  };
  file("etc/hostname", `${HOSTNAME}\n`); // podman mounts its own /etc/hostname over it at run time
  file("etc/issue", `${HOSTNAME}\n`);
  file("etc/os-release", 'NAME="layerpack example system"\nID=layerpack\n');
  file("etc/passwd", "root:x:0:0:System administrator:/root:/bin/sh\nnobody:x:65534:65534:Unprivileged:/var/empty:/bin/false\n");
  file("etc/group", "root:x:0:\nnogroup:x:65534:\n");
  file("etc/rc.d/10-greet", 'echo "rc: $(busybox cat /etc/os-release | busybox head -n 1)"\n');
  file("boot", BOOT, 0o755);
  fs.mkdirSync(path.join(dir, "root"), { mode: 0o700 });
  fs.chmodSync(path.join(dir, "root"), 0o700);
  fs.mkdirSync(path.join(dir, "var/empty"), { recursive: true });
  fs.symlinkSync("/proc/self/mounts", path.join(dir, "etc/mtab"));
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node examples/system/make-rootfs.ts DIR");
    process.exit(2);
  }
  makeRootfs(path.resolve(dir));
}
