/**
 * A binary min-heap of candidate merges (cost, lo, hi) for the sharing strategy, in flat typed arrays (hundreds of
 * thousands of entries). Order: cost, then lo, then hi, so equal costs never depend on insertion order.
 * Entries carry the groups' versions at push time; the caller drops entries whose groups changed since.
 */
export class PairHeap {
  private cost = new Float64Array(1024);
  private pair = new Int32Array(4 * 1024); // lo, hi, loVersion, hiVersion
  size = 0;

  private less(i: number, j: number): boolean {
    const a = this.cost[i]!;
    const b = this.cost[j]!;
    if (a !== b) return a < b;
    const p = this.pair;
    return p[4 * i]! !== p[4 * j]! ? p[4 * i]! < p[4 * j]! : p[4 * i + 1]! < p[4 * j + 1]!;
  }

  private swap(i: number, j: number): void {
    const c = this.cost[i]!;
    this.cost[i] = this.cost[j]!;
    this.cost[j] = c;
    const p = this.pair;
    for (let k = 0; k < 4; k++) {
      const t = p[4 * i + k]!;
      p[4 * i + k] = p[4 * j + k]!;
      p[4 * j + k] = t;
    }
  }

  push(cost: number, lo: number, hi: number, loVersion: number, hiVersion: number): void {
    if (this.size === this.cost.length) {
      const cost2 = new Float64Array(this.cost.length * 2);
      cost2.set(this.cost);
      this.cost = cost2;
      const pair2 = new Int32Array(this.pair.length * 2);
      pair2.set(this.pair);
      this.pair = pair2;
    }
    let i = this.size++;
    this.cost[i] = cost;
    this.pair.set([lo, hi, loVersion, hiVersion], 4 * i);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** The smallest entry as [cost, lo, hi, loVersion, hiVersion], removed; undefined when empty. */
  pop(): [number, number, number, number, number] | undefined {
    if (this.size === 0) return undefined;
    const p = this.pair;
    const top: [number, number, number, number, number] = [this.cost[0]!, p[0]!, p[1]!, p[2]!, p[3]!];
    this.size--;
    if (this.size > 0) {
      this.swap(0, this.size);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.size && this.less(l, m)) m = l;
        if (r < this.size && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}
