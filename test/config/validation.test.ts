/** Values the schema refuses at load time (so that plan and check fail as build does), with plain messages. */
import { describe, expect, test } from "vitest";
import { loadSpec } from "../../src/config/load.ts";
import { MINIMAL_YAML, loadError, tmpConfigDir } from "./helpers.ts";

/** The message of loading MINIMAL_YAML plus `extra` (its line 4 on). */
async function message(extra: string): Promise<string> {
  return (await loadError({ cwd: tmpConfigDir({ "image.config.yaml": MINIMAL_YAML + extra }) })).message;
}

describe("validated when loading", () => {
  test("an archive's path with a compressed file's suffix is refused: the archive is a plain tar", async () => {
    const yaml = (output: string) => MINIMAL_YAML.replace("output: { path: ./hello.tar }", `output: ${output}`);
    const refused = async (output: string) => (await loadError({ cwd: tmpConfigDir({ "image.config.yaml": yaml(output) }) })).message;
    expect(await refused("{ path: image.tar.gz }")).toBe(
      "image.config.yaml:3:17: output.path: ends in .gz, but a docker-archive is written as a plain tar whose layers `compression` compresses; name it .tar (podman and docker load it either way)",
    );
    expect(await refused("{ format: oci-archive, path: x.tar.ZST }")).toMatch(/^image\.config\.yaml:3:38: output\.path: ends in \.ZST, but an oci-archive is written/);
    for (const ok of ["{ format: oci-layout, path: out.gz }", "{ path: image.tar }", "{ path: gz }"]) {
      await expect(loadSpec({ cwd: tmpConfigDir({ "image.config.yaml": yaml(ok) }), env: {} })).resolves.toBeDefined();
    }
  });

  test("an entrypoint with '..', or naming no file, is refused at its line:column", async () => {
    expect(await message("entrypoint: ../../x\n")).toBe("image.config.yaml:4:13: entrypoint: must not contain '..'");
    expect(await message("entrypoint: /usr/../bin/sh\n")).toBe("image.config.yaml:4:13: entrypoint: must not contain '..'");
    expect(await message("entrypoint: ./\n")).toBe("image.config.yaml:4:13: entrypoint: names no file; give a path such as bin/hello");
    expect(await message("entrypoint: /\n")).toBe("image.config.yaml:4:13: entrypoint: names no file; give a path such as bin/hello");
  });

  test("user is UID[:GID] with ids up to 4294967294, or NAME[:GROUP] of safe characters", async () => {
    const ok = ["0:0", "1000", "app", "app:staff", "1000:staff", "app:100", "_svc.x-1", "host$", "4294967294:4294967294"];
    for (const user of ok) {
      const cwd = tmpConfigDir({ "image.config.yaml": `${MINIMAL_YAML}user: "${user}"\n` });
      expect((await loadSpec({ cwd, env: {} })).config.user).toBe(user);
    }
    expect(await message('user: "99999999999999999999:0"\n')).toBe("image.config.yaml:4:7: user: 99999999999999999999 is not a valid uid or gid: ids are 0 to 4294967294");
    expect(await message('user: "0:4294967295"\n')).toMatch(/^image\.config\.yaml:4:7: user: 4294967295 is not a valid uid or gid/);
    const shape = 'must be UID[:GID] or NAME[:GROUP], such as "1000:1000" or "app" (a name: letters, digits, _ . -, not starting with a digit, . or -)';
    for (const bad of ["", "a b", "a:b:c", "app:", ":0", "-app", "1abc", "app\\t", "app\\u001b[2J", "-1"]) {
      expect(await message(`user: "${bad}"\n`)).toBe(`image.config.yaml:4:7: user: ${shape}`);
    }
  });

  test("layers.max that is not a whole number (1e400 is Infinity to YAML) says its range", async () => {
    for (const max of ["1e400", ".nan", "2.5", "ten", "true", "1e20"]) {
      expect(await message(`layers: { max: ${max} }\n`)).toMatch(/^image\.config\.yaml:4:16: layers\.max: must (be a whole number between 1 and 127|be at most 127: overlay)/);
    }
    expect(await message("layers: { max: 1e400 }\n")).toBe("image.config.yaml:4:16: layers.max: must be a whole number between 1 and 127");
    // Numbers of the wrong kind elsewhere: zod's "expected int" and JSON's null for Infinity said plainly.
    expect(await message("perms: [{ path: /x, uid: 1e400 }]\n")).toBe("image.config.yaml:4:26: perms[0].uid: must be a finite number, not Infinity");
    expect(await message("perms: [{ path: /x, uid: 1.5 }]\n")).toBe("image.config.yaml:4:26: perms[0].uid: must be a whole number");
  });

  test("an environment variable name with = or empty is refused at the name, saying why", async () => {
    expect(await message('env: { "A=B": x }\n')).toBe('image.config.yaml:4:8: env["A=B"]: an environment variable name cannot contain "="');
    expect(await message('env: { "": x }\n')).toBe('image.config.yaml:4:8: env[""]: an environment variable name must not be empty');
  });
});
