/** Small Nix and Guix closures with realistic store names, and the real `nix path-info --json -r` closures. */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { nix32Encode } from "../../src/store/path.ts";
import type { SbomInput, SbomItem } from "../../src/sbom/index.ts";

/** A store path with a hash part derived from the name (32 nix32 characters, like a real one). */
export function storePath(dir: string, name: string): string {
  return `${dir}/${nix32Encode(createHash("sha1").update(name).digest())}-${name}`;
}

const sha = (s: string) => createHash("sha256").update(s).digest();
export const hexOf = (s: string) => sha(s).toString("hex");

const N = (name: string) => storePath("/nix/store", name);
export const nix = {
  glibc: N("glibc-2.39-52"),
  gccLib: N("gcc-13.2.0-lib"),
  openssl: N("openssl-3.0.13"),
  opensslBin: N("openssl-3.0.13-bin"),
  python: N("python3-3.11.9"),
  requests: N("python3.11-requests-2.31.0"),
  hello: N("hello-2.12.1"),
  profile: N("profile"),
};

/** Every NAR hash form the stores write: SRI, sha256:<nix32>, sha256:<hex>, bare hex; one item has none. */
export const nixItems: SbomItem[] = [
  { path: nix.glibc, narSize: 30_000_000, narHash: `sha256-${sha("glibc").toString("base64")}`, references: [nix.glibc] },
  { path: nix.gccLib, narSize: 8_000_000, narHash: `sha256:${nix32Encode(sha("gcc"))}`, references: [nix.gccLib, nix.glibc] },
  { path: nix.openssl, narSize: 6_000_000, narHash: `sha256:${hexOf("openssl")}`, references: [nix.glibc] },
  { path: nix.opensslBin, narSize: 1_000_000, narHash: hexOf("openssl-bin").toUpperCase(), references: [nix.glibc, nix.openssl] },
  { path: nix.python, narSize: 100_000_000, narHash: `sha256:${hexOf("python")}`, references: [nix.gccLib, nix.glibc, nix.openssl, nix.python] },
  { path: nix.requests, narSize: 500_000, narHash: `sha256:${hexOf("requests")}`, references: [nix.python] },
  { path: nix.hello, narSize: 200_000, references: [nix.glibc] },
  { path: nix.profile, narSize: 10_000, narHash: `sha256:${hexOf("profile")}`, references: [nix.hello, nix.opensslBin, nix.requests] },
];

/** The expected hex of each item's NAR hash (undefined for hello). */
export const nixHex: Record<string, string | undefined> = {
  [nix.glibc]: hexOf("glibc"),
  [nix.gccLib]: hexOf("gcc"),
  [nix.openssl]: hexOf("openssl"),
  [nix.opensslBin]: hexOf("openssl-bin"),
  [nix.python]: hexOf("python"),
  [nix.requests]: hexOf("requests"),
  [nix.hello]: undefined,
  [nix.profile]: hexOf("profile"),
};

export const IMAGE_DIGEST = `sha256:${hexOf("manifest")}`;

export function nixInput(over: Partial<SbomInput> = {}): SbomInput {
  return {
    items: nixItems,
    roots: [nix.profile],
    image: { name: "registry.example:5000/team/app:1.2", digest: IMAGE_DIGEST },
    toolVersion: "0.1.0",
    ...over,
  };
}

const G = (name: string) => storePath("/gnu/store", name);
export const guix = { glibc: G("glibc-2.35"), gccLib: G("gcc-11.3.0-lib"), guile: G("guile-3.0.9"), profile: G("profile") };
export const guixItems: SbomItem[] = [
  { path: guix.glibc, narSize: 40_000_000, narHash: `sha256:${nix32Encode(sha("g-glibc"))}`, references: [guix.glibc] },
  { path: guix.gccLib, narSize: 9_000_000, narHash: `sha256:${nix32Encode(sha("g-gcc"))}`, references: [guix.gccLib, guix.glibc] },
  { path: guix.guile, narSize: 50_000_000, narHash: `sha256:${nix32Encode(sha("g-guile"))}`, references: [guix.gccLib, guix.glibc] },
  { path: guix.profile, narSize: 5_000, narHash: `sha256:${nix32Encode(sha("g-profile"))}`, references: [guix.guile] },
];

// --- the real closures: <repo>/../shared/closures/*.pathinfo.json ----------------------------------------------

export interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
}

export const REAL_CLOSURES = ["debian-w1", "debian-w2", "debian-half"] as const;

export function readPathInfo(name: string): PathInfo[] {
  const file = path.resolve(import.meta.dirname, "..", "..", "..", "shared", "closures", `${name}.pathinfo.json`);
  return JSON.parse(fs.readFileSync(file, "utf8")) as PathInfo[];
}
