/**
 * The weighted set sizes every cost of the `sharing` strategy is made of.
 *
 * Objective (see sharing.ts): the sum over every single-item update P of re-pulled bytes / changed bytes, which is
 *   Σ over layers L of bytes(L) · W(T_L),   W(T) = Σ_{P ∈ T} 1/changed(P),
 * T_L being the updates that change an item of L (the union of its items' closures), as a bitset.
 */

/** Per-byte sums of the update weights (table[c * 256 + v]: the weight of the updates set in byte c when it holds v), so a weighted set size costs four lookups per 32 items. */
export function weightTable(weight: Float64Array, words: number): Float64Array {
  const table = new Float64Array(words * 4 * 256);
  for (let c = 0; c < words * 4; c++) {
    for (let v = 1; v < 256; v++) {
      const low = 31 - Math.clz32(v & -v);
      table[c * 256 + v] = table[c * 256 + (v & (v - 1))]! + (weight[c * 8 + low] ?? 0);
    }
  }
  return table;
}

/** W of the 32 updates of word k that are set in d. */
export function wordWeight(t: Float64Array, k: number, d: number): number {
  if (d === 0) return 0;
  const base = k << 10;
  return t[base + (d & 255)]! + t[base + 256 + ((d >>> 8) & 255)]! + t[base + 512 + ((d >>> 16) & 255)]! + t[base + 768 + (d >>> 24)]!;
}

/** W(a ∖ b), or W(a) without b. */
export function weightOf(table: Float64Array, a: Uint32Array, b?: Uint32Array): number {
  let w = 0;
  for (let k = 0; k < a.length; k++) w += wordWeight(table, k, b === undefined ? a[k]! : a[k]! & ~b[k]!);
  return w;
}
