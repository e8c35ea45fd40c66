/**
 * The names image indexes and registries match platforms by: OCI takes Go's GOOS and GOARCH values (image-spec
 * image-index.md). Nix and Guix users think in system triples (x86_64-linux, aarch64-linux), so those spellings get
 * the OCI name they mean instead of a list; anything else would build an image that no `--platform` selects.
 */
import { nearest } from "../util/suggest.ts";

/** Go's known GOARCH values (go/build/syslist.go). */
export const OCI_ARCHITECTURES = [
  "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64", "mips64le",
  "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
] as const;

/** Go's known GOOS values; Guix builds for the Hurd too. */
export const OCI_OSES = [
  "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd", "openbsd",
  "plan9", "solaris", "wasip1", "windows", "zos",
] as const;

/** System-triple and distribution spellings of an architecture -> its OCI name and the variant it implies. */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: "amd64" }, "x86-64": { architecture: "amd64" }, x64: { architecture: "amd64" },
  aarch64: { architecture: "arm64" }, armv8: { architecture: "arm64" },
  i386: { architecture: "386" }, i486: { architecture: "386" }, i586: { architecture: "386" }, i686: { architecture: "386" }, x86: { architecture: "386" },
  armhf: { architecture: "arm", variant: "v7" }, armv7: { architecture: "arm", variant: "v7" }, armv7l: { architecture: "arm", variant: "v7" },
  armv6: { architecture: "arm", variant: "v6" }, armv6l: { architecture: "arm", variant: "v6" }, armel: { architecture: "arm", variant: "v5" },
  powerpc64le: { architecture: "ppc64le" }, ppc64el: { architecture: "ppc64le" }, powerpc64: { architecture: "ppc64" }, powerpc: { architecture: "ppc" },
  mips64el: { architecture: "mips64le" }, mipsel: { architecture: "mipsle" }, riscv64gc: { architecture: "riscv64" }, loongarch64: { architecture: "loong64" },
};

const OS_ALIASES: Record<string, string> = { gnu: "hurd", macos: "darwin", osx: "darwin", win32: "windows", "linux-gnu": "linux" };

const COMMON_ARCHITECTURES = "amd64, arm64, arm, 386, ppc64le, s390x, riscv64";

/** The message for a value that is not an OCI architecture: the OCI name it means, a near miss, or the common ones. */
export function architectureMessage(value: unknown): string {
  if (typeof value !== "string") return `expected an OCI architecture name such as ${COMMON_ARCHITECTURES}, got ${JSON.stringify(value) ?? typeof value}`;
  const alias = ARCH_ALIASES[value] ?? ARCH_ALIASES[value.toLowerCase()];
  if (alias) return `"${value}" is not an OCI architecture name; write "${alias.architecture}"${alias.variant ? ` (with variant: ${alias.variant})` : ""}`;
  const near = nearest(value, OCI_ARCHITECTURES);
  return `"${value}" is not an OCI architecture name (Go's GOARCH values, e.g. ${COMMON_ARCHITECTURES})${near ? ` (did you mean "${near}"?)` : ""}`;
}

/** The message for a value that is not an OCI operating system. */
export function osMessage(value: unknown): string {
  if (typeof value !== "string") return `expected an OCI operating system name such as linux, got ${JSON.stringify(value) ?? typeof value}`;
  const alias = OS_ALIASES[value] ?? OS_ALIASES[value.toLowerCase()];
  if (alias) return `"${value}" is not an OCI operating system name; write "${alias}"`;
  const near = nearest(value, OCI_OSES);
  return `"${value}" is not an OCI operating system name (Go's GOOS values, e.g. linux, hurd, windows)${near ? ` (did you mean "${near}"?)` : ""}`;
}
