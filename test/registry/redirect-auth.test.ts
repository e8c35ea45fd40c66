import { describe, expect, test } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";

describe("credentials stay with the registry", () => {
  test("a host the registry redirects to cannot ask for them, nor name a token service", async () => {
    const seen: string[] = [];
    const fakeFetch = (async (url: string | URL, init?: RequestInit) => {
      const u = new URL(String(url));
      const auth = (init?.headers as Record<string, string> | undefined)?.authorization;
      seen.push(`${init?.method ?? "GET"} ${u.origin}${u.pathname} auth=${auth ?? "-"}`);
      if (u.host === "reg.example" && u.pathname === "/v2/") return new Response("", { status: 200 });
      if (u.host === "reg.example") return new Response(null, { status: 307, headers: { location: "https://cdn.example/blob" } });
      if (u.host === "cdn.example" && u.pathname === "/blob") {
        return new Response("", { status: 401, headers: { "www-authenticate": 'Bearer realm="https://cdn.example/token"' } });
      }
      if (u.pathname === "/token") return Response.json({ token: "t" });
      return new Response("", { status: 404 });
    }) as typeof fetch;
    const env = { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "s3cret" };
    const c = new RegistryClient({ registry: "reg.example", repository: "r", env, fetch: fakeFetch, retries: 0 });
    await c.ping();
    await expect(c.request("HEAD", c.repoUrl("blobs/sha256:00"), { expect: [200, 404] })).rejects.toThrow(/only sent to https:\/\/reg\.example/);
    expect(seen.filter((s) => s.includes("cdn.example"))).toEqual(["HEAD https://cdn.example/blob auth=-"]);
    expect(seen.join("\n")).not.toMatch(/Basic|s3cret/);
  });
});
