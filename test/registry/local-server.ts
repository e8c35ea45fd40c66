/**
 * A hand-written "registry" on 127.0.0.1 for hostile-server tests: each test answers requests itself, so it can
 * hang, stall mid-body, stream huge bodies or echo credentials. Records every request; `close()` also drops
 * connections a test left hanging.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { PushImage } from "../../src/registry/push.ts";
import { ociManifest } from "../../src/image/oci-layout.ts";
import { OCI_MEDIA_TYPES } from "../../src/oci/types.ts";

export interface LocalServer {
  /** `127.0.0.1:<port>` */
  host: string;
  url: string;
  seen: { method: string; url: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

export async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<LocalServer> {
  const seen: LocalServer["seen"] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `http://${host}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes `total` bytes of `fill` with backpressure until the client goes away; resolves to the bytes written. */
export function stream(res: http.ServerResponse, total: number, fill = "x"): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, fill);
  let written = 0;
  return new Promise((resolve) => {
    const write = () => {
      while (written < total && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return;
      }
      if (!res.destroyed) res.end();
    };
    res.on("drain", write);
    res.on("close", () => resolve(written));
    write();
  });
}

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** The OCI manifest of a config and layers, as the build makes it. */
export function manifestOf(config: Buffer, layers: { digest: string; diffId: string; size: number; mediaType: string }[]): { manifest: Buffer; manifestMediaType: string } {
  return { manifest: ociManifest({ config, configDigest: sha(config), layers }), manifestMediaType: OCI_MEDIA_TYPES.manifest };
}

/** An image of one random layer file in `dir` and its config. */
export function oneLayerImage(dir: string, size = 1000): PushImage {
  const data = randomBytes(size);
  const file = path.join(dir, sha(data).slice(7));
  fs.writeFileSync(file, data);
  const layer = { digest: sha(data), diffId: sha(data), size, mediaType: "application/vnd.oci.image.layer.v1.tar" };
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.diffId] } }));
  return { config, configDigest: sha(config), layers: [layer], ...manifestOf(config, [layer]), layerFile: async () => file };
}
