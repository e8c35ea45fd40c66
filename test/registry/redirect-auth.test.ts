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

  test("a token service on another host over plain HTTP gets none, and its refusal says they were withheld, not wrong", async () => {
    const seen: string[] = [];
    const fakeFetch = (async (url: string | URL, init?: RequestInit) => {
      const u = new URL(String(url));
      seen.push(`${u.origin}${u.pathname} auth=${(init?.headers as Record<string, string> | undefined)?.authorization ?? "-"}`);
      if (u.pathname === "/v2/") return new Response("", { status: 401, headers: { "www-authenticate": 'Bearer realm="http://auth.example/token",service="s"' } });
      if (u.pathname === "/token") return new Response("", { status: 401 });
      return new Response("", { status: 404 });
    }) as typeof fetch;
    const env = { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "s3cret", LAYERPACK_REGISTRY_HOST: "127.0.0.1:5000" };
    const c = new RegistryClient({ registry: "127.0.0.1:5000", repository: "r", env, fetch: fakeFetch, retries: 0 });
    const err = await c.ping().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/the token service is on another host over plain HTTP \(http:\/\/auth\.example\), so the credentials from LAYERPACK_REGISTRY_USER\/LAYERPACK_REGISTRY_PASSWORD were not sent to it/);
    expect(err?.message).not.toMatch(/were refused|s3cret/);
    expect(seen.filter((x) => x.includes("auth.example"))).toEqual(["http://auth.example/token auth=-"]);
  });
});
