import { describe, expect, test } from "vitest";
import { formatError, LayerpackError } from "../../src/errors.ts";

const withCause = (message: string, cause: Error) => new LayerpackError(message, { cause });
const enoent = () => Object.assign(new Error("ENOENT: no such file or directory, lstat '/x'"), { code: "ENOENT" });

describe("formatError's causes", () => {
  test("a cause that adds something is shown", () => {
    expect(formatError(withCause("cannot read /x", enoent()))).toBe("layerpack: cannot read /x\n  caused by: ENOENT: no such file or directory, lstat '/x'\n");
  });

  test("one that restates the message is not: ENOENT under 'does not exist', undici's 'fetch failed'", () => {
    expect(formatError(withCause("root /x does not exist", enoent()))).toBe("layerpack: root /x does not exist\n");
    const fetch = new Error("fetch failed", { cause: new Error("getaddrinfo ENOTFOUND r.example") });
    expect(formatError(withCause("cannot reach registry r.example (GET /v2/): getaddrinfo ENOTFOUND r.example", fetch))).toBe("layerpack: cannot reach registry r.example (GET /v2/): getaddrinfo ENOTFOUND r.example\n");
    // fetch failed is skipped, its own cause still shown when it adds something
    expect(formatError(withCause("cannot reach registry r.example", fetch))).toBe("layerpack: cannot reach registry r.example\n  caused by: getaddrinfo ENOTFOUND r.example\n");
  });
});
