/**
 * The image configuration (OCI image-spec config.md; Docker uses the same document). Its JSON bytes are hashed into
 * the image ID, so they are produced by one canonical serialiser: keys sorted, no whitespace.
 */
import type { ImageSpec } from "../config/schema.ts";

export interface HistoryEntry {
  created: string;
  created_by: string;
  comment: string;
}

export interface ImageConfigInput {
  spec: ImageSpec;
  /** Absolute entrypoint in the image, when the spec has one. */
  entrypoint?: string;
  created: string;
  diffIds: string[];
  history: HistoryEntry[];
}

/** JSON with object keys sorted at every level: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export function imageConfig(input: ImageConfigInput): Record<string, unknown> {
  const { spec } = input;
  const config: Record<string, unknown> = {
    User: spec.user,
    WorkingDir: spec.workingDir,
  };
  const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
  if (env.length > 0) config.Env = env;
  if (input.entrypoint) config.Entrypoint = [input.entrypoint, ...spec.entrypointArgs];
  if (spec.cmd.length > 0) config.Cmd = spec.cmd;
  if (Object.keys(spec.labels).length > 0) config.Labels = spec.labels;
  if (spec.exposedPorts.length > 0) config.ExposedPorts = Object.fromEntries(spec.exposedPorts.map((p) => [p, {}]));
  return {
    architecture: spec.architecture,
    os: spec.os,
    created: input.created,
    config,
    rootfs: { type: "layers", diff_ids: input.diffIds },
    history: input.history,
  };
}
