/**
 * The image configuration (OCI image-spec config.md; Docker uses the same document). Its JSON bytes are hashed into
 * the image ID, so they are produced by one canonical serialiser: keys sorted, no whitespace.
 */
import type { ImageSpec } from "../config/schema.ts";
import { isRecord } from "../util/json.ts";

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
  platform: { os: string; architecture: string; variant?: string };
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
    architecture: input.platform.architecture,
    os: input.platform.os,
    ...(input.platform.variant !== undefined ? { variant: input.platform.variant } : {}),
    created: input.created,
    config,
    rootfs: { type: "layers", diff_ids: input.diffIds },
    history: input.history,
  };
}

const envKey = (e: string) => e.slice(0, e.indexOf("=") < 0 ? e.length : e.indexOf("="));

/**
 * This image's config on top of a base image's: Env merged by key (ours win), Labels and ExposedPorts merged,
 * Entrypoint, Cmd, WorkingDir and User ours where the config sets them (a WorkingDir of "/" and a User of "0:0" are
 * the defaults, so the base's are kept then), the base's history first; rootfs is ours (it lists every layer).
 */
export function onBase(ours: Record<string, unknown>, base: Record<string, unknown>, spec: ImageSpec): Record<string, unknown> {
  const bc = isRecord(base.config) ? base.config : {};
  const oc = isRecord(ours.config) ? ours.config : {};
  const merged: Record<string, unknown> = { ...bc };
  const env = new Map<string, string>();
  for (const e of [...(Array.isArray(bc.Env) ? bc.Env : []), ...(Array.isArray(oc.Env) ? oc.Env : [])]) if (typeof e === "string") env.set(envKey(e), e);
  if (env.size > 0) merged.Env = [...env.values()];
  const labels = { ...(isRecord(bc.Labels) ? bc.Labels : {}), ...(isRecord(oc.Labels) ? oc.Labels : {}) };
  if (Object.keys(labels).length > 0) merged.Labels = labels;
  const ports = { ...(isRecord(bc.ExposedPorts) ? bc.ExposedPorts : {}), ...(isRecord(oc.ExposedPorts) ? oc.ExposedPorts : {}) };
  if (Object.keys(ports).length > 0) merged.ExposedPorts = ports;
  if (oc.Entrypoint !== undefined) {
    merged.Entrypoint = oc.Entrypoint;
    // A new entrypoint makes the base's Cmd (its arguments) meaningless, as docker's ENTRYPOINT does.
    if (oc.Cmd === undefined) delete merged.Cmd;
  }
  if (oc.Cmd !== undefined) merged.Cmd = oc.Cmd;
  if (spec.workingDir !== "/" || bc.WorkingDir === undefined) merged.WorkingDir = oc.WorkingDir;
  if (spec.user !== "0:0" || bc.User === undefined || bc.User === "") merged.User = oc.User;
  const history = [...(Array.isArray(base.history) ? base.history : []), ...(Array.isArray(ours.history) ? ours.history : [])];
  return { ...ours, config: merged, history };
}
