/**
 * Files a user names (plan files, references graphs, auth files, diff's arguments) are read only when they are
 * regular files of bounded size: a FIFO or /dev/zero is refused at once instead of hanging or filling memory,
 * and a YAML alias bomb in a plan file is a PlanError, not an internal error.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readUserFile } from "../../src/util/read-file.ts";
import { parsePlanFile, readPlanFile } from "../../src/plan/plan-file.ts";
import { readPlanOrImage } from "../../src/plan/plan-or-image.ts";
import { readReferencesGraph } from "../../src/store/graph.ts";
import { PlanError } from "../../src/errors.ts";

let dir: string;
let fifo: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "layerpack-read-file-"));
  fifo = path.join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("readUserFile", () => {
  it("reads a regular file, also through a symlink", () => {
    fs.writeFileSync(path.join(dir, "a.txt"), "hello\n");
    fs.symlinkSync("a.txt", path.join(dir, "link"));
    expect(readUserFile(path.join(dir, "link"), 100)).toBe("hello\n");
  });

  it("refuses a FIFO, a device, a directory and a file over the limit, saying which", () => {
    expect(() => readUserFile(fifo, 100)).toThrow("it is a FIFO, not a regular file");
    expect(() => readUserFile("/dev/zero", 100)).toThrow("it is a device, not a regular file");
    expect(() => readUserFile(dir, 100)).toThrow("it is a directory, not a regular file");
    fs.writeFileSync(path.join(dir, "big"), Buffer.alloc(3 << 20));
    expect(() => readUserFile(path.join(dir, "big"), 1 << 20)).toThrow("it is 3 MiB, over the 1 MiB limit");
  });

  it("passes on Node's errors, so callers can say 'no such file'", () => {
    expect(() => readUserFile(path.join(dir, "missing"), 100)).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });
});

describe("callers", () => {
  it("a plan file, a references graph and diff's arguments that are FIFOs or /dev/zero are refused", () => {
    expect(() => readPlanFile(fifo)).toThrow(new PlanError(`cannot read plan file ${fifo}: it is a FIFO, not a regular file`));
    expect(() => readPlanFile("/dev/zero")).toThrow(new PlanError("cannot read plan file /dev/zero: it is a device, not a regular file"));
    expect(() => readReferencesGraph(fifo)).toThrow(`reading references graph ${fifo}: it is a FIFO, not a regular file`);
    expect(() => readPlanOrImage(fifo, { cwd: dir })).toThrow(`cannot read ${fifo}: it is a FIFO, not a regular file; give a plan file or an image`);
    expect(() => readPlanOrImage("/dev/zero", { cwd: dir })).toThrow("cannot read /dev/zero: it is a device, not a regular file");
  });

  it("a YAML alias bomb in a plan file is a PlanError naming the file", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (const [prev, name] of [["a", "b"], ["b", "c"], ["c", "d"], ["d", "e"], ["e", "f"]]) levels.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]`);
    expect(() => parsePlanFile(`${levels.join("\n")}\n`, { file: "bomb.yaml" })).toThrow(/^bomb\.yaml: not a layer plan: Excessive alias count/);
    try {
      parsePlanFile(`${levels.join("\n")}\n`, { file: "bomb.yaml" });
    } catch (err) {
      expect(err).toBeInstanceOf(PlanError);
    }
  });
});
