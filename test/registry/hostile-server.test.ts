/**
 * Registries that hang, stall or send too much: every request has an idle timeout, and what is read whole is
 * size-limited. Each test runs its own server on 127.0.0.1 (local-server.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RegistryClient } from "../../src/registry/client.ts";
import { pushImage } from "../../src/registry/push.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { readImage } from "../../src/oci/read.ts";
import { RegistryError } from "../../src/errors.ts";
import { oneLayerImage, serve, stream, type LocalServer } from "./local-server.ts";

let server: LocalServer | undefined;
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-hostile-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** The error `p` rejects with, and how long that took. */
async function failure(p: Promise<unknown>): Promise<{ err: Error; ms: number }> {
  const start = Date.now();
  const err = await p.then(
    () => new Error("it succeeded"),
    (e: Error) => e,
  );
  return { err, ms: Date.now() - start };
}

// No credentials, and none from the HOME this runs in.
const noCredentials = { HOME: "/nonexistent", DOCKER_CONFIG: "/nonexistent" };

/** fetch, but request bodies are taken `pauseMs` more slowly after every `every` bytes. */
function slowBodies(every: number, pauseMs: number): typeof fetch {
  return (url, init) => {
    const body = init?.body;
    if (!(body instanceof ReadableStream)) return fetch(url, init);
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    let got = 0;
    const slowed = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const r = await reader.read();
        if (r.done) return controller.close();
        const before = got;
        got += r.value.byteLength;
        if (Math.floor(got / every) !== Math.floor(before / every)) await new Promise((ok) => setTimeout(ok, pauseMs));
        controller.enqueue(r.value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return fetch(url, { ...init, body: slowed } as RequestInit);
  };
}

describe("timeouts", () => {
  test("a registry that accepts the connection and never answers fails within the timeout, naming host and timeout", { timeout: 10_000 }, async () => {
    server = await serve(() => {});
    const client = new RegistryClient({ registry: server.host, repository: "x", env: noCredentials, timeoutMs: 300, backoffMs: 1 });
    const { err, ms } = await failure(client.ping());
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toBe(`registry ${server.host} did not answer GET /v2/ within 300 ms (LAYERPACK_REGISTRY_TIMEOUT sets the timeout, in seconds)`);
    // Not retried: a registry that hung once would hang the user as long again per retry.
    expect(ms).toBeLessThan(2000);
    expect(server.seen).toHaveLength(1);
  });

  test("a registry that stops sending mid-body fails `inspect` within LAYERPACK_REGISTRY_TIMEOUT", { timeout: 10_000 }, async () => {
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": "5000" });
      res.write('{"schemaVersion":2,');
    });
    const { err, ms } = await failure(readImage(`${server.host}/x:1`, { env: { ...noCredentials, LAYERPACK_REGISTRY_TIMEOUT: "0.3" } }));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toBe(
      `registry ${server.host} stopped sending its answer to GET /v2/x/manifests/1: nothing for 300 ms (LAYERPACK_REGISTRY_TIMEOUT sets the timeout, in seconds)`,
    );
    expect(ms).toBeLessThan(2000);
  });

  test("garbage for a manifest names the tag as a tag", async () => {
    server = await serve((req, res) => (req.url === "/v2/" ? res.end("{}") : res.end("<html>")));
    const { err } = await failure(readImage(`${server.host}/x:1`, { env: noCredentials }));
    expect(err.message).toMatch(new RegExp(`^${server.host}/x:1: the manifest of tag 1 is not valid JSON`));
  });

  /** A body of `chunks` chunks of `bytes` bytes, one every 100 ms. */
  const drip = (chunks: number, bytes: number) => (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    if (req.url === "/v2/") return res.end("{}");
    res.writeHead(200);
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      if (++i === chunks) {
        clearInterval(timer);
        return res.end("end");
      }
      res.write(".".repeat(bytes));
    }, 100);
  };

  test("the timeout is for silence, not for the whole answer: a slow but steady body arrives", { timeout: 10_000 }, async () => {
    server = await serve(drip(8, 1024));
    const client = new RegistryClient({ registry: server.host, repository: "x", env: noCredentials, timeoutMs: 300 });
    await client.ping();
    const res = await client.request("GET", client.repoUrl("blobs/sha256:0"), { expect: [200] });
    expect(await res.text()).toBe(`${".".repeat(7 * 1024)}end`);
  });

  test("a body that trickles (below 1 KiB/s while waiting for it) fails after one timeout of it, not never", { timeout: 10_000 }, async () => {
    server = await serve(drip(1000, 1));
    const client = new RegistryClient({ registry: server.host, repository: "x", env: noCredentials, timeoutMs: 300 });
    await client.ping();
    const res = await client.request("GET", client.repoUrl("blobs/sha256:0"), { expect: [200] });
    const err = await res.text().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    // (At a byte per 100 ms the whole body would take 100 s, past this test's time limit.)
    expect((err as Error).message).toBe(`registry ${server.host} sends its answer to GET /v2/x/blobs/sha256:0 too slowly: less than 1 KiB/s over 300 ms (LAYERPACK_REGISTRY_TIMEOUT sets the timeout, in seconds)`);
  });

  test("an upload the registry stops reading fails within the timeout; a slowly read one succeeds", { timeout: 20_000 }, async () => {
    let slow = false;
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      if (req.method === "HEAD") return res.writeHead(404).end();
      if (req.method === "POST") return res.writeHead(202, { location: "/v2/x/blobs/uploads/1" }).end();
      if (req.method === "PUT" && req.url!.startsWith("/v2/x/blobs/uploads/")) {
        if (!slow) return; // never reads the body nor answers
        req.resume();
        req.on("end", () => res.writeHead(201).end());
        return;
      }
      if (req.url!.includes("/manifests/")) return res.writeHead(req.method === "HEAD" ? 404 : 201).end();
      res.writeHead(500).end();
    });
    const image = oneLayerImage(dir, 16 << 20);
    const opts = { ref: parseReference(`${server.host}/x:1`), tags: [], env: noCredentials, timeoutMs: 1500, backoffMs: 1, concurrency: 1 };
    const { err, ms } = await failure(pushImage(image, opts));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(new RegExp(`^uploading blob sha256:[0-9a-f]{64} \\(${16 << 20} bytes\\) to ${server.host}/x failed: registry ${server.host} did not answer PUT /v2/x/blobs/uploads/1 within 1.5 s`));
    expect(ms).toBeLessThan(5000);
    // The slow reader is the transport taking the body's chunks slowly, not a server pausing: a pausing server's
    // kernel buffers (tcp_rmem allows 32 MiB here) take the whole body at once, and its pauses then all fall after
    // the last chunk, where no progress can be seen (that failed the test in CI).
    slow = true;
    const start = Date.now();
    const ok = await pushImage(image, { ...opts, fetch: slowBodies(2 << 20, 250) });
    expect(ok.uploaded).toBe(2);
    // Eight pauses of 250 ms: the upload as a whole took longer than the timeout, and did not time out.
    expect(Date.now() - start).toBeGreaterThan(1500);
  });

  test("LAYERPACK_REGISTRY_TIMEOUT must be a positive number of seconds that a timer can hold", () => {
    const client = (value: string) => () => new RegistryClient({ registry: "127.0.0.1:1", repository: "x", env: { ...noCredentials, LAYERPACK_REGISTRY_TIMEOUT: value } });
    const rule = "a positive number of seconds, at most 2147483 (about 24 days)";
    expect(client("soon")).toThrow(new RegistryError(`LAYERPACK_REGISTRY_TIMEOUT must be ${rule}, not 'soon'`));
    // Past 2^31 ms Node fires a timer after 1 ms: "practically never" must not mean "at once".
    expect(client("3000000")).toThrow(new RegistryError(`LAYERPACK_REGISTRY_TIMEOUT must be ${rule}, not '3000000'`));
    expect(client("2147483")).not.toThrow();
  });
});

describe("size limits", () => {
  test("a 400 MB error body is not read whole: the error comes at once, with the start of the body", { timeout: 20_000 }, async () => {
    let sent: Promise<number> | undefined;
    server = await serve((req, res) => {
      res.writeHead(400, { "content-type": "text/plain" });
      sent = stream(res, 400 << 20);
    });
    const client = new RegistryClient({ registry: server.host, repository: "x", env: noCredentials, timeoutMs: 5000 });
    const before = process.memoryUsage().rss;
    const { err, ms } = await failure(client.ping());
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toBe(`registry ${server.host} refused GET /v2/: 400 Bad Request: ${"x".repeat(200)}`);
    expect(ms).toBeLessThan(3000);
    // The connection is dropped after the first 64 KiB: what went out is what the sockets buffer, not 400 MB.
    expect(await sent).toBeLessThan(32 << 20);
    expect(process.memoryUsage().rss - before).toBeLessThan(100 << 20);
  });

  test("a manifest larger than 16 MiB is refused while it streams, and when its Content-Length says so", { timeout: 20_000 }, async () => {
    let sent: Promise<number> | undefined;
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      if (req.url!.endsWith("/declared")) return res.writeHead(200, { "content-length": String(1 << 30) }).end();
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      sent = stream(res, 400 << 20, " ");
    });
    const env = noCredentials;
    const { err } = await failure(readImage(`${server.host}/x:big`, { env }));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toBe(`registry ${server.host} sent more than 16384 KiB answering GET /v2/x/manifests/big; not reading further`);
    expect(await sent).toBeLessThan(64 << 20);
    const declared = await failure(readImage(`${server.host}/x:declared`, { env }));
    expect(declared.err.message).toBe(`registry ${server.host} sent more than 16384 KiB answering GET /v2/x/manifests/declared; not reading further`);
  });

  test("a token answer larger than 1 MiB is refused", { timeout: 20_000 }, async () => {
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.writeHead(401, { "www-authenticate": `Bearer realm="http://${req.headers.host}/token",service="s"` }).end();
      res.writeHead(200, { "content-type": "application/json" });
      void stream(res, 100 << 20, " ");
    });
    const client = new RegistryClient({ registry: server.host, repository: "x", env: noCredentials });
    const { err } = await failure(client.ping());
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toBe(`registry ${server.host} sent more than 1024 KiB answering GET /token; not reading further`);
  });
});
