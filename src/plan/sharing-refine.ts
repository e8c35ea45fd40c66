/**
 * After the cut (sharing.ts): single items moved to a neighbour's layer where that lowers the cost
 * Σ_L bytes(L) · W(T_L). The hierarchy can only cut along its own nodes; an item whose best company is in another
 * subtree stays apart from it, and this puts it there. Deterministic: items in canonical order, passes until
 * nothing moves (at most MAX_PASSES), each move to the candidate layer of largest gain, ties to the lower layer.
 */
import { forEachBit, type SharingGraph } from "./sharing-graph.ts";

const MAX_PASSES = 8;
/** A move must gain at least this share of the two layers' cost: float noise moves nothing. */
const MIN_GAIN = 1e-9;
/** Referrers looked at per item (the hierarchy's bound too): a core library's thousands are no candidates. */
const MAX_REFERRERS = 32;

export function refineLayers(g: SharingGraph, layerOf: Int32Array, o: { bytes: Float64Array; weight: Float64Array; layers: number; jacobi?: number }): Int32Array {
  const n = g.items.length;
  const L = o.layers;
  const out = Int32Array.from(layerOf);
  const trig = g.closure.map((c) => {
    const list: number[] = [];
    forEachBit(c, (p) => list.push(p));
    return Int32Array.from(list);
  });
  const referrers: number[][] = g.items.map(() => []);
  g.children.forEach((kids, i) => kids.forEach((k) => referrers[k]!.length < MAX_REFERRERS && referrers[k]!.push(i)));
  const count = new Int32Array(n * L);
  const S = new Float64Array(L);
  const W = new Float64Array(L);
  const members = new Int32Array(L);
  for (let x = 0; x < n; x++) {
    const l = out[x]!;
    S[l] = S[l]! + o.bytes[x]!;
    members[l]!++;
    for (const p of trig[x]!) if (count[p * L + l]!++ === 0) W[l] = W[l]! + o.weight[p]!;
  }
  const passes = o.jacobi ?? MAX_PASSES;
  for (let pass = 0; pass < passes; pass++) {
    let moved = 0;
    const planned: [number, number][] = [];
    for (let x = 0; x < n; x++) {
      const a = out[x]!;
      if (members[a]! <= 1) continue;
      const s = o.bytes[x]!;
      let lost = 0;
      for (const p of trig[x]!) if (count[p * L + a] === 1) lost += o.weight[p]!;
      const before = S[a]! * W[a]!;
      const afterA = (S[a]! - s) * (W[a]! - lost);
      let best = -1;
      let bestGain = 0;
      let bestAdded = 0;
      const seen = new Set<number>();
      for (const y of [...g.children[x]!, ...referrers[x]!]) {
        const b = out[y]!;
        if (b === a || seen.has(b)) continue;
        seen.add(b);
        let added = 0;
        for (const p of trig[x]!) if (count[p * L + b] === 0) added += o.weight[p]!;
        const gain = before + S[b]! * W[b]! - afterA - (S[b]! + s) * (W[b]! + added);
        if (gain > MIN_GAIN * (before + S[b]! * W[b]!) && (gain > bestGain || (gain === bestGain && b < best))) {
          best = b;
          bestGain = gain;
          bestAdded = added;
        }
      }
      if (best < 0) continue;
      if (o.jacobi !== undefined) {
        planned.push([x, best]);
        continue;
      }
      S[a] = S[a]! - s;
      W[a] = W[a]! - lost;
      members[a]!--;
      S[best] = S[best]! + s;
      W[best] = W[best]! + bestAdded;
      members[best]!++;
      for (const p of trig[x]!) {
        count[p * L + a]!--;
        count[p * L + best]!++;
      }
      out[x] = best;
      moved++;
    }
    for (const [x, b] of planned) {
      const a = out[x]!;
      if (members[a]! <= 1) continue;
      let lost = 0;
      let added = 0;
      for (const p of trig[x]!) {
        if (count[p * L + a] === 1) lost += o.weight[p]!;
        if (count[p * L + b] === 0) added += o.weight[p]!;
        count[p * L + a]!--;
        count[p * L + b]!++;
      }
      S[a] = S[a]! - o.bytes[x]!;
      W[a] = W[a]! - lost;
      members[a]!--;
      S[b] = S[b]! + o.bytes[x]!;
      W[b] = W[b]! + added;
      members[b]!++;
      out[x] = b;
      moved++;
    }
    if (moved === 0) break;
  }
  return out;
}
