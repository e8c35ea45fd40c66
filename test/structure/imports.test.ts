/**
 * Dependencies point one way (ARCHITECTURE.md): no import cycle between the folders of src/, type-only imports
 * included. Top-level files count as their own nodes (errors.ts is below everything, index.ts and cli.ts above).
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";

const SRC = path.resolve(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The folder under src/ a file belongs to, or the file itself at the top. */
const nodeOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;

/** node -> node -> the first import seen that makes the edge (for the message). */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, "utf8");
    // Static imports and re-exports (type-only too) and dynamic import() of relative paths.
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)) {
      const target = path.resolve(path.dirname(file), (m[1] ?? m[2])!);
      const [a, b] = [nodeOf(file), nodeOf(target)];
      if (a === b) continue;
      if (!graph.has(a)) graph.set(a, new Map());
      if (!graph.get(a)!.has(b)) graph.get(a)!.set(b, `${path.relative(SRC, file)} imports ${path.relative(SRC, target)}`);
    }
  }
  return graph;
}

/** Every cycle, as the path of imports that closes it (one per strongly connected group). */
function cycles(graph: Map<string, Map<string, string>>): string[] {
  const out: string[] = [];
  const done = new Set<string>();
  const visit = (node: string, trail: string[]): void => {
    if (trail.includes(node)) {
      const loop = [...trail.slice(trail.indexOf(node)), node];
      out.push(loop.slice(1).map((n, i) => graph.get(loop[i]!)!.get(n)!).join(", "));
      return;
    }
    if (done.has(node)) return;
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) visit(next, [...trail, node]);
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) visit(node, []);
  return out;
}

describe("the import graph of src/", () => {
  it("has no cycle between folders", () => {
    expect(cycles(folderGraph())).toEqual([]);
  });

  it("finds a cycle when there is one (the check itself works)", () => {
    const g = new Map([
      ["a", new Map([["b", "a/x.ts imports b/y.ts"]])],
      ["b", new Map([["a", "b/y.ts imports a/z.ts"]])],
    ]);
    expect(cycles(g)).toEqual(["a/x.ts imports b/y.ts, b/y.ts imports a/z.ts"]);
  });
});
