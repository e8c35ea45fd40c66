/** The progress display counts layers by index: one reused and then rebuilt (its cached copy damaged) is one. */
import { describe, expect, it } from "vitest";
import { Progress } from "../../src/cli/progress.ts";
import type { Io } from "../../src/cli/context.ts";

const blob = { digest: `sha256:${"a".repeat(64)}`, size: 10, diffId: `sha256:${"b".repeat(64)}`, tarSize: 512 };

describe("Progress", () => {
  it("counts a layer done twice (reused, then rebuilt) once", () => {
    let err = "";
    const io: Io = { out: () => {}, err: (s) => void (err += s), cwd: "/", env: {}, isTTY: true, pipeOut: async () => {} };
    const p = new Progress(io, "tty");
    p.event({ type: "layer-done", index: 0, count: 2, blob, cached: true });
    p.event({ type: "layer-done", index: 0, count: 2, blob, cached: false });
    p.event({ type: "layer-done", index: 1, count: 2, blob, cached: true });
    // Another platform's layer 0 (another blob) counts too.
    p.event({ type: "layer-done", index: 0, count: 2, blob: { ...blob, digest: `sha256:${"c".repeat(64)}` }, cached: false });
    const shown = [...err.matchAll(/layers (\d+)\/(\d+)/g)].map((m) => `${m[1]}/${m[2]}`);
    expect(shown).toEqual(["1/2", "1/2", "2/2", "3/2"]);
  });
});
