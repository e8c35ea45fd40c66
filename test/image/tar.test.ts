// Unit tests of the header encoder, read back by tar-stream's extract as an independent parser.
import { describe, expect, it } from "vitest";
import { extract, type Header } from "tar-stream";
import { archive, type Entry } from "./tar-archive.ts";
import { encodeHeader, encodeHeaderInto, paddingFor, RootHeaders, validateEntryName, ZERO_BLOCKS, type TarHeader } from "../../src/image/tar.ts";
import { BuildError } from "../../src/errors.ts";


async function readBack(buf: Buffer): Promise<{ header: Header; data: Buffer }[]> {
  const ex = extract();
  const out: { header: Header; data: Buffer }[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

/** tar-stream's view of the first header in `buf`, which may be a truncated archive. */
function firstHeader(buf: Buffer): Promise<Header> {
  return new Promise((resolve, reject) => {
    const ex = extract();
    ex.on("entry", (header) => {
      resolve(header);
      ex.destroy();
    });
    ex.on("error", reject);
    ex.write(buf);
  });
}

const field = (b: Buffer, off: number, len: number) => b.subarray(off, off + len).toString("latin1");
const ustarAt = (b: Buffer) => b.subarray(b.length - 512);

describe("encodeHeaderInto", () => {
  const long = `${"d".repeat(60)}/${"e".repeat(90)}`;
  const single: TarHeader[] = [
    { name: "a", type: "file", mode: 0o644, size: 5, mtime: 1 },
    { name: "gnu/store/x-a/dir", type: "directory", mode: 0o755, mtime: 7, uid: 0, gid: 0 },
    { name: "n".repeat(100), type: "symlink", mode: 0o777, linkname: "t".repeat(100), mtime: 1, uid: 5, gid: 6, uname: "", gname: "" },
    { name: long, type: "file", mode: 0o4755, size: 8 * 1024 ** 3 - 1, mtime: 2 },
    { name: "dev/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3, mtime: 1 },
  ];
  it("writes exactly encodeHeader's block over whatever the buffer held, where no PAX header is needed", () => {
    for (const h of single) {
      const buf = Buffer.alloc(1100, 0xa5);
      expect(encodeHeaderInto(buf, 300, h)).toBe(true);
      expect(buf.subarray(300, 812).equals(encodeHeader(h))).toBe(true);
      expect(buf.subarray(0, 300).every((b) => b === 0xa5) && buf.subarray(812).every((b) => b === 0xa5)).toBe(true);
    }
  });
  it("writes nothing and returns false where encodeHeader needs a PAX header, and throws what it throws", () => {
    const pax: TarHeader[] = [
      { name: "x".repeat(101), type: "file", mode: 0o644, mtime: 1 },
      { name: "ä", type: "file", mode: 0o644, mtime: 1 },
      { name: "l", type: "symlink", mode: 0o777, linkname: "t".repeat(101), mtime: 1 },
      { name: "big", type: "file", mode: 0o644, size: 8 * 1024 ** 3, mtime: 1 },
      { name: "u", type: "file", mode: 0o644, uid: 2097152, mtime: 1 },
    ];
    for (const h of pax) {
      const buf = Buffer.alloc(512, 0xa5);
      expect(encodeHeaderInto(buf, 0, h)).toBe(false);
      expect(buf.every((b) => b === 0xa5)).toBe(true);
      expect(encodeHeader(h).length).toBeGreaterThan(512);
    }
    const bad: TarHeader = { name: "../x", type: "file", mode: 0o644, mtime: 1 };
    expect(() => encodeHeaderInto(Buffer.alloc(512), 0, bad)).toThrow(BuildError);
    expect(() => encodeHeaderInto(Buffer.alloc(511), 0, single[0]!)).toThrow(RangeError);
  });
});

describe("RootHeaders (the store layers' header path)", () => {
  type Plain = Pick<TarHeader, "name" | "type" | "mode" | "size" | "linkname">;
  const mtime = 1700000000;
  const root = RootHeaders.for(mtime)!;
  /** What the general encoder writes for the same entry owned by root. */
  const general = (e: Plain): Buffer => encodeHeader({ ...e, mtime, uid: 0, gid: 0, uname: "root", gname: "root" });
  const store = "gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.1";
  const fast: Plain[] = [
    { name: "a", type: "file", mode: 0o644, size: 0 },
    { name: `${store}/bin/hello`, type: "file", mode: 0o100555, size: 123456 },
    { name: `${store}/share/locale/pt_BR/LC_MESSAGES/hello.mo`, type: "file", mode: 0o444, size: 8 * 1024 ** 3 - 1 },
    { name: store, type: "directory", mode: 0o755 },
    { name: `${store}/lib/`, type: "directory", mode: 0o40755 },
    { name: "d".repeat(99), type: "directory", mode: 0o755 }, // 100 bytes with the '/' added
    { name: `${"p".repeat(155)}/${"n".repeat(100)}`, type: "file", mode: 0o644, size: 1 },
    { name: `${store}/lib/libhello.so`, type: "symlink", mode: 0o777, linkname: "t".repeat(100) },
    { name: "s", type: "symlink", mode: 0o777, linkname: "../../x y" },
  ];
  it("writes exactly the general encoder's block for root's files, directories and symlinks", () => {
    for (const e of fast) {
      const buf = Buffer.alloc(1024, 0xa5);
      expect(root.encodeInto(buf, 256, e), e.name).toBe(true);
      expect(buf.subarray(256, 768).equals(general(e)), e.name).toBe(true);
      expect(buf.subarray(0, 256).every((b) => b === 0xa5) && buf.subarray(768).every((b) => b === 0xa5)).toBe(true);
    }
  });
  it("declines what needs a PAX header or is invalid, leaving it (and its error) to the general path", () => {
    const declined: Plain[] = [
      { name: "x".repeat(101), type: "file", mode: 0o644, size: 0 }, // no '/' to split at
      { name: "d".repeat(100), type: "directory", mode: 0o755 }, // 101 bytes with its '/', which leaves no name
      { name: `${"p".repeat(156)}/n`, type: "file", mode: 0o644, size: 0 }, // prefix too long
      { name: "ä", type: "file", mode: 0o644, size: 0 },
      { name: "ok", type: "symlink", mode: 0o777, linkname: "ü" },
      { name: "l", type: "symlink", mode: 0o777, linkname: "t".repeat(101) },
      { name: "big", type: "file", mode: 0o644, size: 8 * 1024 ** 3 },
      { name: "../x", type: "file", mode: 0o644, size: 0 },
      { name: "a//b", type: "directory", mode: 0o755 },
      { name: "a/./b", type: "file", mode: 0o644, size: 0 },
      { name: "nul\0", type: "file", mode: 0o644, size: 0 },
      { name: "/abs", type: "file", mode: 0o644, size: 0 },
      { name: "file/", type: "file", mode: 0o644, size: 0 },
      { name: "l", type: "symlink", mode: 0o777, linkname: "" },
      { name: "f", type: "file", mode: 0o644, size: 0, linkname: "t" },
      { name: "d", type: "directory", mode: 0o755, size: 3 },
      { name: "f", type: "file", mode: 1.5, size: 0 },
      { name: "f", type: "file", mode: 0o644, size: -1 },
      { name: "f", type: "fifo", mode: 0o644 },
      { name: "h", type: "hardlink", mode: 0o644, linkname: "a" },
    ];
    for (const e of declined) expect(root.encodeInto(Buffer.alloc(512), 0, e), JSON.stringify(e)).toBe(false);
    expect(general(declined[1]!).length).toBeGreaterThan(512);
    expect(root.encodeInto(Buffer.alloc(511), 0, fast[0]!)).toBe(false);
    expect(RootHeaders.for(-1)).toBeNull();
    expect(RootHeaders.for(8 ** 11)).toBeNull();
    expect(RootHeaders.for(1.5)).toBeNull();
  });
  it("agrees with the general encoder on generated names and sizes", () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const chars = "abcdefghijklmnopqrstuvwxyz0123456789._-+~";
    const odd = [".", "..", "", "ä", "x\0y"];
    const component = () => {
      if (rand(25) === 0) return odd[rand(odd.length)]!;
      let c = "";
      for (let k = 1 + rand(30); k > 0; k--) c += chars[rand(chars.length)];
      return c;
    };
    let taken = 0;
    for (let i = 0; i < 3000; i++) {
      const name = Array.from({ length: 1 + rand(12) }, component).join("/") + (rand(10) === 0 ? "/" : "");
      const type = (["file", "directory", "symlink"] as const)[rand(3)]!;
      const e: Plain = { name, type, mode: rand(0o200000), ...(type === "file" ? { size: rand(2 ** 31) * (rand(3) + 1) } : {}), ...(type === "symlink" ? { linkname: name.slice(0, rand(120) + 1) } : {}) };
      const buf = Buffer.alloc(512);
      if (!root.encodeInto(buf, 0, e)) continue;
      taken++;
      expect(buf.equals(general(e)), JSON.stringify(e)).toBe(true);
    }
    expect(taken).toBeGreaterThan(1500); // most are valid, so most take the fast path
  });
});

describe("paddingFor / ZERO_BLOCKS", () => {
  it("pads to the next 512-byte boundary", () => {
    expect([0, 1, 511, 512, 513, 1024, 8589934592, 8589934593].map(paddingFor)).toEqual([0, 511, 1, 0, 511, 0, 0, 511]);
  });
  it("is two zero blocks", () => {
    expect(ZERO_BLOCKS.length).toBe(1024);
    expect(ZERO_BLOCKS.every((b) => b === 0)).toBe(true);
  });
});

describe("encodeHeader byte layout", () => {
  it("writes GNU-style octal fields, magic and checksum", () => {
    const b = encodeHeader({ name: "bin/sh", type: "file", mode: 0o100755, size: 10, mtime: 1, uid: 0, gid: 0 });
    expect(b.length).toBe(512);
    expect(field(b, 0, 7)).toBe("bin/sh\0");
    expect(field(b, 100, 8)).toBe("0000755\0");
    expect(field(b, 108, 8)).toBe("0000000\0");
    expect(field(b, 116, 8)).toBe("0000000\0");
    expect(field(b, 124, 12)).toBe("00000000012\0");
    expect(field(b, 136, 12)).toBe("00000000001\0");
    expect(field(b, 156, 1)).toBe("0");
    expect(field(b, 257, 8)).toBe("ustar\u000000");
    expect(field(b, 265, 5)).toBe("root\0");
    expect(field(b, 297, 5)).toBe("root\0");
    expect(field(b, 329, 16)).toBe("0000000\u00000000000\0");
    const chk = field(b, 148, 8);
    expect(chk).toMatch(/^[0-7]{6}\0 $/);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
    expect(parseInt(chk.slice(0, 6), 8)).toBe(sum);
  });

  it("adds the trailing slash to directories and keeps special mode bits", () => {
    const b = encodeHeader({ name: "tmp", type: "directory", mode: 0o1777, mtime: 1 });
    expect(field(b, 0, 5)).toBe("tmp/\0");
    expect(field(b, 100, 8)).toBe("0001777\0");
    expect(field(b, 156, 1)).toBe("5");
  });

  it("writes device numbers for char and block devices", () => {
    const b = encodeHeader({ name: "dev/null", type: "char", mode: 0o666, mtime: 1, devmajor: 1, devminor: 3 });
    expect(field(b, 156, 1)).toBe("3");
    expect(field(b, 329, 16)).toBe("0000001\u00000000003\0");
  });

  it("uses the full 100-byte name field without a PAX header, and splits longer names at a '/'", () => {
    const n100 = "y".repeat(100);
    const b = encodeHeader({ name: n100, type: "file", mode: 0o644, mtime: 1 });
    expect(b.length).toBe(512);
    expect(field(b, 0, 100)).toBe(n100);
    const long = `${"a".repeat(150)}/${"b".repeat(100)}`;
    const s = encodeHeader({ name: long, type: "file", mode: 0o644, mtime: 1 });
    expect(s.length).toBe(512);
    expect(field(s, 0, 100)).toBe("b".repeat(100));
    expect(field(s, 345, 151)).toBe(`${"a".repeat(150)}\0`);
  });

  it("writes a PAX header with path= for an unsplittable name, and a truncated ustar name", () => {
    const name = `${"d".repeat(150)}/${"e".repeat(101)}`;
    const b = encodeHeader({ name, type: "file", mode: 0o644, mtime: 7 });
    expect(b.length).toBe(512 * 3);
    expect(field(b, 156, 1)).toBe("x");
    expect(field(b, 0, 100)).toBe(`${"d".repeat(150)}/PaxHeaders/${"e".repeat(101)}`.slice(0, 100));
    expect(field(b, 100, 8)).toBe("0000644\0");
    expect(field(b, 136, 12)).toBe("00000000007\0");
    expect(field(b, 265, 64)).toBe("\0".repeat(64));
    const rec = `${name.length + 10} path=${name}\n`;
    expect(rec.length).toBe(name.length + 10);
    expect(field(b, 124, 12)).toBe(`${rec.length.toString(8).padStart(11, "0")}\0`);
    expect(field(b, 512, rec.length + 1)).toBe(`${rec}\0`);
    const u = ustarAt(b);
    expect(field(u, 0, 100)).toBe(name.slice(0, 100));
    expect(field(u, 345, 1)).toBe("\0");
  });

  it("names the PAX header GNU-style for top-level entries and directories", () => {
    const b = encodeHeader({ name: "é", type: "directory", mode: 0o755, mtime: 1 });
    expect(b.subarray(0, 16).toString("utf8").replace(/\0+$/, "")).toBe("./PaxHeaders/é");
    expect(b.subarray(512).toString("utf8")).toContain("12 path=é/\n");
  });

  it("writes records in the fixed order path, linkpath, uid, gid, with self-inclusive lengths", () => {
    const b = encodeHeader({
      name: "a/ü", type: "symlink", mode: 0o777, mtime: 1, linkname: "t".repeat(120), uid: 3000000, gid: 4000000,
    });
    const size = parseInt(field(b, 124, 11), 8);
    const text = b.subarray(512, 512 + size).toString("utf8");
    expect(text).toBe(`13 path=a/ü\n134 linkpath=${"t".repeat(120)}\n15 uid=3000000\n15 gid=4000000\n`);
    for (const line of text.split(/(?<=\n)/)) expect(Buffer.byteLength(line)).toBe(parseInt(line, 10));
    const u = ustarAt(b);
    expect(field(u, 108, 16)).toBe("0000000\u00000000000\0");
    expect(field(u, 157, 100)).toBe("t".repeat(100));
  });

  it("handles the record length digit carry (99-byte and 101-byte records)", () => {
    for (const [extra, len] of [[88, 99], [89, 101]] as const) {
      const name = `é${"a".repeat(extra)}`; // 90 or 91 UTF-8 bytes
      const b = encodeHeader({ name, type: "file", mode: 0o644, mtime: 1 });
      expect(parseInt(field(b, 124, 11), 8)).toBe(len);
      expect(b.subarray(512, 512 + len).toString("utf8")).toBe(`${len} path=${name}\n`);
    }
  });

  it("moves sizes over 8 GiB - 1 to a size= record and writes 0 in the ustar field", async () => {
    const max = encodeHeader({ name: "big", type: "file", mode: 0o644, mtime: 1, size: 8589934591 });
    expect(max.length).toBe(512);
    expect(field(max, 124, 12)).toBe("77777777777\0");
    const b = encodeHeader({ name: "big", type: "file", mode: 0o644, mtime: 1, size: 8589934592 });
    expect(b.length).toBe(1536);
    expect(field(b, 512, 20)).toBe("19 size=8589934592\n\0");
    expect(field(ustarAt(b), 124, 12)).toBe("00000000000\0");
    const h = await firstHeader(Buffer.concat([b, Buffer.alloc(512)]));
    expect(h.name).toBe("big");
    expect(h.size).toBe(8589934592);
    const huge = encodeHeader({ name: "big", type: "file", mode: 0o644, mtime: 1, size: Number.MAX_SAFE_INTEGER });
    expect((await firstHeader(huge)).size).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("tar-stream reads back what we write", () => {
  it("round-trips names, types, modes, links, sizes, owners and mtimes", async () => {
    const utf = "données/été-☃.txt";
    const entries: Entry[] = [
      { h: { name: "gnu", type: "directory", mode: 0o755, mtime: 1 } },
      { h: { name: "gnu/store/", type: "directory", mode: 0o1775, mtime: 1 } },
      { h: { name: "gnu/store/f", type: "file", mode: 0o4755, mtime: 2, uid: 5, gid: 6 }, data: Buffer.from("hello\n") },
      { h: { name: "gnu/store/h", type: "hardlink", mode: 0o4755, mtime: 2, linkname: "gnu/store/f" } },
      { h: { name: "gnu/store/s", type: "symlink", mode: 0o777, mtime: 3, linkname: "../x/ÿ" } },
      { h: { name: "x".repeat(99), type: "file", mode: 0o444, mtime: 1 }, data: Buffer.alloc(512, 1) },
      { h: { name: "y".repeat(100), type: "file", mode: 0o444, mtime: 1 }, data: Buffer.alloc(513, 2) },
      { h: { name: "z".repeat(101), type: "file", mode: 0o444, mtime: 1 }, data: Buffer.alloc(0) },
      { h: { name: `${"p".repeat(154)}/${"q".repeat(100)}`, type: "file", mode: 0o444, mtime: 1 } },
      { h: { name: `${"r".repeat(150)}/${"s".repeat(100)}/${"t".repeat(48)}`, type: "file", mode: 0o444, mtime: 1 } },
      { h: { name: "l", type: "symlink", mode: 0o777, mtime: 1, linkname: `/${"u".repeat(200)}` } },
      { h: { name: "hl", type: "hardlink", mode: 0o444, mtime: 1, linkname: `${"p".repeat(154)}/${"q".repeat(100)}` } },
      { h: { name: utf, type: "file", mode: 0o600, mtime: 1, uid: 3000000, gid: 2097152 }, data: Buffer.from("u") },
      { h: { name: "dev/sda", type: "block", mode: 0o660, mtime: 1, devmajor: 8, devminor: 1 } },
      { h: { name: "dev/tty", type: "char", mode: 0o666, mtime: 1, devmajor: 5, devminor: 0 } },
      { h: { name: "fifo", type: "fifo", mode: 0o644, mtime: 1, uname: "", gname: "" } },
    ];
    const got = await readBack(archive(entries));
    const typeName = { file: "file", hardlink: "link", symlink: "symlink", char: "character-device",
      block: "block-device", fifo: "fifo", directory: "directory" } as const;
    expect(got.length).toBe(entries.length);
    entries.forEach(({ h, data }, i) => {
      const { header, data: back } = got[i]!;
      const name = h.type === "directory" && !h.name.endsWith("/") ? `${h.name}/` : h.name;
      expect(header.name).toBe(name);
      expect(header.type).toBe(typeName[h.type]);
      expect(header.mode).toBe(h.mode);
      expect(header.size).toBe(data?.length ?? 0);
      expect(back.equals(data ?? Buffer.alloc(0))).toBe(true);
      expect(header.linkname ?? "").toBe(h.linkname ?? "");
      expect(header.mtime.getTime()).toBe(h.mtime * 1000);
      const pax = (header.pax ?? {}) as Record<string, string>;
      expect(Number(pax.uid ?? header.uid)).toBe(h.uid ?? 0);
      expect(Number(pax.gid ?? header.gid)).toBe(h.gid ?? 0);
      expect(header.uname).toBe(h.uname ?? "root");
      expect(header.devmajor).toBe(h.devmajor ?? 0);
      expect(header.devminor).toBe(h.devminor ?? 0);
      expect(Object.keys(pax).some((k) => /atime|ctime|mtime/.test(k))).toBe(false);
    });
  });
});

describe("validateEntryName / encodeHeader errors", () => {
  it.each([
    ["", /empty/],
    ["/abs", /absolute/],
    ["../x", /'\.\.'/],
    ["a/../b", /'\.\.'/],
    ["a/..", /'\.\.'/],
    ["./a", /'\.\/'/],
    [".", /'\.\/'/],
    ["a/./b", /'\.' component/],
    ["a//b", /empty component/],
    ["a\0b", /NUL/],
  ])("rejects %j", (name, why) => {
    expect(() => validateEntryName(name)).toThrow(BuildError);
    expect(() => validateEntryName(name)).toThrow(why);
    expect(() => encodeHeader({ name, type: "file", mode: 0o644, mtime: 1 })).toThrow(BuildError);
  });

  it.each(["a", "a/b", "a/b/", "..a", "a..", ".hidden/x", "é"])("accepts %j", (name) => {
    expect(() => validateEntryName(name)).not.toThrow();
  });

  it.each<[string, TarHeader, RegExp]>([
    ["a file named like a directory", { name: "a/", type: "file", mode: 0o644, mtime: 1 }, /only a directory/],
    ["a size on a symlink", { name: "s", type: "symlink", mode: 0o777, mtime: 1, size: 3, linkname: "t" }, /size/],
    ["a symlink without target", { name: "s", type: "symlink", mode: 0o777, mtime: 1 }, /needs a linkname/],
    ["a NUL in a target", { name: "s", type: "symlink", mode: 0o777, mtime: 1, linkname: "a\0" }, /NUL/],
    ["an absolute hardlink target", { name: "h", type: "hardlink", mode: 0, mtime: 1, linkname: "/f" }, /absolute/],
    ["a linkname on a file", { name: "f", type: "file", mode: 0o644, mtime: 1, linkname: "x" }, /linkname/],
    ["a negative mtime", { name: "f", type: "file", mode: 0o644, mtime: -1 }, /mtime/],
    ["a fractional mtime", { name: "f", type: "file", mode: 0o644, mtime: 1.5 }, /mtime/],
    ["a too large mtime", { name: "f", type: "file", mode: 0o644, mtime: 8 ** 11 }, /mtime/],
    ["an unsafe size", { name: "f", type: "file", mode: 0o644, mtime: 1, size: 2 ** 53 }, /size/],
    ["a too large devmajor", { name: "c", type: "char", mode: 0, mtime: 1, devmajor: 2097152 }, /devmajor/],
    ["a long uname", { name: "f", type: "file", mode: 0, mtime: 1, uname: "u".repeat(32) }, /uname/],
    ["an unknown type", { name: "f", type: "socket" as "file", mode: 0, mtime: 1 }, /unknown type/],
  ])("rejects %s", (_what, h, why) => {
    expect(() => encodeHeader(h)).toThrow(BuildError);
    expect(() => encodeHeader(h)).toThrow(why);
  });
});
