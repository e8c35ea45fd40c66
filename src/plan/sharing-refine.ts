/**
 * Two steps around the greedy merging of the `sharing` strategy (sharing.ts), both lowering the same objective.
 *
 * - attachToLarge, before merging: small items that only a large item uses join the large item's layer. An update
 *   of one of them changes the large item too, so that layer is re-pulled then anyway; only an update of the large
 *   item (or of its other dependencies) re-pulls them in vain, which costs little when they are small. This takes
 *   many libraries out of the merging, leaving its budget to items that change on their own.
 * - refine, after merging: moves single items between the merged groups while that lowers the objective; the greedy
 *   cannot undo an early merge that later ones made a poor fit.
 *
 * Both keep the large items' layers as they are apart from what attaches to them, and decide in canonical order
 * with ties to the lowest slot, so the result depends on the closure only.
 */
import { weightOf, wordWeight, type State } from "./sharing-state.ts";

/** An item joins a large item's layer only when it is at most this share of the large item's bytes. */
const ATTACH_SHARE = 0.25;
/** Passes of refine at most; nearly all of the gain comes in the first. */
const REFINE_PASSES = 4;

/**
 * Attaches to a `fixed` slot (a large item that is not a root: roots change with every update) the free items that
 * only it uses, directly or through each other, when each is at most ATTACH_SHARE of its bytes. The large item
 * depends on them, so an update of one changes it too and its layer is re-pulled then anyway. The trigger set of
 * the layer stays the large item's closure. Returns how many items were attached.
 */
export function attachToLarge(s: State, fixed: Uint8Array): number {
  const { g } = s;
  const n = s.alive.length;
  const parents: number[][] = g.items.map(() => []);
  g.children.forEach((cs, p) => {
    for (const c of cs) parents[c]!.push(p);
  });
  // home[x]: the fixed slot whose layer x is in. Canonical order puts an item after everything depending on it
  // (fewer dependents), so walking it backwards settles every user of x before x.
  const home = new Int32Array(n).fill(-1);
  for (let a = 0; a < n; a++) if (fixed[a] && g.referenced[a]) home[a] = a;
  let attached = 0;
  for (let x = n - 1; x >= 0; x--) {
    if (fixed[x]) continue;
    const users = parents[x]!;
    const h = users.length > 0 ? home[users[0]!]! : -1;
    if (h < 0 || users.some((p) => home[p] !== h) || g.items[x]!.narSize > ATTACH_SHARE * g.items[h]!.narSize) continue;
    s.members[h]!.push(x);
    s.bytes[h]! += s.itemBytes[x]!;
    s.alive[x] = 0;
    home[x] = h;
    attached++;
  }
  return attached;
}

/** Moves each item, in canonical order, to the free group where it lowers the objective most; repeats until none moves. */
export function refine(s: State, fixed: Uint8Array): void {
  const { g } = s;
  const n = s.alive.length;
  const words = g.words;
  const groups: number[] = [];
  for (let a = 0; a < n; a++) if (s.alive[a] && !fixed[a]) groups.push(a);
  const groupOf = new Int32Array(n).fill(-1);
  for (const a of groups) for (const m of s.members[a]!) groupOf[m] = a;
  const w = new Float64Array(n);
  for (const a of groups) w[a] = weightOf(s, s.trig[a]!);
  // The words where an item's closure has bits: most are empty (canonical order packs the shared libraries into
  // the first words), and only those can add to a group's trigger set.
  const busy = g.closure.map((c) => Int32Array.from(c.keys()).filter((k) => c[k] !== 0));
  let without: Uint32Array = new Uint32Array(words);
  for (let pass = 0; pass < REFINE_PASSES; pass++) {
    let moved = 0;
    for (let x = 0; x < n; x++) {
      const a = groupOf[x]!;
      if (a < 0 || s.members[a]!.length === 1) continue;
      const bx = s.itemBytes[x]!;
      without.fill(0);
      for (const m of s.members[a]!) {
        if (m === x) continue;
        const c = g.closure[m]!;
        for (let k = 0; k < words; k++) without[k]! |= c[k]!;
      }
      const wWithout = weightOf(s, without);
      const saved = s.bytes[a]! * w[a]! - (s.bytes[a]! - bx) * wWithout;
      const cx = g.closure[x]!;
      const cxWords = busy[x]!;
      let best = -1;
      // A move must gain more than rounding noise, or two equal groups could trade an item forever.
      let bestDelta = -1e-12 * (saved + 1);
      for (const b of groups) {
        if (b === a) continue;
        const tb = s.trig[b]!;
        let gained = 0;
        for (const k of cxWords) gained += wordWeight(s.table, k, cx[k]! & ~tb[k]!);
        const added = (s.bytes[b]! + bx) * (w[b]! + gained) - s.bytes[b]! * w[b]!;
        if (added - saved < bestDelta) {
          bestDelta = added - saved;
          best = b;
        }
      }
      if (best < 0) continue;
      // The group takes the scratch set; its old set becomes the next scratch.
      [s.trig[a], without] = [without, s.trig[a]!];
      w[a] = wWithout;
      s.bytes[a]! -= bx;
      s.members[a] = s.members[a]!.filter((m) => m !== x);
      const tb = s.trig[best]!;
      for (let k = 0; k < words; k++) tb[k]! |= cx[k]!;
      w[best] = weightOf(s, tb);
      s.bytes[best]! += bx;
      s.members[best]!.push(x);
      groupOf[x] = best;
      moved++;
    }
    if (moved === 0) return;
  }
}
