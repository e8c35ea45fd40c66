/** Our NAR size/hash, database reader, graph readers and scanner against nix-bin on real store items. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveClosure } from "../../src/store/closure.ts";
import { readDatabaseClosure } from "../../src/store/database.ts";
import { closureOf, parseRegistration, readClosureInfo, readReferencesGraph } from "../../src/store/graph.ts";
import { narDigest, narHash, narSize } from "../../src/store/nar.ts";
import { nix32Encode, normaliseNarHash, resolveProfile } from "../../src/store/path.ts";
import { scanClosure } from "../../src/store/scan.ts";
import { derivation, makeNixStore, nixVersion, type NixStore } from "../fixtures/nix.ts";
import { requireTool } from "../fixtures/tools.ts";

const haveNix = requireTool("nix-store", "nix-bin") && requireTool("nix-build", "nix-bin") && requireTool("nix", "nix-bin");

describe.skipIf(!haveNix)("against nix-bin", () => {
  let dir: string;
  let nix: NixStore;
  let app: string;
  let graphFile: string;
  let added: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-nix-"));
    expect(nixVersion()).toMatch(/^nix \(Nix\) \d+\.\d+/);
    nix = makeNixStore(dir);
    const expr = path.join(dir, "items.nix");
    fs.writeFileSync(
      expr,
      `rec {
        data = ${derivation("data", "echo hello > $out")};
        lib = ${derivation("lib", `mkdir -p $out/lib/sub
          echo libdata > $out/lib/libfoo.so
          seq 1 5000 > $out/lib/big
          printf 'x' > $out/lib/sub/one
          printf '12345678' > $out/lib/sub/eight
          touch $out/lib/empty
          echo 'unicode' > "$out/lib/caf\u00e9-\u2603"
          touch "$out/lib/a-file-with-a-rather-long-name-that-goes-on-and-on-past-one-hundred-bytes-of-length-for-sure-yes"`)};
        app = ${derivation("app", `mkdir -p $out/bin $out/share $out/empty
          echo "#!/bin/sh" > $out/bin/app
          echo "exec ${"${lib}"}/lib/libfoo.so" >> $out/bin/app
          chmod 755 $out/bin/app
          ln -s ${"${data}"} $out/share/data
          ln -s $out/bin/app $out/bin/self
          ln -s ../bin/app $out/share/rel`)};
        named = ${derivation("named", `mkdir -p $out; touch "$out/$(basename ${"${data}"}).marker"`)};
        graph = ${derivation("graph", "cp graph $out", 'exportReferencesGraph = [ "graph" app ];')};
      }`,
    );
    app = nix.build(expr, "app", path.join(dir, "result"));
    nix.build(expr, "named", path.join(dir, "result-named"));
    graphFile = path.join(dir, "graph");
    fs.copyFileSync(nix.host(nix.build(expr, "graph", path.join(dir, "result-graph"))), graphFile);
    const src = path.join(dir, "src");
    fs.mkdirSync(path.join(src, "d"), { recursive: true });
    fs.writeFileSync(path.join(src, "d", "f"), "added\n");
    fs.writeFileSync(path.join(src, "x"), Buffer.alloc(3 << 20, 7));
    fs.chmodSync(path.join(src, "x"), 0o755);
    fs.symlinkSync("d/f", path.join(src, "link"));
    added = nix.add(src);
  }, 180_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("computes NAR size and hash as nix-store --dump does", () => {
    const all = nix.pathInfo([app, added]).map((i) => i.path);
    expect(all.length).toBe(4);
    for (const p of all) {
      const oracle = nix.dump(p);
      expect(narSize(nix.host(p)), p).toBe(oracle.size);
      expect(narHash(nix.host(p)), p).toBe(`sha256:${oracle.hash}`);
      expect(narDigest(nix.host(p))).toEqual({ hash: `sha256:${oracle.hash}`, size: oracle.size });
    }
  });

  it("agrees with nix path-info on NAR hashes and sizes", () => {
    for (const info of nix.pathInfo([app, added])) {
      expect(narDigest(nix.host(info.path))).toEqual({ hash: info.narHash, size: info.narSize });
    }
  });

  it("encodes nix32 as nix does", () => {
    const info = nix.pathInfo([added], false)[0]!;
    const hex = info.narHash.slice(7);
    const oracle = nix.run("nix", ["hash", "to-base32", "--type", "sha256", hex]).trim();
    expect(nix32Encode(Buffer.from(hex, "hex"))).toBe(oracle);
    expect(normaliseNarHash(`sha256:${oracle}`)).toBe(info.narHash);
  });

  it("reads the closure from the store database as nix path-info -r", () => {
    const db = path.join(nix.root, "nix/var/nix/db/db.sqlite");
    const ours = readDatabaseClosure(db, [app]);
    const oracle = nix.pathInfo([app]);
    expect(ours.map((i) => ({ path: i.path, narHash: i.narHash, narSize: i.narSize, references: i.references }))).toEqual(oracle);
  });

  it("follows the nix-build result link through the store root", () => {
    expect(resolveProfile(nix.store, path.join(dir, "result"))).toBe(app);
  });

  it("resolves the closure with auto (database) and scan to the same references nix found", async () => {
    const oracle = nix.pathInfo([app]);
    for (const from of ["auto", "database", "scan"] as const) {
      const closure = await resolveClosure({ store: { dir: "/nix/store", root: nix.root }, profile: "result", closure: { from } }, { configDir: dir });
      expect(closure.profile).toBe(app);
      expect(closure.roots).toEqual([app]);
      expect(closure.items.map((i) => ({ path: i.path, narSize: i.narSize, references: i.references })), from).toEqual(
        oracle.map((o) => ({ path: o.path, narSize: o.narSize, references: o.references })),
      );
      if (from !== "scan") expect(closure.items.map((i) => i.narHash)).toEqual(oracle.map((o) => o.narHash));
    }
  });

  it("scans references in file names as nix does", () => {
    const named = fs.readlinkSync(path.join(dir, "result-named"));
    const oracle = nix.pathInfo([named]);
    expect(oracle.find((o) => o.path === named)!.references.length).toBe(1);
    expect(scanClosure(nix.store, [named]).map((i) => ({ path: i.path, narSize: i.narSize, references: i.references }))).toEqual(
      oracle.map((o) => ({ path: o.path, narSize: o.narSize, references: o.references })),
    );
  });

  it("reads an exportReferencesGraph file (the guix-graph format)", async () => {
    const oracle = nix.pathInfo([app]);
    const records = readReferencesGraph(graphFile);
    expect(closureOf(records, [app], graphFile).map((i) => ({ path: i.path, references: i.references }))).toEqual(
      oracle.map((o) => ({ path: o.path, references: o.references })),
    );
    const closure = await resolveClosure(
      { store: { dir: "/nix/store", root: nix.root }, roots: [app], closure: { from: "guix-graph", file: "graph" } },
      { configDir: dir },
    );
    expect(closure.items.map((i) => i.narSize)).toEqual(oracle.map((o) => o.narSize));
  });

  it("says what it reads when given Graphviz (nix-store --query --graph, guix graph) instead of a references graph", () => {
    const dot = path.join(dir, "closure.dot");
    fs.writeFileSync(dot, nix.graph([app]));
    expect(() => readReferencesGraph(dot)).toThrow(
      `${dot}:1: this is a Graphviz graph (guix graph, nix-store --query --graph); closure.from: guix-graph reads a references graph as Guix's #:references-graphs and Nix's exportReferencesGraph write it`,
    );
  });

  it("reads a closureInfo made from nix-store --dump-db, with hex or nix32 hashes", async () => {
    const oracle = nix.pathInfo([app]);
    const paths = oracle.map((o) => o.path);
    const info = path.join(dir, "closure-info");
    fs.mkdirSync(info);
    fs.writeFileSync(path.join(info, "store-paths"), paths.map((p) => `${p}\n`).join(""));
    fs.writeFileSync(path.join(info, "registration"), nix.dumpDb(paths));
    const want = oracle.map((o) => ({ path: o.path, narHash: o.narHash, narSize: o.narSize, references: o.references }));
    expect(closureOf(readClosureInfo(info), [app], info)).toEqual(want);
    // closureInfo as nixpkgs writes it: sha256:<nix32> hashes, empty deriver lines.
    const nix32 = oracle
      .map((o) => [o.path, `sha256:${nix32Encode(Buffer.from(o.narHash.slice(7), "hex"))}`, o.narSize, "", o.references.length, ...o.references].join("\n"))
      .join("\n");
    expect(closureOf(parseRegistration(`${nix32}\n`, "reg"), [app], "reg")).toEqual(want);
    const closure = await resolveClosure({ store: { dir: "/nix/store", root: nix.root }, roots: [app], closure: { from: "nix-closure-info", file: "closure-info" } }, { configDir: dir });
    expect(closure.items).toEqual(want);
  });
});
