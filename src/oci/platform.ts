/**
 * Platforms in OCI names (image-spec image-index.md: GOOS/GOARCH values), and the host's: a config without
 * `architecture` builds for the machine it runs on, as docker and podman do.
 */
import { LayerpackError } from "../errors.ts";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's process.arch -> OCI architecture and the variant OCI tools record for it. */
const ARCH: Record<string, Platform["architecture"]> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips64el: "mips64le" };

export function hostPlatform(arch: string = process.arch, armVersion: unknown = (process.config.variables as Record<string, unknown>).arm_version): Platform {
  const architecture = ARCH[arch] ?? arch;
  // Containers run Linux (on macOS and Windows in a Linux VM), so the host's OS is not the image's.
  if (architecture === "arm64") return { os: "linux", architecture, variant: "v8" };
  if (architecture === "arm") return { os: "linux", architecture, variant: `v${typeof armVersion === "string" || typeof armVersion === "number" ? armVersion : 7}` };
  return { os: "linux", architecture };
}

export const formatPlatform = (p: Platform): string => [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join("/");

/** `os/arch[/variant]`, as --platform takes it. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9][a-z0-9_.-]*$/.test(p))) {
    throw new LayerpackError(`--platform ${JSON.stringify(text)}: give os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** Whether an index entry's platform is `want`; arm64 entries without a variant are v8 (image-spec's note). */
export function platformMatches(have: Partial<Platform> | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  const variant = have.variant ?? (have.architecture === "arm64" ? "v8" : undefined);
  return variant === want.variant;
}

/** The platform a config builds for: its own architecture (and variant), else the host's. */
export function specPlatform(spec: { os: string; architecture?: string | undefined; variant?: string | undefined }): Platform {
  if (spec.architecture === undefined) return { ...hostPlatform(), os: spec.os, ...(spec.variant !== undefined ? { variant: spec.variant } : {}) };
  return { os: spec.os, architecture: spec.architecture, ...(spec.variant !== undefined ? { variant: spec.variant } : {}) };
}
