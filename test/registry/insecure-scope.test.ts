/**
 * `--insecure` / `output.insecure` is for the push target's registry: cache sources and a `push --from` image on
 * other registries keep HTTPS, so the credentials an auth file holds for them never cross the network in the clear.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { loadCacheSources } from "../../src/image/remote-cache.ts";
import { pushFrom } from "../../src/cli/push-from.ts";
import { parseReference } from "../../src/registry/reference.ts";

/** Records each request's scheme, host and Authorization, and answers 404 (no such image). */
function recordRequests(): string[] {
  const seen: string[] = [];
  vi.stubGlobal("fetch", async (url: string | URL, init?: RequestInit) => {
    const u = new URL(String(url));
    seen.push(`${u.protocol}//${u.host} auth=${(init?.headers as Record<string, string> | undefined)?.authorization ?? "-"}`);
    return new Response(u.pathname === "/v2/" ? "" : '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', { status: u.pathname === "/v2/" ? 200 : 404 });
  });
  return seen;
}
afterEach(() => vi.unstubAllGlobals());

const env = { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "s3cret" };

describe("plain HTTP only where it was asked for", () => {
  test("a cache source on another registry than the insecure output's is read over HTTPS", async () => {
    const seen = recordRequests();
    const other = await loadCacheSources(["docker://cache.example/org/cache:latest"], { cwd: "/", env, insecureRegistry: "push.example:5000" });
    expect(other.warnings).toHaveLength(1);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.startsWith("https://cache.example "))).toBe(true);
    // The output's own registry, as a cache source, is reached the way the push is.
    seen.length = 0;
    await loadCacheSources(["docker://push.example:5000/org/cache:latest"], { cwd: "/", env, insecureRegistry: "push.example:5000" });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.startsWith("http://push.example:5000 "))).toBe(true);
  });

  test("push --from --insecure: the source on another registry keeps HTTPS", async () => {
    const seen = recordRequests();
    const to = parseReference("push.example:5000/app:1");
    await expect(pushFrom({ from: "docker://src.example/app:1", to, tags: [], cwd: "/", env, insecure: true })).rejects.toThrow();
    expect(seen.filter((s) => s.includes("src.example"))).not.toEqual([]);
    expect(seen.filter((s) => s.includes("src.example")).every((s) => s.startsWith("https://"))).toBe(true);
  });
});
