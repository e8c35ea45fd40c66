// The lower bounds of bench/sharing-bound.ts: exact on a case worked by hand, and never above what the best of
// every partition of small random closures reaches (found by enumerating them all).
import { describe, expect, it } from "vitest";
import { boundsFor, fewestAbove, geomeanBound, updateShares, worstBound } from "../../bench/sharing-bound.ts";
import { staticStats } from "../../bench/sharing-anneal.ts";
import { prng, storePath } from "../../bench/closures.ts";
import type { Closure, StoreItem } from "../../src/store/types.ts";

const closureOf = (items: StoreItem[], root: string): Closure => ({
  store: { dir: "/gnu/store", root: "/" },
  roots: [root],
  items: items.sort((a, b) => (a.path < b.path ? -1 : 1)),
});

/** A profile of size 1 over four leaves of size 1. */
const leaves = closureOf(
  [
    ...["a", "b", "c", "d"].map((n) => ({ path: storePath(n), narSize: 1, references: [] })),
    { path: storePath("profile"), narSize: 1, references: ["a", "b", "c", "d"].map((n) => storePath(n)) },
  ],
  storePath("profile"),
);

/** A random closure: items reference earlier ones, a profile refers to every item nobody refers to. */
function randomClosure(seed: number, n: number): Closure {
  const r = prng(seed);
  const names = Array.from({ length: n }, (_, i) => storePath(`item${i}`));
  const items: StoreItem[] = names.map((path, i) => ({
    path,
    narSize: 1 + Math.floor(r() ** 3 * 1000),
    references: names.slice(0, i).filter(() => r() < 0.3).sort(),
  }));
  const used = new Set(items.flatMap((it) => it.references));
  const profile = storePath("profile");
  items.push({ path: profile, narSize: 1 + Math.floor(r() * 50), references: names.filter((p) => !used.has(p)).sort() });
  return closureOf(items, profile);
}

/** Every assignment of n items to at most k layers (restricted growth strings: each partition once). */
function* partitions(n: number, k: number): Generator<number[]> {
  const a = new Array<number>(n).fill(0);
  function* rec(i: number, used: number): Generator<number[]> {
    if (i === n) return yield a.slice();
    for (let l = 0; l <= Math.min(used, k - 1); l++) {
      a[i] = l;
      yield* rec(i + 1, Math.max(used, l + 1));
    }
  }
  yield* rec(0, 0);
}

describe("lower bounds on any grouping", () => {
  it("follow the relaxation by hand: four leaves in two layers, each at least 1.5×", () => {
    const shares = updateShares(leaves);
    expect(shares).toEqual(Array(4).fill({ size: 1, changed: 2, root: 1 }));
    // Each leaf's layer holds 4/2 = 2 non-root bytes on average, re-pulled with the profile: (2 + 1) / 2.
    expect(geomeanBound(shares, 2, 4)).toBeCloseTo(1.5, 9);
    expect(worstBound(shares, 2)).toBeCloseTo(1.5, 9);
    // Below 1.5× the four cannot all fit: one at least is left out.
    expect(fewestAbove(shares, 2, 1.4)).toBe(1);
    expect(fewestAbove(shares, 2, 1.5)).toBe(0);
    expect(boundsFor(leaves, 2)).toMatchObject({ layersForWorst2: 2, above2: 0 });
    // The best partition is worse (the profile's layer is re-pulled on every update): {profile, a, b}, {c, d}.
    const best = Math.min(...[...partitions(5, 2)].map((layerOf) => staticStats(leaves, layerOf).geomean));
    expect(best).toBeCloseTo(Math.sqrt(1.5 * 2.5), 9);
  });

  it("never exceed the best of every partition of small random closures", () => {
    let tight = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const c = randomClosure(seed, 6);
      for (const k of [2, 3]) {
        const b = boundsFor(c, k);
        let geomean = Infinity;
        let worst = Infinity;
        let above2 = Infinity;
        for (const layerOf of partitions(c.items.length, k)) {
          const s = staticStats(c, layerOf);
          geomean = Math.min(geomean, s.geomean);
          worst = Math.min(worst, s.worst);
          above2 = Math.min(above2, s.above2);
        }
        expect(b.geomean).toBeLessThanOrEqual(geomean * (1 + 1e-9));
        expect(b.worst).toBeLessThanOrEqual(worst * (1 + 1e-9));
        expect(b.above2).toBeLessThanOrEqual(above2);
        if (b.geomean > 1 + 1e-6) tight++;
      }
    }
    // The bounds must say something on most of these, or the comparison proves nothing.
    expect(tight).toBeGreaterThan(12);
  });
});
