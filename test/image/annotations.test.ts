/** Manifest annotations (image/annotations.ts): the config's over what layerpack knows, CI variables included. */
import { describe, expect, it } from "vitest";
import { imageAnnotations } from "../../src/image/annotations.ts";

const spec = { name: "app", tag: "1.2", labels: {} as Record<string, string> };
const OCI = "org.opencontainers.image";

describe("imageAnnotations", () => {
  it("sets created, title and version, and source and revision from GitHub Actions or GitLab CI", () => {
    expect(imageAnnotations(spec, "2026-01-01T00:00:00Z", {})).toEqual({ [`${OCI}.created`]: "2026-01-01T00:00:00Z", [`${OCI}.title`]: "app", [`${OCI}.version`]: "1.2" });
    const gh = imageAnnotations(spec, "x", { GITHUB_SERVER_URL: "https://github.com", GITHUB_REPOSITORY: "me/app", GITHUB_SHA: "abc" });
    expect(gh).toMatchObject({ [`${OCI}.source`]: "https://github.com/me/app", [`${OCI}.revision`]: "abc" });
    const gl = imageAnnotations(spec, "x", { CI_PROJECT_URL: "https://gitlab.com/me/app", CI_COMMIT_SHA: "def" });
    expect(gl).toMatchObject({ [`${OCI}.source`]: "https://gitlab.com/me/app", [`${OCI}.revision`]: "def" });
  });

  it("lets labels and the config's annotations win, and sorts the keys", () => {
    const a = imageAnnotations({ ...spec, labels: { [`${OCI}.source`]: "https://example.org/src" }, annotations: { [`${OCI}.title`]: "App", "z.custom": "1", "a.custom": "2" } }, "x", { GITHUB_SERVER_URL: "https://github.com", GITHUB_REPOSITORY: "me/app" });
    expect(a[`${OCI}.source`]).toBe("https://example.org/src");
    expect(a[`${OCI}.title`]).toBe("App");
    expect(Object.keys(a)).toEqual([...Object.keys(a)].sort());
  });
});
