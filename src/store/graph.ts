/**
 * Readers for closure files made by the build tools: a references graph (Guix `#:references-graphs`, Nix
 * `exportReferencesGraph`) and a Nix `closureInfo` directory. Both are line records; malformed input is a StoreError
 * naming the file and the 1-based line.
 */
import * as fs from "node:fs";
import { readUserFile } from "../util/read-file.ts";
import { fileKind } from "../util/format.ts";
import * as path from "node:path";
import { StoreError } from "../errors.ts";
import { storePathPattern } from "../config/schema.ts";
import type { SourceItem } from "./database.ts";
import { byBytes, normaliseNarHash } from "./path.ts";

/** Line cursor with positions for error messages. */
class Lines {
  private readonly lines: string[];
  private index = 0;
  readonly file: string;

  constructor(text: string, file: string) {
    this.lines = text.split("\n");
    // A final newline ends the last line rather than starting an empty one.
    if (this.lines.at(-1) === "") this.lines.pop();
    this.file = file;
  }

  /** 1-based number of the next line. */
  get line(): number {
    return this.index + 1;
  }

  /** True when only blank lines remain (looked at in place: a copy of the rest at every record was quadratic). */
  atEnd(): boolean {
    let i = this.index;
    while (i < this.lines.length && this.lines[i]!.trim() === "") i++;
    return i === this.lines.length;
  }

  fail(message: string, line = this.index): never {
    throw new StoreError(`${this.file}:${line}: ${message}`);
  }

  next(what: string): string {
    if (this.index >= this.lines.length) this.fail(`unexpected end of file, expected ${what}`, this.lines.length);
    return this.lines[this.index++]!;
  }

  storePath(what: string): string {
    const l = this.next(what);
    if (!storePathPattern.test(l)) this.fail(`expected ${what} (a store path), got ${JSON.stringify(l)}`);
    return l;
  }

  count(what: string): number {
    const l = this.next(what);
    if (!/^\d+$/.test(l)) this.fail(`expected ${what} (a non-negative integer), got ${JSON.stringify(l)}`);
    const n = Number(l);
    if (!Number.isSafeInteger(n)) this.fail(`${what} ${l} is too large`);
    return n;
  }

  deriver(): void {
    const l = this.next("the deriver (a store path or an empty line)");
    if (l !== "" && !storePathPattern.test(l)) this.fail(`expected the deriver (a store path or an empty line), got ${JSON.stringify(l)}`);
  }
}

function refs(lines: Lines, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(lines.storePath(`reference ${i + 1} of ${n}`));
  return [...new Set(out)].sort(byBytes);
}

/** Where a record starts, for the error about it. */
interface RecordStart {
  lines: Lines;
  /** The line its store path is on. */
  line: number;
}

function add(map: Map<string, SourceItem>, item: SourceItem, { lines, line }: RecordStart): void {
  if (map.has(item.path)) lines.fail(`${item.path} has a second record`, line);
  map.set(item.path, item);
}

/** Parses a references graph: records `PATH\nDERIVER-or-empty\nN\nREF1\n...REFN\n`. No sizes or hashes. */
export function parseReferencesGraph(text: string, file: string): Map<string, SourceItem> {
  const lines = new Lines(text, file);
  const items = new Map<string, SourceItem>();
  while (!lines.atEnd()) {
    const line = lines.line;
    const p = lines.storePath("a record's store path");
    lines.deriver();
    const n = lines.count("the number of references");
    add(items, { path: p, references: refs(lines, n) }, { lines, line });
  }
  return items;
}

/** Parses a closureInfo `registration`: records `PATH\nNARHASH\nNARSIZE\nDERIVER-or-empty\nN\nREFS...`. */
export function parseRegistration(text: string, file: string): Map<string, SourceItem> {
  const lines = new Lines(text, file);
  const items = new Map<string, SourceItem>();
  while (!lines.atEnd()) {
    const line = lines.line;
    const p = lines.storePath("a record's store path");
    const rawHash = lines.next("the NAR hash");
    const narHash = normaliseNarHash(rawHash);
    if (narHash === undefined) lines.fail(`expected a sha256 NAR hash (nix32, hex or SRI), got ${JSON.stringify(rawHash)}`);
    const narSize = lines.count("the NAR size");
    lines.deriver();
    const n = lines.count("the number of references");
    add(items, { path: p, narHash, narSize, references: refs(lines, n) }, { lines, line });
  }
  return items;
}

function readText(file: string, what: string): string {
  try {
    // Far above the graph of any closure (4000 items: a few MB); a FIFO or /dev/zero is refused.
    return readUserFile(file, 256 << 20);
  } catch (cause) {
    throw new StoreError(`reading ${what} ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads a references graph file (Guix `#:references-graphs`, Nix `exportReferencesGraph`). */
export function readReferencesGraph(file: string): Map<string, SourceItem> {
  const text = readText(file, "references graph");
  // `guix graph` and `nix-store --query --graph` print Graphviz: the first thing a user tries, said so.
  if (/^\s*(strict\s+)?(di)?graph\b/.test(text)) {
    throw new StoreError(
      `${file}:1: this is a Graphviz graph (guix graph, nix-store --query --graph); closure.from: guix-graph reads a references graph as Guix's #:references-graphs and Nix's exportReferencesGraph write it: per item, its store path, its deriver (or an empty line), the number of references and one line per reference`,
    );
  }
  return parseReferencesGraph(text, file);
}

/** Reads a Nix closureInfo directory; every path of `store-paths` must have a `registration` record. */
export function readClosureInfo(dir: string): Map<string, SourceItem> {
  // A file here (the registration itself, say) gave ENOTDIR on dir/registration, which said nothing useful.
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) {
    throw new StoreError(`closure.file ${dir} is ${st.isFile() ? "a file" : fileKind(st)}; nix-closure-info reads a closureInfo directory (holding registration and store-paths), e.g. the output of pkgs.closureInfo`);
  }
  const regFile = path.join(dir, "registration");
  const listFile = path.join(dir, "store-paths");
  const items = parseRegistration(readText(regFile, "closureInfo registration"), regFile);
  const list = readText(listFile, "closureInfo store path list").split("\n");
  list.forEach((p, i) => {
    if (p === "") return;
    if (!storePathPattern.test(p)) throw new StoreError(`${listFile}:${i + 1}: expected a store path, got ${JSON.stringify(p)}`);
    if (!items.has(p)) throw new StoreError(`${listFile}:${i + 1}: ${p} has no record in ${regFile}`);
  });
  return items;
}

/**
 * The closure of `roots` within a set of records: each root must have a record, and so must everything it
 * refers to (a graph file that lists a reference without its record is incomplete).
 */
export function closureOf(records: Map<string, SourceItem>, roots: string[], file: string): SourceItem[] {
  const out = new Map<string, SourceItem>();
  const queue = [...new Set(roots)];
  const referrer = new Map<string, string>();
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i]!;
    if (out.has(p)) continue;
    const rec = records.get(p);
    if (rec === undefined) {
      const by = referrer.get(p);
      throw new StoreError(
        by === undefined
          ? `${file} has no record for ${p}; was it made for this profile or these roots?`
          : `${file}: ${by} refers to ${p}, which has no record in the file`,
      );
    }
    out.set(p, rec);
    for (const r of rec.references) {
      if (!referrer.has(r)) referrer.set(r, p);
      if (!out.has(r)) queue.push(r);
    }
  }
  return [...out.values()].sort((a, b) => byBytes(a.path, b.path));
}
