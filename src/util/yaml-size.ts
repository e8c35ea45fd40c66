/**
 * A bound on what the YAML parser is handed. It holds about 1 KB per node, and a file of nothing but `[0,0,0,...`
 * has a node every 2 bytes: 8 MB of it took 4 GB and ended Node, far under any byte limit a config or plan has.
 * Lines and flow separators (`,` `[` `{`) count the nodes closely enough, in one pass, before any parsing.
 */
export function yamlNodeBound(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 44 || c === 91 || c === 123) n++;
  }
  return n;
}
