// GNU tar as the oracle: it must list and extract what we write, and for simple trees write the same bytes.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archive, type Entry } from "./tar-archive.ts";
import { encodeHeader, type TarType } from "../../src/image/tar.ts";

/** True when GNU tar is on PATH; in CI its absence fails this file, locally it skips with a printed reason. */
function haveGnuTar(): boolean {
  const r = spawnSync("tar", ["--version"], { encoding: "utf8" });
  const ok = r.status === 0 && r.stdout.includes("GNU tar");
  if (!ok && process.env.CI) throw new Error("GNU tar is required for test/image/tar-gnu.test.ts (Debian package tar)");
  if (!ok) console.warn("skipping GNU tar tests: GNU tar not found on PATH (install the Debian package tar)");
  return ok;
}
const hasTar = haveGnuTar();


function run(args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync("tar", args, { ...opts, encoding: "utf8", env: { ...process.env, TZ: "UTC", LC_ALL: "C.UTF-8" } });
  if (r.status !== 0) throw new Error(`tar ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

let tmp = "";
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-tar-"));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Makes a fresh directory under the test's temp dir. */
function dir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

const f = (name: string, mode: number, text: string, mtime = 1): Entry => ({
  h: { name, type: "file", mode, mtime },
  data: Buffer.from(text),
});
const d = (name: string, mode = 0o755, mtime = 1): Entry => ({ h: { name, type: "directory", mode, mtime } });
const l = (name: string, linkname: string, type: "symlink" | "hardlink" = "symlink", mode = 0o777): Entry => ({
  h: { name, type, mode, mtime: 1, linkname },
});

describe.skipIf(!hasTar)("byte-exact against GNU tar", () => {
  const gnuFlags = ["-b1", "--sort=name", "--mtime=@1", "--owner=root:0", "--group=root:0"];
  const posix = ["--format=posix", "--pax-option=delete=atime,delete=ctime", ...gnuFlags];

  it("matches `tar --format=ustar` for short, 100-byte and prefix-split names, links and special modes", () => {
    const src = dir("ustar-src");
    const a = "a".repeat(60);
    fs.mkdirSync(path.join(src, "d", a, "t"), { recursive: true });
    fs.writeFileSync(path.join(src, "d", a, "b".repeat(60)), "split\n");
    fs.writeFileSync(path.join(src, "d", "c".repeat(97)), "99 bytes\n");
    fs.writeFileSync(path.join(src, "d", "f"), "hi\n");
    fs.linkSync(path.join(src, "d", "f"), path.join(src, "d", "h"));
    fs.symlinkSync("f", path.join(src, "d", "l"));
    fs.writeFileSync(path.join(src, "d", "s"), "setuid");
    fs.writeFileSync(path.join(src, "d", "y".repeat(98)), "");
    fs.mkdirSync(path.join(src, "d", "tmp"));
    fs.chmodSync(path.join(src, "d"), 0o755);
    fs.chmodSync(path.join(src, "d", a), 0o555);
    fs.chmodSync(path.join(src, "d", a, "t"), 0o700);
    fs.chmodSync(path.join(src, "d", a, "b".repeat(60)), 0o444);
    fs.chmodSync(path.join(src, "d", "c".repeat(97)), 0o600);
    fs.chmodSync(path.join(src, "d", "f"), 0o644);
    fs.chmodSync(path.join(src, "d", "s"), 0o4755);
    fs.chmodSync(path.join(src, "d", "tmp"), 0o1777);
    fs.chmodSync(path.join(src, "d", "y".repeat(98)), 0o640);
    const gnuFile = path.join(tmp, "gnu-ustar.tar");
    run(["--format=ustar", ...gnuFlags, "-C", src, "-cf", gnuFile, "d"]);

    const ours = archive([
      d("d", 0o755),
      d(`d/${a}`, 0o555),
      f(`d/${a}/${"b".repeat(60)}`, 0o444, "split\n"), // 123 bytes: prefix "d/aaa…" + name "bbb…"
      d(`d/${a}/t/`, 0o700), // 66 bytes
      f(`d/${"c".repeat(97)}`, 0o600, "99 bytes\n"),
      f("d/f", 0o644, "hi\n"),
      l("d/h", "d/f", "hardlink", 0o644),
      l("d/l", "f"),
      f("d/s", 0o4755, "setuid"),
      d("d/tmp", 0o1777),
      f(`d/${"y".repeat(98)}`, 0o640, ""), // exactly 100 bytes: fills the name field, no NUL
    ]);
    expect(ours.equals(fs.readFileSync(gnuFile))).toBe(true);
  });

  it("matches `tar --format=posix` for unsplittable names, long link targets and non-ASCII names", () => {
    const src = dir("posix-src");
    const c = "c".repeat(101);
    const dd = "d".repeat(150);
    const e = "e".repeat(101);
    const t = `../${"t".repeat(150)}`;
    fs.writeFileSync(path.join(src, c), "long");
    fs.mkdirSync(path.join(src, dd));
    fs.writeFileSync(path.join(src, dd, e), "deep");
    fs.linkSync(path.join(src, c), path.join(src, "hl"));
    fs.symlinkSync(t, path.join(src, "lnk"));
    fs.writeFileSync(path.join(src, "m"), "short");
    fs.writeFileSync(path.join(src, "été ☃.txt"), "utf8");
    for (const p of [c, dd, path.join(dd, e), "m", "été ☃.txt"]) fs.chmodSync(path.join(src, p), 0o644);
    fs.chmodSync(path.join(src, dd), 0o755);
    const gnuFile = path.join(tmp, "gnu-posix.tar");
    // Top-level names are archived in command-line order, so pass them sorted bytewise.
    run([...posix, "-C", src, "-cf", gnuFile, c, dd, "hl", "lnk", "m", "été ☃.txt"]);

    const ours = archive([
      f(c, 0o644, "long"),
      d(dd),
      f(`${dd}/${e}`, 0o644, "deep"),
      l("hl", c, "hardlink", 0o644),
      l("lnk", t),
      f("m", 0o644, "short"),
      f("été ☃.txt", 0o644, "utf8"),
    ]);
    expect(ours.equals(fs.readFileSync(gnuFile))).toBe(true);
  });

  it("matches `tar --format=posix` for uid/gid over 2097151, alone and after a path record", () => {
    const src = dir("owner-src");
    const dd = "d".repeat(150);
    const x = `${dd}/${"e".repeat(101)}`; // unsplittable: GNU posix and we both write path=
    fs.mkdirSync(path.join(src, dd));
    fs.writeFileSync(path.join(src, x), "x");
    fs.writeFileSync(path.join(src, "f"), "f");
    fs.chmodSync(path.join(src, dd), 0o755);
    fs.chmodSync(path.join(src, x), 0o644);
    fs.chmodSync(path.join(src, "f"), 0o644);
    const gnuFile = path.join(tmp, "gnu-owner.tar");
    const owner = ["--owner=root:3000000", "--group=root:4000000"];
    run([...posix.filter((o) => !/^--(owner|group)=/.test(o)), ...owner, "-C", src, "-cf", gnuFile, dd, "f"]);
    const own = <T extends Entry>(e: T): T => ({ ...e, h: { ...e.h, uid: 3000000, gid: 4000000 } });
    const ours = archive([own(d(dd)), own(f(x, 0o644, "x")), own(f("f", 0o644, "f"))]);
    expect(ours.subarray(512, 1024).toString("latin1")).toContain("15 uid=3000000\n15 gid=4000000\n");
    expect(ours.equals(fs.readFileSync(gnuFile))).toBe(true);
  });

  it("matches GNU tar's headers for a file over 8 GiB (size= record, ustar size 0), without writing the data", () => {
    const src = dir("big-src");
    const big = path.join(src, "big");
    fs.closeSync(fs.openSync(big, "w"));
    fs.truncateSync(big, 8589934592); // sparse: GNU tar is stopped by the closed pipe after the headers
    fs.chmodSync(big, 0o644);
    const r = spawnSync("sh", ["-c", `tar ${posix.join(" ")} -C "$1" -cf - big | head -c 1536`, "sh", src], {
      maxBuffer: 1 << 20,
    });
    const gnu = r.stdout;
    const ours = encodeHeader({ name: "big", type: "file", mode: 0o644, mtime: 1, size: 8589934592 });
    expect(gnu.length).toBe(1536);
    expect(ours.subarray(512, 531).toString("latin1")).toBe("19 size=8589934592\n");
    expect(ours.equals(gnu)).toBe(true);

    // GNU tar parses our header from a truncated archive and prints the size before reporting the missing data.
    const truncated = path.join(tmp, "big-truncated.tar");
    fs.writeFileSync(truncated, Buffer.concat([ours, Buffer.alloc(512)]));
    const list = spawnSync("tar", ["--numeric-owner", "-tvf", truncated], { encoding: "utf8" });
    expect(list.stdout).toMatch(/^-rw-r--r-- 0\/0 +8589934592 1970-01-01 \d\d:\d\d big$/m);
    expect(list.status).not.toBe(0);
  });
});

const TYPE_CHAR: Record<TarType, string> = {
  file: "-", hardlink: "h", symlink: "l", char: "c", block: "b", fifo: "p", directory: "d",
};

/** `ls -l`-style mode string as `tar -tv` prints it. */
function modeString(type: TarType, mode: number): string {
  const bit = (m: number, ch: string) => (mode & m ? ch : "-");
  const special = (x: number, s: number, lower: string) =>
    mode & s ? (mode & x ? lower : lower.toUpperCase()) : bit(x, "x");
  return TYPE_CHAR[type] + bit(0o400, "r") + bit(0o200, "w") + special(0o100, 0o4000, "s")
    + bit(0o40, "r") + bit(0o20, "w") + special(0o10, 0o2000, "s")
    + bit(0o4, "r") + bit(0o2, "w") + special(0o1, 0o1000, "t");
}

describe.skipIf(!hasTar)("GNU tar lists and extracts our archives", () => {
  const p155 = "p".repeat(154);
  const r300 = `${"r".repeat(150)}/${"s".repeat(100)}/${"t".repeat(48)}`;
  const entries: Entry[] = [
    d("gnu"),
    d("gnu/store", 0o755, 5),
    f("gnu/store/f", 0o4755, "setuid file\n", 7),
    l("gnu/store/h", "gnu/store/f", "hardlink", 0o4755),
    l("gnu/store/s", "f"),
    d("tmp", 0o1777),
    f("x".repeat(99), 0o444, "99"),
    f("y".repeat(100), 0o444, "100"),
    f("z".repeat(101), 0o555, "101"),
    f("w".repeat(255), 0o444, "255 basename"),
    d(p155),
    f(`${p155}/${"q".repeat(100)}`, 0o444, "255 split"),
    d("r".repeat(150)),
    d(`${"r".repeat(150)}/${"s".repeat(100)}`),
    f(r300, 0o644, "300"),
    l("long-link", `../${"u".repeat(250)}`),
    l("long-hard", r300, "hardlink", 0o644),
    d("données"),
    f("données/été ☃.txt", 0o600, "utf8"),
    l("données/lien", "été ☃.txt"),
    l("données/dur", "données/été ☃.txt", "hardlink", 0o600),
    { h: { name: "fifo", type: "fifo", mode: 0o640, mtime: 1 } },
  ];

  it("extracts identical names, types, modes, link targets, hardlinks, sizes and mtimes", () => {
    const file = path.join(tmp, "ours.tar");
    fs.writeFileSync(file, archive(entries));
    const out = dir("extract");
    run(["-xpf", file, "-C", out, "--numeric-owner"]);
    const inodes = new Map<string, number>();
    for (const { h, data } of entries) {
      const p = path.join(out, h.name);
      const st = fs.lstatSync(p);
      expect({ name: h.name, uid: st.uid, gid: st.gid }).toEqual({ name: h.name, uid: 0, gid: 0 });
      if (h.type === "symlink") {
        expect(st.isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(p)).toBe(h.linkname);
        continue;
      }
      expect({ name: h.name, mode: st.mode & 0o7777 }).toEqual({ name: h.name, mode: h.mode });
      // A hardlink shares its target's inode, so its mtime is the target's.
      if (h.type !== "hardlink") expect({ name: h.name, mtime: st.mtimeMs }).toEqual({ name: h.name, mtime: h.mtime * 1000 });
      if (h.type === "directory") expect(st.isDirectory()).toBe(true);
      if (h.type === "fifo") expect(st.isFIFO()).toBe(true);
      if (h.type === "file") {
        expect(st.isFile()).toBe(true);
        expect(fs.readFileSync(p).equals(data!)).toBe(true);
        inodes.set(h.name, st.ino);
      }
      if (h.type === "hardlink") {
        expect(st.isFile()).toBe(true);
        expect(st.ino).toBe(inodes.get(h.linkname!));
        expect(st.nlink).toBe(2);
      }
    }
    const all = run(["-tf", file]).split("\n").filter(Boolean);
    expect(all).toEqual(entries.map(({ h }) => (h.type === "directory" ? `${h.name}/` : h.name)));
  });

  it("lists identical names, modes, owners (incl. > 2097151), sizes, link targets and devices", () => {
    const listed: Entry[] = [
      ...entries,
      { h: { name: "dev/tty", type: "char", mode: 0o666, mtime: 1, devmajor: 5, devminor: 0 } },
      { h: { name: "dev/sda", type: "block", mode: 0o660, mtime: 1, devmajor: 8, devminor: 1 } },
      { ...f("big-owner", 0o644, "o"), h: { ...f("big-owner", 0o644, "o").h, uid: 3000000, gid: 2097152 } },
      { h: { name: "small-owner", type: "file", mode: 0o644, mtime: 1, uid: 2097151, gid: 1000 } },
    ];
    const file = path.join(tmp, "listed.tar");
    fs.writeFileSync(file, archive(listed));
    const lines = run(["--numeric-owner", "--full-time", "--quoting-style=literal", "-tvf", file])
      .split("\n").filter(Boolean);
    expect(lines.length).toBe(listed.length);
    listed.forEach(({ h, data }, i) => {
      const m = /^(\S{10}) (\d+)\/(\d+) +(\S+) (\S+ \S+) (.*)$/.exec(lines[i]!);
      expect(m, lines[i]).not.toBeNull();
      const [, mode, uid, gid, size, time, rest] = m!;
      const name = h.type === "directory" ? `${h.name}/` : h.name;
      const tail = h.type === "symlink" ? ` -> ${h.linkname}` : h.type === "hardlink" ? ` link to ${h.linkname}` : "";
      const sizeField = h.type === "char" || h.type === "block" ? `${h.devmajor},${h.devminor}` : String(data?.length ?? 0);
      expect({ mode, uid, gid, size, rest }).toEqual({
        mode: modeString(h.type, h.mode), uid: String(h.uid ?? 0), gid: String(h.gid ?? 0), size: sizeField,
        rest: name + tail,
      });
      expect(time).toBe(new Date(h.mtime * 1000).toISOString().replace("T", " ").slice(0, 19));
    });
  });
});
