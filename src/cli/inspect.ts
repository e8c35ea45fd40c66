import type { Image } from "../oci/image.ts";
import { parseImageName } from "../oci/name.ts";
import { openImage } from "../oci/read.ts";
import { formatPlatform, hostPlatform, parsePlatform } from "../oci/platform.ts";
import { formatBytes, UsageError, type Command } from "./context.ts";
import { jsonText, oneLine, printable } from "../util/format.ts";
import { withPushHost } from "../registry/auth.ts";
import { LayerpackError } from "../errors.ts";

export const inspectCommand: Command = {
  name: "inspect",
  usage: `layerpack inspect IMAGE [--ref NAME] [--platform OS/ARCH[/VARIANT]] [--json] [--insecure]

  IMAGE              docker-archive:PATH, oci:DIR[:REF], oci-archive:PATH[:REF] or docker://HOST/NAME[:TAG|@DIGEST];
                     or a plain path (a docker archive, an OCI archive or an OCI layout directory, told apart by
                     content) or a registry reference REGISTRY/NAME[:TAG|@DIGEST] (when no such path exists)
      --ref NAME     which image of an OCI layout holding several (its org.opencontainers.image.ref.name)
      --platform P   which image of a multi-platform index, os/arch[/variant] (default: this host's, ${formatPlatform(hostPlatform())})
      --json         print one JSON object: manifest, config, layers
      --insecure     plain HTTP to the registry (loopback registries use it without this)`,
  maxPositionals: 1,
  readsConfig: false,
  options: { ref: { type: "string" }, platform: { type: "string" }, json: { type: "boolean" }, insecure: { type: "boolean" } },
  async run({ io, values, positionals, signal }) {
    const target = positionals[0];
    if (target === undefined) throw new UsageError("give a path (archive or OCI layout) or a registry reference");
    const name = parseImageName(target, { cwd: io.cwd });
    const platform = typeof values.platform === "string" ? parsePlatform(values.platform) : undefined;
    const image = await openImage(name, {
      ...(typeof values.ref === "string" ? { ref: values.ref } : {}),
      ...(platform ? { platform } : {}),
      ...(values.insecure ? { insecure: true } : {}),
      // LAYERPACK_REGISTRY_USER/PASSWORD: for the one registry this reads (auth.ts).
      env: withPushHost(io.env, name.transport === "registry" ? name.reference.registry : undefined),
      signal,
    });
    // --ref picks among a layout's images; anything else has none to pick, and showing it anyway would mislead.
    if (typeof values.ref === "string" && image.kind !== "oci-layout" && image.kind !== "oci-archive") {
      throw new UsageError(`--ref ${values.ref}: ${target} is ${image.kind === "registry" ? "a registry image (name its tag in the reference instead)" : "a docker archive"}; --ref picks one image of an OCI layout or archive`);
    }
    // An index picks by --platform; one image is what it is, and showing it for another platform would mislead.
    const c = image.config;
    if (platform && !image.platforms && (c.os !== platform.os || c.architecture !== platform.architecture || (platform.variant !== undefined && c.variant !== platform.variant))) {
      throw new LayerpackError(`${target} is one image, for ${oneLine(platformOf(c))}, not an index: it has no image for --platform ${formatPlatform(platform)}`);
    }
    // JSON escapes what it must; the text quotes the image's own names and comments, so no control characters.
    io.out(values.json ? `${jsonText(image, 2)}\n` : printable(describe(image)));
    return 0;
  },
};

function describe(image: Image): string {
  const c = image.config;
  const cfg = (c.config ?? {}) as Record<string, unknown>;
  const total = image.layers.reduce((n, l) => n + l.size, 0);
  const lines = [
    `${image.kind} ${image.source}`,
    `  names        ${image.names.map(oneLine).join(", ") || "-"}`,
    ...(image.manifestDigest ? [`  manifest     ${image.manifestDigest}`] : []),
    ...(image.platforms ? [`  platforms    ${image.platforms.join(", ")} (an index; this is ${platformOf(c)}, pick another with --platform)`] : []),
    `  config       ${image.configDigest} (image id)`,
    `  platform     ${oneLine(`${String(c.os)}/${String(c.architecture)}`)}, created ${c.created === undefined ? "-" : oneLine(String(c.created))}`,
  ];
  for (const key of ["Entrypoint", "Cmd", "Env", "User", "WorkingDir", "ExposedPorts", "Labels"]) {
    if (cfg[key] !== undefined && cfg[key] !== "") lines.push(`  ${key.padEnd(12)} ${JSON.stringify(cfg[key])}`);
  }
  lines.push(`  layers       ${image.layers.length}, ${formatBytes(total)}`);
  image.layers.forEach((l, i) => {
    const type = oneLine(l.mediaType).replace(/^application\/vnd\.(oci|docker)\.image\.(layer\.v1\.|rootfs\.)?/, "");
    lines.push(`  ${String(i + 1).padStart(3)}  ${l.digest}  ${formatBytes(l.size).padStart(10)}  ${type}`);
    if (l.diffId && l.diffId !== l.digest) lines.push(`       diff_id ${l.diffId}`);
    if (l.comment) lines.push(`       ${oneLine(l.comment)}`);
  });
  return `${lines.join("\n")}\n`;
}

const platformOf = (c: Record<string, unknown>) => [c.os, c.architecture, ...(typeof c.variant === "string" ? [c.variant] : [])].map(String).join("/");
