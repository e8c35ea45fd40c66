/** `platforms:`: the config of each platform's image — its os, architecture, variant and closure roots. */
import type { ImageSpec } from "./schema.ts";

/** One spec per platform (none of them with `platforms`), in the config's order; [spec] without platforms. */
export function platformSpecs(spec: ImageSpec): ImageSpec[] {
  if (spec.platforms === undefined) return [spec];
  return spec.platforms.map((pl) => {
    const { platforms: _all, profile: _p, roots: _r, architecture: _a, variant: _v, ...rest } = spec;
    const profile = pl.profile ?? (pl.roots === undefined ? spec.profile : undefined);
    const roots = pl.roots ?? (pl.profile === undefined ? spec.roots : undefined);
    return {
      ...rest,
      os: pl.os ?? spec.os,
      architecture: pl.architecture,
      ...(pl.variant !== undefined ? { variant: pl.variant } : {}),
      ...(profile !== undefined ? { profile } : {}),
      ...(roots !== undefined ? { roots } : {}),
    };
  });
}
