// Which store items a base image holds: whole (its NAR size from the layer's entries equals the item's), stacked
// as a runtime stacks layers (whiteouts, opaque directories), and never an item a layer holds only part of, links
// elsewhere, or that two layers touch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { listLayer, type LayerListing } from "../../src/oci/list-layer.ts";
import { ArchiveBudget } from "../../src/oci/blob-file.ts";
import { narSize } from "../../src/store/nar.ts";
import { checkBaseConfig, heldByBase, heldItems } from "../../src/image/base.ts";

let dir: string;
const ITEM = "gnu/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib";
const OTHER = "gnu/store/cccccccccccccccccccccccccccccccc-app";

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-base-held-"));
  const item = path.join(dir, "root", ITEM);
  fs.mkdirSync(path.join(item, "lib"), { recursive: true });
  fs.writeFileSync(path.join(item, "lib", "x.so"), Buffer.alloc(5000, 7));
  fs.writeFileSync(path.join(item, "README"), "hello\n");
  fs.chmodSync(path.join(item, "README"), 0o755);
  fs.symlinkSync("lib/x.so", path.join(item, "x"));
  fs.linkSync(path.join(item, "lib", "x.so"), path.join(item, "lib", "y.so"));
  fs.mkdirSync(path.join(dir, "root", OTHER, "bin"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", OTHER, "bin", "app"), "app\n");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A layer tar of `names` under root (GNU tar: hard links as links), listed. */
async function layer(root: string, names: string[]): Promise<LayerListing> {
  const tar = path.join(dir, `layer-${Math.random().toString(36).slice(2)}.tar`);
  execFileSync("tar", ["-cf", tar, "-C", root, ...names]);
  return listLayer(fs.createReadStream(tar), "none", new ArchiveBudget("test"));
}
const base = (l: LayerListing) => ({ baseListing: { items: l.items, whiteouts: l.whiteouts, opaque: l.opaque } });

describe("store items a base image holds", () => {
  it("counts an item held whole, with the NAR size of the item on disk (links and hard links included)", async () => {
    const l = await layer(path.join(dir, "root"), [ITEM, OTHER]);
    const want = narSize(path.join(dir, "root", ITEM));
    expect(l.items.find((it) => it.path === `/${ITEM}`)?.narSize).toBe(want);
    const held = heldItems([base(l)]);
    expect(held.get(`/${ITEM}`)).toBe(want);
    // The planner takes it as the base's only when the closure's item has that size.
    expect(heldByBase({ narSizes: Object.fromEntries(held) }, { items: [{ path: `/${ITEM}`, narSize: want, references: [] }, { path: `/${OTHER}`, narSize: 1, references: [] }] })).toEqual([`/${ITEM}`]);
  });

  it("does not count a part of an item, a link in its place, or an item two layers touch", async () => {
    // A part: its NAR size is that of the part (with the directories it implies), not the item's.
    const partial = await layer(path.join(dir, "root"), [`${ITEM}/README`]);
    expect(heldItems([base(partial)]).get(`/${ITEM}`)).toBeLessThan(narSize(path.join(dir, "root", ITEM)));
    const fake = path.join(dir, "fake");
    fs.mkdirSync(path.join(fake, "gnu/store"), { recursive: true });
    fs.symlinkSync("/etc", path.join(fake, ITEM));
    const link = await layer(fake, [ITEM]);
    const held = heldItems([base(link)]);
    expect(held.get(`/${ITEM}`)).not.toBe(narSize(path.join(dir, "root", ITEM)));
    const whole = await layer(path.join(dir, "root"), [ITEM, OTHER]);
    expect(heldItems([base(whole), base(partial)]).has(`/${ITEM}`)).toBe(false);
    expect(heldItems([base(whole), base(partial)]).has(`/${OTHER}`)).toBe(true);
  });

  it("keeps names whose bytes are not UTF-8 apart, and reads UTF-8 names as text", async () => {
    const root = path.join(dir, "bytes");
    const hash = "d".repeat(32);
    // The third is café in latin1 (not UTF-8): it must not become the UTF-8 café of the fourth.
    const names = [Buffer.from([0x61, 0xff, 0xfe]), Buffer.from([0x61, 0xfe, 0xff]), Buffer.from("café", "latin1"), Buffer.from("café")];
    for (const n of names) {
      const item = Buffer.concat([Buffer.from(`${root}/gnu/store/${hash}-`), n]);
      fs.mkdirSync(item, { recursive: true });
      fs.writeFileSync(Buffer.concat([item, Buffer.from("/f")]), "x");
    }
    const l = await layer(root, ["gnu"]);
    expect(l.items).toHaveLength(4);
    expect(new Set(l.items.map((it) => it.path)).size).toBe(4);
    expect(l.items.map((it) => it.path)).toContain(`/gnu/store/${hash}-café`);
  });

  it("counts hard links into another item (deduplicated stores) and parent directories a tar leaves out", async () => {
    const root = path.join(dir, "linked");
    fs.cpSync(path.join(dir, "root"), root, { recursive: true });
    fs.rmSync(path.join(root, OTHER, "bin", "app"));
    fs.linkSync(path.join(root, ITEM, "README"), path.join(root, OTHER, "bin", "app"));
    const linked = await layer(root, [ITEM, OTHER]);
    expect(linked.items.map((it) => it.narSize)).toEqual([narSize(path.join(root, ITEM)), narSize(path.join(root, OTHER))]);
    // Files and links only, no directory entries: the runtime makes the directories, so the item is still whole.
    const names = execFileSync("find", [ITEM, "-type", "f", "-o", "-type", "l"], { cwd: root, encoding: "utf8" }).trim().split("\n");
    const tar = path.join(dir, "nodirs.tar");
    execFileSync("tar", ["-cf", tar, "-C", root, "--no-recursion", ...names]);
    const nodirs = await listLayer(fs.createReadStream(tar), "none", new ArchiveBudget("test"));
    expect(nodirs.items.find((it) => it.path === `/${ITEM}`)?.narSize).toBe(narSize(path.join(root, ITEM)));
  });

  it("charges store items to the archive budget, not the files in them (a store can hold millions)", async () => {
    const root = path.join(dir, "many");
    fs.mkdirSync(path.join(root, ITEM), { recursive: true });
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(root, ITEM, `f${i}`), "x");
    const tar = path.join(dir, "many.tar");
    execFileSync("tar", ["-cf", tar, "-C", root, ITEM]);
    const names: string[] = [];
    const budget = new ArchiveBudget("test");
    const charge = budget.name.bind(budget);
    budget.name = (name: string, what?: string) => (names.push(name), charge(name, what));
    const l = await listLayer(fs.createReadStream(tar), "none", budget);
    expect(l.items[0]!.narSize).toBe(narSize(path.join(root, ITEM)));
    // One charge for the item (and the store's own directories), none for its 300 files.
    expect(names.filter((n) => n.startsWith(`/${ITEM}`))).toEqual([`/${ITEM}`]);
  });

  it("follows whiteouts and opaque directories of the layers above", async () => {
    const whole = await layer(path.join(dir, "root"), [ITEM, OTHER]);
    const wh = path.join(dir, "wh");
    fs.mkdirSync(path.join(wh, "gnu/store"), { recursive: true });
    fs.writeFileSync(path.join(wh, "gnu/store", `.wh.${path.basename(ITEM)}`), "");
    expect([...heldItems([base(whole), base(await layer(wh, ["gnu/store"]))]).keys()]).toEqual([`/${OTHER}`]);
    const opq = path.join(dir, "opq");
    fs.mkdirSync(path.join(opq, "gnu/store"), { recursive: true });
    fs.writeFileSync(path.join(opq, "gnu/store", ".wh..wh..opq"), "");
    expect(heldItems([base(whole), base(await layer(opq, ["gnu/store"]))]).size).toBe(0);
    // A link (or file) where the store directory was hides everything below it.
    const hide = path.join(dir, "hide");
    fs.mkdirSync(path.join(hide, "gnu"), { recursive: true });
    fs.symlinkSync("/tmp", path.join(hide, "gnu/store"));
    expect(heldItems([base(whole), base(await layer(hide, ["gnu/store"]))]).size).toBe(0);
  });

  it("a store outside /gnu and /nix is hidden by a link in the place of any directory above it, in a layer of no items", async () => {
    const opt = path.join(dir, "opt-root");
    const item = "opt/store/dddddddddddddddddddddddddddddddd-lib";
    fs.mkdirSync(path.join(opt, item), { recursive: true });
    fs.writeFileSync(path.join(opt, item, "x"), "x\n");
    const whole = await layer(opt, ["opt"]);
    expect([...heldItems([base(whole)]).keys()]).toEqual([`/${item}`]);
    for (const replaced of ["opt", "opt/store"]) {
      const hide = path.join(dir, `hide-${replaced.replace("/", "-")}`);
      fs.mkdirSync(path.dirname(path.join(hide, replaced)), { recursive: true });
      fs.symlinkSync("/srv", path.join(hide, replaced));
      expect(heldItems([base(whole), base(await layer(hide, [replaced.split("/")[0]!]))]).size, replaced).toBe(0);
    }
    // A file elsewhere hides nothing.
    const other = path.join(dir, "other-file");
    fs.mkdirSync(path.join(other, "etc"), { recursive: true });
    fs.writeFileSync(path.join(other, "etc/motd"), "hi\n");
    expect(heldItems([base(whole), base(await layer(other, ["etc"]))]).size).toBe(1);
  });
});

describe("a base's layer entries of a kind the listing cannot follow", () => {
  it("an old-GNU sparse file, whose map goes on past its header, is refused by name", async () => {
    const root = path.join(dir, "sparse-root");
    fs.mkdirSync(path.join(root, "var"), { recursive: true });
    const fd = fs.openSync(path.join(root, "var", "sparse"), "w");
    for (let i = 0; i < 30; i++) fs.writeSync(fd, Buffer.alloc(100, i + 1), 0, 100, i * 65536);
    fs.closeSync(fd);
    const tar = path.join(dir, "sparse.tar");
    execFileSync("tar", ["-c", "--format=gnu", "--sparse", "-f", tar, "-C", root, "var"]);
    await expect(listLayer(fs.createReadStream(tar), "none", new ArchiveBudget("test"))).rejects.toThrow(/the entry "var\/sparse" is of a kind base images do not hold/);
    // Its PAX form (tar --sparse --format=posix) too, which tar-stream reads as a file of another name.
    const posix = path.join(dir, "sparse-posix.tar");
    execFileSync("tar", ["-c", "--format=posix", "--sparse", "-f", posix, "-C", root, "var"]);
    await expect(listLayer(fs.createReadStream(posix), "none", new ArchiveBudget("test"))).rejects.toThrow(/is a GNU sparse file \(PAX GNU\.sparse records\)/);
  });
});

describe("a base's config", () => {
  const image = (config: Record<string, unknown>, layers = 1) => ({ config: { os: "linux", architecture: "amd64", ...config }, layers: Array(layers).fill({}) });
  it("is refused, naming the field, when it holds what no image config does", () => {
    expect(() => checkBaseConfig(image({ config: { Env: ["A=1", 5] } }) as never, "b")).toThrow("base b: its config's config.Env[1] is not what an image config holds: Invalid input: expected string, received number");
    expect(() => checkBaseConfig(image({ config: { Labels: ["x"] } }) as never, "b")).toThrow(/config\.Labels/);
    expect(() => checkBaseConfig(image({ architecture: { x: 1 } }) as never, "b")).toThrow(/its config's architecture/);
    expect(() => checkBaseConfig(image({ history: [{ created_by: 5 }] }) as never, "b")).toThrow(/its config's history\[0\]\.created_by/);
  });
  it("passes as docker and umoci write it (a history shorter than the layers included)", () => {
    expect(() => checkBaseConfig(image({ config: { Env: ["PATH=/bin"], Cmd: null, Labels: null }, history: [{ created_by: "x", empty_layer: true }, { created_by: "y" }] }, 3) as never, "b")).not.toThrow();
  });
});

describe("a base's layer sizes", () => {
  it("a layer its manifest says is larger than the free disk space is refused before any download", async () => {
    const { serve } = await import("../registry/local-server.ts");
    const { createHash } = await import("node:crypto");
    const { resolveBase } = await import("../../src/image/base.ts");
    const { LayerCache } = await import("../../src/cache/cache.ts");
    const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [`sha256:${"0".repeat(64)}`] } }));
    const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
    const huge = 2 ** 52;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${"1".repeat(64)}`, size: huge }],
    });
    const server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      if (req.url === "/v2/x/manifests/1") return res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(manifest);
      if (req.url === `/v2/x/blobs/${configDigest}`) return res.end(config);
      res.writeHead(500).end("no layer download expected");
    });
    try {
      const cache = new LayerCache(path.join(dir, "size-cache"));
      const env = { HOME: "/nonexistent", DOCKER_CONFIG: "/nonexistent" };
      await expect(resolveBase(`docker://${server.host}/x:1`, { cwd: dir, cache, env })).rejects.toThrow(/layer 1 \(sha256:1{64}\) is .* MiB by its manifest, more than the .* MiB free where the cache is/);
      expect(server.seen.filter((r) => r.url.includes("sha256:111"))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
