/** Values the schema refuses at load time (so that plan and check fail as build does), with plain messages. */
import { describe, expect, test } from "vitest";
import { MINIMAL_YAML, loadError, tmpConfigDir } from "./helpers.ts";

/** The message of loading MINIMAL_YAML plus `extra` (its line 4 on). */
async function message(extra: string): Promise<string> {
  return (await loadError({ cwd: tmpConfigDir({ "image.config.yaml": MINIMAL_YAML + extra }) })).message;
}

describe("validated when loading", () => {
  test("an entrypoint with '..', or naming no file, is refused at its line:column", async () => {
    expect(await message("entrypoint: ../../x\n")).toBe("image.config.yaml:4:13: entrypoint: must not contain '..'");
    expect(await message("entrypoint: /usr/../bin/sh\n")).toBe("image.config.yaml:4:13: entrypoint: must not contain '..'");
    expect(await message("entrypoint: ./\n")).toBe("image.config.yaml:4:13: entrypoint: names no file; give a path such as bin/hello");
    expect(await message("entrypoint: /\n")).toBe("image.config.yaml:4:13: entrypoint: names no file; give a path such as bin/hello");
  });
});
