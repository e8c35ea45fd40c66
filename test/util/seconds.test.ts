import { describe, expect, it } from "vitest";
import { MAX_TIMEOUT_SECONDS, timeoutMs } from "../../src/util/seconds.ts";

describe("timeout variables", () => {
  it("take positive seconds up to what a Node timer holds", () => {
    expect(timeoutMs("0.5")).toBe(500);
    expect(timeoutMs(String(MAX_TIMEOUT_SECONDS))).toBe(MAX_TIMEOUT_SECONDS * 1000);
    expect(MAX_TIMEOUT_SECONDS * 1000).toBeLessThanOrEqual(2 ** 31 - 1);
    for (const bad of ["0", "-1", "soon", "Infinity", "NaN", String(MAX_TIMEOUT_SECONDS + 1), "1e20"]) expect(timeoutMs(bad), bad).toBeUndefined();
  });
});
