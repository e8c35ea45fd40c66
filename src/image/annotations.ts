/**
 * OCI annotations of the image's manifest and index entries: `annotations:` from the config, over the standard
 * `org.opencontainers.image.*` keys layerpack knows — created (the image's creation time), title (the name),
 * version (the config's tag), and source and revision from the config's labels of the same names or from the
 * environment a CI sets (GitHub Actions: GITHUB_SERVER_URL + GITHUB_REPOSITORY, GITHUB_SHA; GitLab:
 * CI_PROJECT_URL, CI_COMMIT_SHA). Sorted, so the manifest's bytes depend only on these values.
 */
import type { ImageSpec } from "../config/schema.ts";

const OCI = "org.opencontainers.image";

export function imageAnnotations(spec: Pick<ImageSpec, "name" | "tag" | "labels" | "annotations">, created: string, env: Record<string, string | undefined>): Record<string, string> {
  const github = env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}` : undefined;
  const source = spec.labels[`${OCI}.source`] ?? github ?? env.CI_PROJECT_URL;
  const revision = spec.labels[`${OCI}.revision`] ?? env.GITHUB_SHA ?? env.CI_COMMIT_SHA;
  const known: Record<string, string | undefined> = {
    [`${OCI}.created`]: created,
    [`${OCI}.title`]: spec.name,
    [`${OCI}.version`]: spec.tag,
    [`${OCI}.source`]: source,
    [`${OCI}.revision`]: revision,
  };
  const all = { ...known, ...(spec.annotations ?? {}) };
  return Object.fromEntries(
    Object.entries(all)
      .filter((e): e is [string, string] => typeof e[1] === "string" && e[1] !== "")
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
