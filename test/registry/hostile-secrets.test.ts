/**
 * Registries that echo credentials back, references that carry them, and upload Locations that are not http(s).
 * Each test runs its own server on 127.0.0.1 (local-server.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RegistryClient } from "../../src/registry/client.ts";
import { pushImage } from "../../src/registry/push.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { readImage } from "../../src/oci/read.ts";
import { formatError, RegistryError } from "../../src/errors.ts";
import { oneLayerImage, serve, type LocalServer } from "./local-server.ts";

let server: LocalServer | undefined;
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-secrets-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const USER = "alice";
const PASSWORD = "correct-horse-battery";
const TOKEN = "tok.eyJzdWIiOiJhbGljZSJ9.sig";
const env = { HOME: "/nonexistent", DOCKER_CONFIG: "/nonexistent", LAYERPACK_REGISTRY_USER: USER, LAYERPACK_REGISTRY_PASSWORD: PASSWORD };
const escapeRe = (s: string) => s.replace(/[.*+?^$()|[\]\\/{}]/g, "\\$&");
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** What the user sees of an error (message and causes), checked for every form of every secret. */
function expectNoSecrets(err: unknown): string {
  expect(err).toBeInstanceOf(RegistryError);
  const shown = formatError(err);
  // Also base64 of user:password inside a longer base64 text, where it is not aligned to 3 bytes.
  const inside = b64(`:${USER}:${PASSWORD}\n`).slice(2, -4);
  for (const secret of [PASSWORD, TOKEN, b64(`${USER}:${PASSWORD}`), b64(PASSWORD), b64(TOKEN), encodeURIComponent(PASSWORD), inside]) {
    expect(shown).not.toContain(secret);
  }
  return shown;
}

/** A registry error body repeating what the client sent, in several encodings. */
function echo(authorization: string | undefined): string {
  const value = authorization ?? "";
  const credential = value.replace(/^\w+ /, "");
  return JSON.stringify({
    errors: [{ code: "DENIED", message: `you sent ${value}; that is ${Buffer.from(credential, "base64").toString()}`, detail: { password: PASSWORD, b64: b64(PASSWORD), inside: b64(`:${USER}:${PASSWORD}\n`) } }],
  });
}

describe("secrets never appear in messages", () => {
  test("a registry echoing the Basic header, the password and their base64 gets [redacted]", async () => {
    server = await serve((req, res) => {
      const auth = req.headers.authorization;
      if (!auth) return res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
      res.writeHead(401, { "www-authenticate": `Basic realm="${auth}"`, "content-type": "application/json" }).end(echo(auth));
    });
    const client = new RegistryClient({ registry: server.host, repository: "x", env });
    const err = await client.ping().catch((e: unknown) => e);
    const shown = expectNoSecrets(err);
    expect(shown).toContain("DENIED: you sent Basic [redacted]; that is [redacted]");
    expect(shown).toContain("the credentials from LAYERPACK_REGISTRY_USER/LAYERPACK_REGISTRY_PASSWORD were refused");
  });

  test("a token service echoing the credentials it was sent, and a registry echoing the bearer token, get [redacted]", async () => {
    let tokenAnswer = 401;
    server = await serve((req, res) => {
      const auth = req.headers.authorization;
      if (req.url!.startsWith("/token")) {
        if (tokenAnswer === 401) return res.writeHead(401, { "content-type": "application/json" }).end(echo(auth));
        return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: TOKEN }));
      }
      if (auth === undefined) return res.writeHead(401, { "www-authenticate": `Bearer realm="http://${req.headers.host}/token",service="s"` }).end();
      if (req.url === "/v2/") return res.end("{}");
      // Echoes the token in the body and an upload Location it makes up from it.
      res.writeHead(400, { "content-type": "application/json" }).end(echo(auth));
    });
    const refused = await new RegistryClient({ registry: server.host, repository: "x", env }).ping().catch((e: unknown) => e);
    expect(expectNoSecrets(refused)).toMatch(/token service answered 401: DENIED: you sent Basic \[redacted\]; that is \[redacted\]/);
    tokenAnswer = 200;
    const err = await readImage(`${server.host}/x:1`, { env }).catch((e: unknown) => e);
    expect(expectNoSecrets(err)).toContain(`refused GET /v2/x/manifests/1: 400 Bad Request: DENIED: you sent Bearer [redacted]; that is`);
  });

  test("the environment's credentials go only to the registry pushed to, not to one a base image or cache is read from", async () => {
    const seen: string[] = [];
    server = await serve((req, res) => {
      seen.push(req.headers.authorization ?? "none");
      if (req.headers.authorization === undefined) return res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
      res.end("{}");
    });
    // A read of another registry: nothing sent, and the refusal says how to send them there.
    const read = await new RegistryClient({ registry: server.host, repository: "x", actions: "pull", env }).ping().catch((e: unknown) => e);
    expect(formatError(read)).toMatch(/no credentials found: set LAYERPACK_REGISTRY_USER and LAYERPACK_REGISTRY_PASSWORD \(with LAYERPACK_REGISTRY_HOST=127\.0\.0\.1:\d+ when not pushing there\)/);
    expect(seen.every((a) => a === "none")).toBe(true);
    // The registry pushed to, or one LAYERPACK_REGISTRY_HOST names, gets them.
    await new RegistryClient({ registry: server.host, repository: "x", env }).ping();
    await new RegistryClient({ registry: server.host, repository: "x", actions: "pull", env: { ...env, LAYERPACK_REGISTRY_HOST: server.host } }).ping();
    expect(seen.filter((a) => a === `Basic ${b64(`${USER}:${PASSWORD}`)}`)).toHaveLength(2);
  });

  test("credentials in a reference are refused without being shown", () => {
    for (const text of [`${USER}:${PASSWORD}@localhost:5000/x:1`, `${USER}:${PASSWORD}@localhost:5000`, `${USER}:pa/ss@${PASSWORD}@host.example/x`, `${USER}:${PASSWORD}@r.example/x@sha256:${"a".repeat(64)}`]) {
      const err = (() => {
        try {
          return parseReference(text);
        } catch (e) {
          return e;
        }
      })();
      expectNoSecrets(err);
      expect((err as Error).message).toMatch(/^image reference '\*\*\*@[^']*' holds credentials; they are not taken from a reference: set LAYERPACK_REGISTRY_USER/);
      expect((err as Error).message).not.toContain("pa/ss");
    }
    expect(() => parseReference(`${USER}:${PASSWORD}@localhost:5000/x:1`)).toThrow("'***@localhost:5000/x:1'");
    // A digest is not userinfo.
    expect(parseReference(`hello@sha256:${"b".repeat(64)}`).digest).toBe(`sha256:${"b".repeat(64)}`);
  });
});

describe("Locations that are not http(s)", () => {
  test.each(["file:///etc/passwd", "ftp://127.0.0.1/upload", "data:,x"])("an upload session at %s is refused, not followed nor retried", async (location) => {
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      if (req.method === "HEAD") return res.writeHead(404).end();
      if (req.method === "POST") return res.writeHead(202, { location }).end();
      res.writeHead(500).end();
    });
    const opts = { ref: parseReference(`${server.host}/x:1`), tags: [], env, backoffMs: 1, concurrency: 1 };
    const err = await pushImage(oneLayerImage(dir), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toMatch(
      new RegExp(`^uploading blob sha256:[0-9a-f]{64} \\(\\d+ bytes\\) to ${server.host}/x failed: starting the upload of sha256:[0-9a-f]{64} to ${server.host}/x: the registry sent Location "${escapeRe(location)}", which is not an http\\(s\\) URL; not following it$`),
    );
    expect(server.seen.map((r) => r.method)).toEqual(["GET", "HEAD", "POST"]);
  });

  test("a redirect to a file: URL is refused", async () => {
    server = await serve((req, res) => {
      if (req.url === "/v2/") return res.end("{}");
      res.writeHead(302, { location: "file:///etc/passwd" }).end();
    });
    const err = await readImage(`${server.host}/x:1`, { env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toBe('GET /v2/x/manifests/1: following a redirect: the registry sent Location "file:///etc/passwd", which is not an http(s) URL; not following it');
  });
});
