/**
 * Credentials where skopeo, podman and docker keep them, in their order: the environment, REGISTRY_AUTH_FILE,
 * ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, then ~/.docker/config.json with its
 * credential helpers (credHelpers per registry, credsStore for all). A helper's output is never shown.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { credentialPlaces, findCredentials } from "../../src/registry/auth.ts";

let dir: string;
let env: Record<string, string>;
const auth = (user: string, pw: string) => ({ auth: Buffer.from(`${user}:${pw}`).toString("base64") });
const write = (rel: string, data: unknown) => {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), typeof data === "string" ? data : JSON.stringify(data));
};

/** A fake docker-credential-NAME on PATH: answers for `host` with `answer`, logs what it was asked. */
function helper(name: string, script: string): void {
  write(`bin/docker-credential-${name}`, `#!/bin/sh\n${script}\n`);
  fs.chmodSync(path.join(dir, `bin/docker-credential-${name}`), 0o755);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-creds-"));
  env = { HOME: dir, XDG_RUNTIME_DIR: path.join(dir, "run"), PATH: `${path.join(dir, "bin")}:/usr/bin:/bin` };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("where credentials are found", () => {
  test("in podman's and skopeo's order, before docker's", () => {
    write(".docker/config.json", { auths: { "r.example": auth("docker", "d0cker") } });
    expect(findCredentials("r.example", env)).toMatchObject({ username: "docker", source: expect.stringContaining(".docker/config.json") });
    write(".config/containers/auth.json", { auths: { "r.example": auth("config", "c0nfig") } });
    expect(findCredentials("r.example", env)).toMatchObject({ username: "config" });
    write("run/containers/auth.json", { auths: { "r.example": auth("runtime", "runt1me") } });
    expect(findCredentials("r.example", env)).toMatchObject({ username: "runtime", source: expect.stringContaining("run/containers/auth.json") });
    write("explicit.json", { auths: { "r.example": auth("explicit", "expl1cit") } });
    expect(findCredentials("r.example", { ...env, REGISTRY_AUTH_FILE: path.join(dir, "explicit.json") })).toMatchObject({ username: "explicit" });
    expect(findCredentials("r.example", { ...env, LAYERPACK_REGISTRY_USER: "u", LAYERPACK_REGISTRY_PASSWORD: "pw12" }, true)).toMatchObject({ username: "u" });
    // a file that does not know the registry passes the search on
    expect(findCredentials("other.example", env)).toBeUndefined();
  });

  test("a credential helper for the registry (credHelpers), given the host on stdin", () => {
    helper("fake", 'read host; [ "$host" = "r.example:5000" ] || exit 1; echo "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"alice\\",\\"Secret\\":\\"s3cret-pw\\"}"');
    write(".docker/config.json", { credHelpers: { "r.example:5000": "fake" }, auths: { "r.example:5000": auth("stale", "stale") } });
    expect(findCredentials("r.example:5000", env)).toEqual({ username: "alice", password: "s3cret-pw", source: `${path.join(dir, ".docker/config.json")} (credential helper docker-credential-fake)` });
  });

  test("credsStore for every registry; <token> means an identity token; not found passes on", () => {
    helper("store", 'read host; case "$host" in tok.example) echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"refresh-tok\\"}";; *) echo "credentials not found in native keychain"; exit 1;; esac');
    write(".docker/config.json", { credsStore: "store" });
    expect(findCredentials("tok.example", env)).toMatchObject({ username: "", password: "", identityToken: "refresh-tok" });
    expect(findCredentials("none.example", env)).toBeUndefined();
  });

  test("a helper that is missing, hangs, or answers garbage is a clear error that never shows its output", () => {
    write(".docker/config.json", { credsStore: "missing" });
    expect(() => findCredentials("r.example", env)).toThrow(/credential helper docker-credential-missing\) is not installed \(not on PATH\)/);
    helper("garbage", 'echo "the password is hunter22 and more" >&2; echo "hunter22 not json"');
    write(".docker/config.json", { credsStore: "garbage" });
    let message = "";
    try {
      findCredentials("r.example", env);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/docker-credential-garbage\) answered with something that is not JSON$/);
    expect(message).not.toContain("hunter22");
    write(".docker/config.json", { credsStore: "../../bin/sh" });
    expect(() => findCredentials("r.example", env)).toThrow(/is not a plain program name/);
  });

  test("an auth file that is not JSON is named with where it breaks, never with the text there (a password)", () => {
    const b64 = Buffer.from("alice:S3cretPassw0rd").toString("base64");
    for (const [text, where] of [
      ['{"auths":{"r.example":{"username":"alice","password":S3cretPassw0rd}}}', /: not valid JSON( at (line \d+ column \d+|offset \d+))?$/],
      [`{"auths":{"r.example":{"auth":"${b64}"}}`, /: not valid JSON(: it ends too early| at line 1 column \d+)$/],
      [`{"auths":{"r.example":{"auth":"${b64}"}} x`, /: not valid JSON at line 1 column \d+$/],
    ] as const) {
      write("run/containers/auth.json", text);
      let message = "";
      try {
        findCredentials("r.example", env);
      } catch (e) {
        message = String((e as Error).message) + String((e as Error).cause ?? "");
      }
      expect(message).toMatch(where);
      expect(message).toMatch(/^cannot read the registry auth file .*auth\.json: not valid JSON/);
      for (const secret of ["S3cret", b64.slice(4, 16)]) expect(message).not.toContain(secret);
    }
  });

  test("an auth file of another shape names the key, never its value, and is no internal error", () => {
    for (const [data, said] of [
      [null, "is not a JSON object"],
      [[1], "is not a JSON object"],
      [{ auths: [] }, ": auths is not an object"],
      [{ auths: { "r.example": "S3cretPassw0rd" } }, ': auths["r.example"] is not an object'],
      [{ auths: { "r.example": { auth: 123456789 } } }, ': auths["r.example"].auth is not a string'],
      [{ auths: { "r.example": { username: "u", password: { p: "S3cretPassw0rd" } } } }, ': auths["r.example"].password is not a string'],
      [{ credsStore: 7 }, ": credsStore is not a string"],
    ] as const) {
      write("run/containers/auth.json", data);
      let message = "";
      try {
        findCredentials("r.example", env);
      } catch (e) {
        expect((e as Error).name).toBe("RegistryError");
        message = (e as Error).message;
      }
      expect(message, JSON.stringify(data)).toBe(`the registry auth file ${path.join(dir, "run/containers/auth.json")}${said.startsWith(":") ? "" : " "}${said}`);
      for (const secret of ["S3cret", "123456789"]) expect(message).not.toContain(secret);
    }
  });

  test("an empty or relative HOME, and relative XDG directories, are not the current directory", () => {
    const home = os.userInfo().homedir;
    for (const odd of [{ HOME: "" }, { HOME: "relative/home" }, { HOME: dir, XDG_CONFIG_HOME: "cfg", XDG_RUNTIME_DIR: "run" }]) {
      const files = credentialPlaces({ ...odd, PATH: env.PATH! }).split(", ").slice(1);
      for (const f of files) expect(path.isAbsolute(f), `${JSON.stringify(odd)}: ${f}`).toBe(true);
      if (odd.HOME !== dir) expect(files).toEqual([path.join(home, ".config/containers/auth.json"), path.join(home, ".docker/config.json")]);
      else expect(files).toEqual([path.join(dir, ".config/containers/auth.json"), path.join(dir, ".docker/config.json")]);
    }
  });

  test("an empty DOCKER_CONFIG is unset; a user with no home directory has no home-based auth files and no default cache", () => {
    expect(credentialPlaces({ HOME: dir, DOCKER_CONFIG: "", PATH: env.PATH! }).split(", ").at(-1)).toBe(path.join(dir, ".docker/config.json"));
    // A uid with no password entry (docker run -u 1234) and HOME=: nothing relative to the current directory.
    const probe = `import { homeDir } from ${JSON.stringify(path.resolve("src/util/dirs.ts"))}; import { credentialPlaces } from ${JSON.stringify(path.resolve("src/registry/auth.ts"))};
      import { defaultCacheDir } from ${JSON.stringify(path.resolve("src/cache/cache.ts"))};
      let cache; try { cache = defaultCacheDir({ HOME: "" }); } catch (e) { cache = e.message; }
      console.log(JSON.stringify([homeDir({ HOME: "" }) ?? null, credentialPlaces({ HOME: "" }), cache]));`;
    const r = spawnSync("setpriv", ["--reuid=54321", "--regid=54321", "--clear-groups", process.execPath, "--input-type=module", "-e", probe], { encoding: "utf8", cwd: "/tmp" });
    // (setpriv changes the uid only for root; CI runs as root.)
    if (r.error || (r.status !== 0 && process.getuid?.() !== 0)) return void console.warn("skipping the no-home case: setpriv (util-linux) is not here, or this user cannot change uid");
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([null, "LAYERPACK_REGISTRY_USER/LAYERPACK_REGISTRY_PASSWORD", expect.stringMatching(/^there is no home directory .*: set LAYERPACK_CACHE_DIR or --cache-dir$/)]);
  });

  test("'no credentials' lists where it looked", () => {
    expect(credentialPlaces(env)).toBe(
      ["LAYERPACK_REGISTRY_USER/LAYERPACK_REGISTRY_PASSWORD", "run/containers/auth.json", ".config/containers/auth.json", ".docker/config.json"]
        .map((p, i) => (i === 0 ? p : path.join(dir, p)))
        .join(", "),
    );
  });
});
