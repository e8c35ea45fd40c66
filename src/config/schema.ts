/**
 * The image spec: one strict zod schema, the single source of truth. `ImageSpecInput` is what users write,
 * `ImageSpec` the validated, defaulted form the later stages read. schemas/image-spec.schema.json is generated
 * from this file (npm run schema); never edit either type by hand.
 *
 * Parsing only validates and fills defaults; relative paths are resolved by the loader (src/config/load.ts),
 * which knows the config file's directory.
 */
import { z } from "zod";
import { STRATEGIES, STRATEGY_NAMES } from "./strategies.ts";
import { OCI_ARCHITECTURES, OCI_OSES, architectureMessage, osMessage } from "./platform-names.ts";

/** Hash alphabet of store paths (nix32). */
const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";
export const storePathPattern = new RegExp(`^(/[^/\\0]+)+/[${NIX32}]{32}-[^/\\0]+$`);

/** What a path in the image may be: names as Linux and GNU tar take them (NAME_MAX, PATH_MAX bytes). */
export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;
const bytes = (s: string) => Buffer.byteLength(s, "utf8");
const fitsNames = (p: string) => p.split("/").every((c) => bytes(c) <= MAX_NAME_BYTES);
const NAMES_MESSAGE = `every name in it must be at most ${MAX_NAME_BYTES} bytes`;
const PATH_MESSAGE = `must be at most ${MAX_PATH_BYTES} bytes`;

const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, "must be an absolute path (start with /)")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'")
  .refine(fitsNames, NAMES_MESSAGE)
  .refine((p) => bytes(p) <= MAX_PATH_BYTES, PATH_MESSAGE);

/** Latest time a tar header holds (11 octal digits of seconds: 2242-03-16T12:56:31Z). */
export const MAX_TAR_SECONDS = 0o77777777777;

const octalMode = z
  .string()
  .regex(/^[0-7]{3,4}$/, 'must be an octal mode such as "755" or "1777"');

const storeDir = absolutePath.refine((p) => p.length > 1 && !p.endsWith("/"), "must be a directory such as /gnu/store, without a trailing /");

export const storeSchema = z.union([
  storeDir,
  z.strictObject({
    dir: storeDir.describe("Store directory as it appears in store paths and in the image"),
    root: z.string().min(1).describe("Host directory the store is found under (chroot-style); default /").default("/"),
  }),
]);

export const closureSchema = z.strictObject({
  from: z
    .enum(["auto", "database", "scan", "guix-graph", "nix-closure-info"])
    .default("auto")
    .describe("auto: the host store's database when there is one for the store dir, else scan"),
  file: z.string().min(1).optional().describe("database file, references graph or closureInfo directory"),
}).superRefine((c, ctx) => {
  // Checked here, not when the closure is resolved, so that the error has the config's line and column.
  if ((c.from === "guix-graph" || c.from === "nix-closure-info") && c.file === undefined) {
    ctx.addIssue({ code: "custom", path: ["file"], message: `is required with from: ${c.from} (the ${c.from === "guix-graph" ? "references graph file" : "closureInfo directory"})` });
  }
});

// Enums, so that editors complete them from the JSON Schema; the messages name the OCI spelling of x86_64 & co.
const architectureName = z.enum(OCI_ARCHITECTURES, { error: (issue) => architectureMessage(issue.input) });
const osName = z.enum(OCI_OSES, { error: (issue) => osMessage(issue.input) });

export const symlinkSpec = z
  .string()
  .regex(/^\/[^=]*=[^=]+$/, 'must look like "/bin=bin" (absolute link = target relative to the profile, or absolute)')
  .refine((s) => !s.split("=").some((part) => part.split("/").includes("..")), "must not contain '..'")
  .refine((s) => s.split("=").every(fitsNames), NAMES_MESSAGE)
  .refine((s) => s.split("=").every((part) => bytes(part) <= MAX_PATH_BYTES), `each side ${PATH_MESSAGE}`);

// What resolveEntrypoint refuses, said at load time: plan and check fail too, at the key's line:column.
const entrypointSchema = z
  .string()
  .min(1)
  .refine((ep) => !ep.split("/").includes(".."), "must not contain '..'")
  .refine((ep) => ep.split("/").some((c) => c !== "" && c !== "."), "names no file; give a path such as bin/hello");

export const pathEntrySchema = z.discriminatedUnion("type", [
  z.strictObject({
    path: absolutePath,
    type: z.literal("directory"),
    mode: octalMode.default("755"),
  }),
  z.strictObject({
    path: absolutePath,
    type: z.literal("file"),
    mode: octalMode.default("644"),
    content: z.string().optional().describe("file content, inline"),
    source: z.string().min(1).optional().describe("host file to copy, relative to the config file"),
  }).refine((f) => (f.content === undefined) !== (f.source === undefined), "a file needs exactly one of content or source"),
  z.strictObject({
    path: absolutePath,
    type: z.literal("symlink"),
    target: z.string().min(1).refine(fitsNames, NAMES_MESSAGE).refine((t) => bytes(t) <= MAX_PATH_BYTES, PATH_MESSAGE),
  }),
]);

export const MAX_LAYERS = 127;

export const layersSchema = z.strictObject({
  max: z
    // One message for whatever is not a whole number (1.5, "ten", 1e400, which YAML reads as Infinity).
    .number({ error: `must be a whole number between 1 and ${MAX_LAYERS}` })
    .int(`must be a whole number between 1 and ${MAX_LAYERS}`)
    .min(1, "must be at least 1 (1 = everything in one layer)")
    .max(
      MAX_LAYERS,
      `must be at most ${MAX_LAYERS}: overlay file systems stack at most about 128 layers, and images built on top need room for their own (100 is a good value)`,
    )
    .default(100),
  strategy: z
    .enum(STRATEGY_NAMES)
    .default("sharing")
    .describe(Object.entries(STRATEGIES).map(([name, what]) => `${name}: ${what}`).join("; ")),
  previous: z
    .string()
    .min(1)
    .optional()
    .describe("sticky plans: a plan file (relative to the config, usually the committed image.plan.yaml) whose grouping is kept wherever still valid"),
});

/**
 * A compressed file's suffix on an archive's path: the archive is a plain tar (its layers are what `compression`
 * compresses), so `image.tar.gz` would be a name that lies to whoever unpacks it. The message, else undefined.
 */
export function compressedArchiveName(format: string, file: string | undefined): string | undefined {
  if ((format !== "docker-archive" && format !== "oci-archive") || file === undefined) return undefined;
  const suffix = /\.(tgz|gz|zst|zstd|xz|bz2|lz4)$/i.exec(file)?.[0];
  if (suffix === undefined) return undefined;
  return `ends in ${suffix}, but ${format === "oci-archive" ? "an" : "a"} ${format} is written as a plain tar whose layers \`compression\` compresses; name it .tar (podman and docker load it either way)`;
}

export const outputSchema = z
  .strictObject({
    format: z
      .enum(["docker-archive", "oci-layout", "oci-archive", "registry"])
      .default("docker-archive")
      .describe("docker-archive / oci-archive: a tar file; oci-layout: a directory; registry: pushed to `ref`"),
    path: z.string().min(1).optional().describe("output file or directory, relative to the config file (not for registry); default ./<name>.tar (a layout: ./<name>); - is standard output"),
    ref: z.string().min(1).optional().describe("registry only: REGISTRY/NAME[:TAG]; without a tag, the image's tags are pushed"),
    insecure: z.boolean().optional().describe("registry only: plain HTTP to ref's registry, not to cache sources elsewhere (loopback registries are allowed without it)"),
  })
  .superRefine((out, ctx) => {
    const registry = out.format === "registry";
    if (out.path === "-" && out.format !== "docker-archive" && out.format !== "oci-archive") {
      ctx.addIssue({ code: "custom", path: ["path"], message: "- (standard output) is only for the archive formats docker-archive and oci-archive" });
    }
    const compressed = compressedArchiveName(out.format, out.path);
    if (compressed !== undefined) ctx.addIssue({ code: "custom", path: ["path"], message: compressed });
    if (registry && out.ref === undefined) ctx.addIssue({ code: "custom", path: ["ref"], message: "is required (string) for format registry" });
    if (registry && out.path !== undefined) ctx.addIssue({ code: "custom", path: ["path"], message: "is not used by format registry; give ref" });
    if (!registry && (out.ref !== undefined || out.insecure !== undefined)) {
      ctx.addIssue({ code: "custom", path: [out.ref !== undefined ? "ref" : "insecure"], message: "is only for format registry" });
    }
  });

/** Largest uid/gid: 2^32 - 2 ((uid_t)-1 means "no change" to the kernel). */
export const MAX_ID = 4294967294;
const accountId = z.number().int("must be a whole number").min(0, "must be at least 0").max(MAX_ID, `must be at most ${MAX_ID}`);
const accountName = z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, "must be a user or group name: letters, digits, _ . -, at most 32, not starting with a digit or -");

/**
 * The image's User as podman and docker read it: UID or NAME, then optionally :GID or :GROUP. Names as the image's
 * /etc/passwd may hold them (POSIX-like, a trailing $ for machine accounts); numbers within the uid range, so that
 * a typo is said here rather than as podman's "unable to find user" at run time.
 */
const USER_PART = "(?:\\d+|[A-Za-z_][A-Za-z0-9_.-]{0,254}\\$?)";
const userSpec = z
  .string()
  .regex(new RegExp(`^${USER_PART}(?::${USER_PART})?$`), 'must be UID[:GID] or NAME[:GROUP], such as "1000:1000" or "app" (a name: letters, digits, _ . -, not starting with a digit, . or -)')
  .superRefine((user, ctx) => {
    const big = user.split(":").find((part) => /^\d+$/.test(part) && Number(part) > MAX_ID);
    if (big !== undefined) ctx.addIssue({ code: "custom", message: `${big} is not a valid uid or gid: ids are 0 to ${MAX_ID}` });
  });

export const databaseSchema = z.union([
  z.boolean(),
  z.strictObject({
    flavor: z.enum(["guix", "nix"]).optional().describe("schema and layout: guix (version 7, /var/guix) or nix (version 10, /nix/var/nix); default from the store dir"),
    path: absolutePath.optional().describe("state directory in the image (Guix --localstatedir); default /var/guix or /nix/var/nix"),
  }),
]);

export const rootSystemSchema = z.union([
  z.string().min(1),
  z.strictObject({
    dir: z.string().min(1).describe("host directory, relative to the config file"),
    keepOwners: z.boolean().default(false).describe("keep the files' host uid/gid instead of root (not reproducible across machines)"),
    allowDevices: z.boolean().default(false).describe("allow device nodes and fifos"),
  }),
]);

export const userSchema = z.strictObject({
  name: accountName,
  uid: accountId,
  gid: accountId.optional().describe("primary group; default: the uid (a group of the user's name is added when none has it)"),
  home: absolutePath.default("/"),
  shell: absolutePath.default("/bin/sh"),
  comment: z.string().regex(/^[^:\n]*$/, "must not contain : or a newline").default(""),
});

export const groupSchema = z.strictObject({
  name: accountName,
  gid: accountId,
  members: z.array(accountName).default([]),
});

/** A field that must be unique across a list of accounts. */
interface UniqueField<T> {
  /** The value that must not repeat. */
  key: (t: T) => string | number;
  /** How the message names it ("user", "uid", ...). */
  what: string;
  /** The field the issue's path points at. */
  field: string;
}

export const accountsSchema = z
  .strictObject({
    users: z.array(userSchema).default([]),
    groups: z.array(groupSchema).default([]),
    runAs: accountName.optional().describe("user the image runs as (sets the image's User to its uid:gid)"),
  })
  .superRefine((a, ctx) => {
    const dup = <T>(list: T[], where: "users" | "groups", { key, what, field }: UniqueField<T>) => {
      const seen = new Map<string | number, number>();
      list.forEach((t, i) => {
        const k = key(t);
        const first = seen.get(k);
        if (first !== undefined) ctx.addIssue({ code: "custom", path: [where, i, field], message: `duplicate ${what} ${k}: ${where}[${first}] has it already` });
        else seen.set(k, i);
      });
    };
    dup(a.users, "users", { key: (u) => u.name, what: "user", field: "name" });
    dup(a.users, "users", { key: (u) => u.uid, what: "uid", field: "uid" });
    dup(a.groups, "groups", { key: (g) => g.name, what: "group", field: "name" });
    dup(a.groups, "groups", { key: (g) => g.gid, what: "gid", field: "gid" });
  });

export const permSchema = z
  .strictObject({
    path: z.string().regex(/^\/[^\0]*$/, "must be an absolute glob such as /home/app or /var/lib/app/**"),
    uid: accountId.optional(),
    gid: accountId.optional(),
    mode: octalMode.optional(),
  })
  .refine((p) => p.uid !== undefined || p.gid !== undefined || p.mode !== undefined, "give at least one of uid, gid or mode");

const rfc3339 = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, 'must be an RFC 3339 time such as "1970-01-01T00:00:01Z"')
  .refine((s) => !Number.isNaN(Date.parse(s)), "is not a valid date")
  .refine((s) => {
    const seconds = Date.parse(s) / 1000;
    // An invalid date has its own message above.
    return Number.isNaN(seconds) || (seconds >= 0 && seconds <= MAX_TAR_SECONDS);
  }, "must be between 1970-01-01T00:00:00Z and 2242-03-16T12:56:31Z (what a tar header's time holds)");

const tagSchema = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be a valid tag (letters, digits, _ . -, at most 128)");

const portSpec = z
  .union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}(\/(tcp|udp|sctp))?$/, 'must look like "80" or "80/tcp"')])
  .transform((p) => (typeof p === "number" || !p.includes("/") ? `${p}/tcp` : p));

export const imageSpecSchema = z
  .strictObject({
    $schema: z.string().optional().describe("JSON Schema reference for editors (schemas/image-spec.schema.json); ignored"),
    name: z
      .string()
      .regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/, "must be a lowercase repository name such as hello or team/hello")
      .describe("the image's repository name, such as hello or team/hello; also names the default output ./<name>.tar"),
    tag: tagSchema.optional().describe("the image's tag; default: the plan's digest, so that a new plan gets a new tag"),
    tags: z.array(tagSchema).min(1).optional().describe("several tags at once (with tag, tag comes first)"),
    store: storeSchema.default("/gnu/store").describe("the store: its directory (/gnu/store, /nix/store), or { dir, root } for a store under another root"),
    base: z
      .string()
      .min(1)
      .optional()
      .describe("base image, reused byte for byte under this one: docker-archive:PATH, oci:DIR[:REF], oci-archive:PATH[:REF], docker://HOST/NAME[:TAG|@DIGEST], or a plain path"),
    profile: z.string().min(1).optional().describe("profile link or store item whose closure is packed"),
    roots: z.array(z.string().min(1)).min(1).optional().describe("store paths whose closure is packed (instead of profile)"),
    closure: closureSchema.default({ from: "auto" }).describe("where the closure (items and references) comes from: the store's database, a scan, a references graph or closureInfo"),
    symlinks: z.array(symlinkSpec).default([]).describe('links in the image\'s root, "/bin=bin": absolute link = target relative to the profile, or absolute'),
    entrypoint: entrypointSchema.optional().describe("relative to the profile, or absolute"),
    entrypointArgs: z.array(z.string()).default([]).describe("arguments always passed to the entrypoint, before cmd"),
    cmd: z.array(z.string()).default([]).describe("default arguments, replaced by those given to podman/docker run"),
    // A NUL in a name is the superRefine's to say (as in every string); here what the environment cannot hold.
    env: z.record(z.string().min(1, "an environment variable name must not be empty").regex(/^[^=]*$/, 'an environment variable name cannot contain "="'), z.string()).default({}).describe("environment variables of the image's config"),
    workingDir: absolutePath.default("/").describe("the container's working directory"),
    user: userSpec.default("0:0").describe("user the container runs as: UID[:GID] or NAME[:GROUP] (ids 0 to 4294967294; names the image's /etc/passwd and /etc/group hold)"),
    labels: z.record(z.string(), z.string()).default({}).describe("labels of the image's config"),
    exposedPorts: z.array(portSpec).default([]).describe('ports the image exposes, "8080" or "53/udp"'),
    paths: z.array(pathEntrySchema).default([]).describe("files, directories and links of the customisation layer; /tmp (mode 1777) is always added unless listed here, in symlinks or in the root system"),
    layers: layersSchema.default({ max: 100, strategy: "sharing" }).describe("how store items are grouped into layers: max layers, strategy, a previous plan to stay close to"),
    compression: z.enum(["gzip", "zstd", "none"]).default("gzip").describe("layer compression (docker archives take gzip or none)"),
    created: rfc3339.optional().describe("default: SOURCE_DATE_EPOCH, else 1970-01-01T00:00:01Z"),
    architecture: architectureName.optional().describe("default: this host's, in OCI names (amd64; arm64 with variant v8; ...)"),
    variant: z.string().min(1).optional().describe("CPU variant (v8 for arm64, v7 for arm); default: the host's when architecture is not given"),
    platforms: z
      .array(
        z.strictObject({
          os: osName.optional().describe("default: the config's os"),
          architecture: architectureName.describe("in OCI names: amd64, arm64, arm, 386, ppc64le, s390x, riscv64"),
          variant: z.string().min(1).optional(),
          profile: z.string().min(1).optional().describe("this platform's profile (default: the config's)"),
          roots: z.array(z.string().min(1)).min(1).optional().describe("this platform's roots (default: the config's)"),
        }),
      )
      .min(2, "list at least two platforms (one platform: set architecture instead)")
      .optional()
      .describe("one image per platform, each from its own closure, joined in an OCI image index under the tags; items common to all share layers"),
    os: osName.default("linux").describe("the image's operating system, in OCI names"),
    output: outputSchema.default({ format: "docker-archive" }).describe("where the image goes; default: a docker archive ./<name>.tar beside the config"),
    rootSystem: rootSystemSchema.optional().describe("a provisioned root file system added as its own layer (guix system image)"),
    database: databaseSchema.default(false).describe("register the closure in a store database (db.sqlite) in the image"),
    accounts: accountsSchema.optional().describe("/etc/passwd and /etc/group, merged with the root system's"),
    perms: z.array(permSchema).default([]).describe("ownership and mode of matching entries in any layer"),
    annotations: z
      .record(z.string().min(1), z.string())
      .optional()
      .describe("OCI annotations of the manifest and index entries, over the org.opencontainers.image.* ones layerpack sets (created, title, version, source, revision)"),
    sbom: z
      .union([z.enum(["spdx", "cyclonedx"]), z.array(z.enum(["spdx", "cyclonedx"])).min(1)])
      .optional()
      .describe("SBOM of the closure, SPDX 2.3 and/or CycloneDX 1.6 JSON: files beside a docker archive (<output>.spdx.json, .cdx.json), artifacts with the image as subject in OCI layouts, archives and registries"),
    cache: z
      .strictObject({
        from: z
          .array(z.string().min(1))
          .default([])
          .describe("registry images (docker://HOST/NAME:TAG) whose cache records let a build reuse layers without reading them; a registry output also uses its own tag"),
        publish: z.boolean().default(true).describe("registry output: push the cache record (an OCI artifact whose subject is the image) for later builds"),
      })
      .default({ from: [], publish: true })
      .describe("sharing layers between machines through a registry"),
  })
  .superRefine((spec, ctx) => {
    // A NUL byte ends a C string: in a name, path, label or variable it would be cut or refused mid-build.
    for (const at of nulStrings(spec, [])) ctx.addIssue({ code: "custom", path: at, message: "must not contain a NUL byte (\\0)" });
    if (spec.platforms === undefined && (spec.profile === undefined) === (spec.roots === undefined)) {
      ctx.addIssue({ code: "custom", path: spec.profile === undefined ? [] : ["roots"], message: "give exactly one of profile or roots" });
    }
    spec.platforms?.forEach((pl, i) => {
      const profile = pl.profile ?? (pl.roots === undefined ? spec.profile : undefined);
      const roots = pl.roots ?? (pl.profile === undefined ? spec.roots : undefined);
      if ((profile === undefined) === (roots === undefined)) ctx.addIssue({ code: "custom", path: ["platforms", i], message: "give exactly one of profile or roots, here or in the config" });
      const same = spec.platforms!.findIndex((o) => (o.os ?? spec.os) === (pl.os ?? spec.os) && o.architecture === pl.architecture && o.variant === pl.variant);
      if (same !== i) ctx.addIssue({ code: "custom", path: ["platforms", i], message: `the same platform as platforms[${same}]` });
    });
    if (spec.platforms !== undefined) {
      for (const key of ["architecture", "variant"] as const) {
        if (spec[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "is given per platform when there are platforms" });
      }
      if (spec.output.format === "docker-archive") {
        ctx.addIssue({ code: "custom", path: ["output", "format"], message: "docker-archive holds one image; platforms need an image index: use oci-layout, oci-archive or registry" });
      }
      if (spec.base !== undefined) ctx.addIssue({ code: "custom", path: ["base"], message: "a base image with platforms is not supported yet" });
      if (spec.rootSystem !== undefined) ctx.addIssue({ code: "custom", path: ["rootSystem"], message: "a root system is one machine's: not with platforms" });
    }
    if (spec.entrypoint && !spec.entrypoint.startsWith("/")) {
      // Relative to the profile: each platform's own, or the top level's when the platform gives no roots.
      if (spec.platforms === undefined) {
        if (spec.profile === undefined) ctx.addIssue({ code: "custom", path: ["entrypoint"], message: "must be absolute when there is no profile" });
      } else {
        const without = spec.platforms.findIndex((pl) => pl.profile === undefined && (pl.roots !== undefined || spec.profile === undefined));
        if (without >= 0) ctx.addIssue({ code: "custom", path: ["entrypoint"], message: `must be absolute: platforms[${without}] has no profile (it packs roots)` });
      }
    }
    if (spec.compression === "zstd" && spec.output.format === "docker-archive") {
      ctx.addIssue({
        code: "custom",
        path: ["compression"],
        message: "zstd layers are not supported in a docker archive (docker and containerd mislabel them); use gzip or none, or an OCI output format",
      });
    }
  });

/** Key paths of every string (or record key) holding a NUL byte. */
function nulStrings(value: unknown, at: (string | number)[]): (string | number)[][] {
  if (typeof value === "string") return value.includes("\0") ? [at] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => nulStrings(v, [...at, i]));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => (k.includes("\0") ? [[...at, k]] : nulStrings(v, [...at, k])));
  }
  return [];
}

export type ImageSpecInput = z.input<typeof imageSpecSchema>;
export type ImageSpec = z.output<typeof imageSpecSchema>;
export type PathEntry = z.output<typeof pathEntrySchema>;
export type Accounts = z.output<typeof accountsSchema>;
export type Perm = z.output<typeof permSchema>;
