/**
 * The push protocol against a real registry (docker-registry behind the recording proxy of test/fixtures): chunked
 * uploads, retries of interrupted uploads and error answers, Bearer tokens, and where credentials may go.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { requireTool } from "../fixtures/tools.ts";
import { freePort, startRegistry, type TestRegistry } from "../fixtures/registry.ts";
import { pushImage, type PushImage } from "../../src/registry/push.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { RegistryError } from "../../src/errors.ts";
import { manifestOf } from "./local-server.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
let dir: string;

/** An image of random layers (registries do not look inside layers) with a matching config. */
function makeImage(sizes: number[]): PushImage & { files: string[] } {
  const files = sizes.map((size) => {
    const data = randomBytes(size);
    const file = path.join(dir, sha(data).slice(7));
    fs.writeFileSync(file, data);
    return file;
  });
  const layers = files.map((f) => {
    const data = fs.readFileSync(f);
    return { digest: sha(data), diffId: sha(data), size: data.length, mediaType: "application/vnd.oci.image.layer.v1.tar" };
  });
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) } }));
  return { config, configDigest: sha(config), layers, ...manifestOf(config, layers), files, layerFile: async (i) => files[i]! };
}

const hasRegistry = requireTool("docker-registry");

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-push-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.runIf(hasRegistry)("push to a real registry", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg?.stop());

  test("large blobs go in chunks, following each Location; the registry then has every byte", async () => {
    const image = makeImage([300_000, 1000]);
    const result = await pushImage(image, { ref: parseReference(`${reg.host}/chunked:1`), tags: [], chunkSize: 64 * 1024, backoffMs: 1 });
    expect(result.uploaded).toBe(3);
    expect(reg.count("PATCH", "/chunked/")).toBe(Math.ceil(300_000 / 65536));
    const res = await fetch(`http://${reg.host}/v2/chunked/blobs/${image.layers[0]!.digest}`);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(image.layers[0]!.digest);
  });

  test("an interrupted upload is started again and succeeds", async () => {
    const image = makeImage([50_000]);
    const layer = image.layers[0]!.digest;
    reg.cutNext((req) => req.method === "PUT" && req.url!.includes(encodeURIComponent(layer)), 2);
    const result = await pushImage(image, { ref: parseReference(`${reg.host}/cut:1`), tags: [], backoffMs: 1 });
    expect(result.uploaded).toBe(2);
    expect(reg.requests.filter((r) => r.method === "PUT" && r.path.includes("/cut/blobs/uploads/") && r.status === 0)).toHaveLength(2);
  });

  test("an upload that keeps failing ends in a clear error, and no manifest is written", async () => {
    const image = makeImage([40_000]);
    const layer = image.layers[0]!.digest;
    reg.cutNext((req) => req.method === "PUT" && req.url!.includes(encodeURIComponent(layer)), 100);
    const err = await pushImage(image, { ref: parseReference(`${reg.host}/broken:1`), tags: [], retries: 2, backoffMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(new RegExp(`uploading blob ${layer} \\(40000 bytes\\) to ${reg.host}/broken failed after 3 attempts: cannot reach registry`));
    expect(reg.count("PUT", "/broken/manifests/")).toBe(0);
    reg.cutNext(() => false, 0);
  });

  test("a request the client tried again to its limit is not tried again by the blob's own retries (they multiplied)", async () => {
    const image = makeImage([2000]);
    const before = reg.count("POST", "/always-busy/");
    reg.failNext((req) => req.method === "POST" && req.url!.includes("/always-busy/"), 100, 503, "UNAVAILABLE", "try later");
    const err = await pushImage(image, { ref: parseReference(`${reg.host}/always-busy:1`), tags: [], retries: 2, backoffMs: 1, concurrency: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    // The first blob: 3 POSTs (the client's first try and its 2 retries), not 3 × 3.
    expect(reg.count("POST", "/always-busy/") - before).toBe(3);
    reg.failNext(() => false, 0, 503, "", "");
  });

  test("5xx and 429 answers are retried (Retry-After honoured); a 4xx shows the registry's code and message", async () => {
    const image = makeImage([1000]);
    reg.failNext((req) => req.method === "HEAD" && req.url!.includes("/busy/"), 1, 503, "UNAVAILABLE", "try later");
    reg.failNext((req) => req.method === "POST" && req.url!.includes("/busy/"), 1, 429, "TOOMANYREQUESTS", "slow down", { "retry-after": "0" });
    const ok = await pushImage(image, { ref: parseReference(`${reg.host}/busy:1`), tags: [], backoffMs: 1 });
    expect(ok.uploaded).toBe(2);
    reg.failNext((req) => req.method === "PUT" && req.url!.includes("/refused/manifests/"), 1, 400, "MANIFEST_INVALID", "manifest invalid");
    const err = await pushImage(makeImage([10]), { ref: parseReference(`${reg.host}/refused:1`), tags: [], backoffMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toContain(`registry ${reg.host} refused PUT /v2/refused/manifests/1: 400 Bad Request: MANIFEST_INVALID: manifest invalid`);
    expect(err.codes).toEqual(["MANIFEST_INVALID"]);
  });

  test("a manifest refused for a blob the registry lacks is sent again after the blobs, and only so often", async () => {
    const image = makeImage([3000]);
    // As when two runners push one blob at once: the registry answers MANIFEST_BLOB_UNKNOWN for a moment.
    reg.failNext((req) => req.method === "PUT" && req.url!.includes("/racy/manifests/"), 1, 400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
    const ok = await pushImage(image, { ref: parseReference(`${reg.host}/racy:1`), tags: [], backoffMs: 1 });
    expect(reg.count("PUT", "/racy/manifests/")).toBe(2);
    expect(reg.count("HEAD", `/racy/blobs/${image.layers[0]!.digest}`)).toBe(2);
    expect(ok).toMatchObject({ uploaded: 2, existing: 0 });
    const res = await fetch(`http://${reg.host}/v2/racy/manifests/1`, { method: "HEAD", headers: { accept: image.manifestMediaType } });
    expect(res.headers.get("docker-content-digest")).toBe(ok.digest);

    reg.failNext((req) => req.method === "PUT" && req.url!.includes("/gone/manifests/"), 100, 400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
    const err = await pushImage(makeImage([10]), { ref: parseReference(`${reg.host}/gone:1`), tags: [], backoffMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toContain("MANIFEST_BLOB_UNKNOWN: blob unknown to registry");
    expect(reg.count("PUT", "/gone/manifests/")).toBe(4); // the first and three more
  });

  test("a registry that is not listening is reported as unreachable", async () => {
    const port = await freePort();
    const err = await pushImage(makeImage([10]), { ref: parseReference(`127.0.0.1:${port}/x:1`), tags: [], backoffMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(new RegExp(`^cannot reach registry 127\\.0\\.0\\.1:${port} \\(GET /v2/\\): .*ECONNREFUSED`));
  });

  test("a port fetch refuses (a 'bad port') is said so at once, not retried", async () => {
    const t0 = Date.now();
    const err = await pushImage(makeImage([10]), { ref: parseReference("127.0.0.1:1/x:1"), tags: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(/^cannot reach registry 127\.0\.0\.1:1 \(GET \/v2\/\): port 1 is one fetch refuses to use/);
    // With the default backoff a retried request takes seconds; this one is refused before any connection.
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe.runIf(hasRegistry)("Bearer tokens", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ bearer: { user: "alice", password: "wonderland" } });
  });
  afterAll(async () => reg?.stop());

  test("credentials are traded for a token at the realm, and the token is used", async () => {
    const env = { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "wonderland" };
    const result = await pushImage(makeImage([2000]), { ref: parseReference(`${reg.host}/tok:1`), tags: [], env, backoffMs: 1 });
    expect(result.uploaded).toBe(2);
    expect(reg.count("GET", "/token")).toBe(1);
  });

  test("wrong credentials give a clear error that names their source, not their value", async () => {
    const env = { LAYERPACK_REGISTRY_USER: "alice", LAYERPACK_REGISTRY_PASSWORD: "hunter2" };
    const err = await pushImage(makeImage([10]), { ref: parseReference(`${reg.host}/tok:2`), tags: [], env, backoffMs: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(/^authentication with registry .* failed .*token service answered 401: UNAUTHORIZED: bad credentials.*LAYERPACK_REGISTRY_USER\/LAYERPACK_REGISTRY_PASSWORD were refused/);
    expect(err.message).not.toContain("hunter2");
  });
});

test("the Authorization header never goes to another host: redirects and upload Locations elsewhere get none", async () => {
  const seen: { url: string; auth: string | undefined }[] = [];
  const fake: typeof fetch = async (input, init) => {
    const url = String(input);
    const headers = (init?.headers ?? {}) as Record<string, string>;
    seen.push({ url, auth: headers.authorization });
    if (url === "https://r.example/v2/") {
      return headers.authorization ? new Response("{}", { status: 200 }) : new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
    }
    if (url.startsWith("https://r.example/v2/a/blobs/")) return new Response(null, { status: 307, headers: { location: "https://cdn.example/blob" } });
    return new Response("data", { status: 200 });
  };
  const client = new RegistryClient({ registry: "r.example", repository: "a", env: { LAYERPACK_REGISTRY_USER: "u", LAYERPACK_REGISTRY_PASSWORD: "p" }, fetch: fake });
  await client.ping();
  const res = await client.request("GET", client.repoUrl("blobs/sha256:0"), { expect: [200] });
  expect(await res.text()).toBe("data");
  expect(seen.map((s) => [s.url, s.auth !== undefined])).toEqual([
    ["https://r.example/v2/", false],
    ["https://r.example/v2/", true],
    ["https://r.example/v2/a/blobs/sha256:0", true],
    ["https://cdn.example/blob", false],
  ]);
});
