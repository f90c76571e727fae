/**
 * Machines ordered by (load, id): the least-loaded machine in O(1), a load
 * change in O(log M), and a walk in that order that costs only as much as
 * the machines it visits.
 *
 * Machines are numbered by rank (their position in id order), so the order
 * is one number per machine, `load * machineCount + rank`, and ties by id
 * come for free.
 *
 * Besides the heap of every machine, a `LoadBoard` keeps a heap per set of
 * machines that some requirement (MachineMetadata, say) allows, so placing a
 * `role=db` unit looks at db machines only instead of walking past every
 * less-loaded web machine first.
 */
export class LoadBoard {
  readonly loads: Float64Array;
  /** Every machine. */
  readonly all: MachineHeap;
  private readonly subsets = new Map<object, MachineHeap>();
  /** For each machine, the subset heaps it belongs to. */
  private readonly memberOf: MachineHeap[][];

  /** `loads[rank]` is each machine's starting load; machines are ranks 0..n-1. */
  constructor(loads: Float64Array, private readonly maxSubsets = 64) {
    this.loads = loads;
    this.all = new MachineHeap(loads, Array.from({ length: loads.length }, (_, r) => r));
    this.memberOf = Array.from({ length: loads.length }, () => []);
  }

  /** Adds `delta` (±) to a machine's load. */
  adjust(rank: number, delta: number): void {
    this.loads[rank] = (this.loads[rank] as number) + delta;
    this.all.moved(rank, delta);
    for (const h of this.memberOf[rank] as MachineHeap[]) h.moved(rank, delta);
  }

  /**
   * The heap over `members` (ascending ranks), made on first use and kept up
   * to date from then on; `owner` identifies the set. Undefined once too many
   * subsets exist (the caller then filters a walk of `all`).
   */
  subset(owner: object, members: readonly number[]): MachineHeap | undefined {
    let h = this.subsets.get(owner);
    if (h === undefined) {
      if (this.subsets.size >= this.maxSubsets) return undefined;
      h = new MachineHeap(this.loads, members);
      this.subsets.set(owner, h);
      for (const r of members) this.memberOf[r]?.push(h);
    }
    return h;
  }
}

export class MachineHeap {
  private readonly loads: Float64Array;
  private readonly scale: number;
  /** heap[p] = machine rank at heap position p. */
  private readonly heap: Int32Array;
  /** pos[rank] = heap position of that machine (only for members). */
  private readonly pos: Int32Array;
  private readonly count: number;
  /** Reused by `find`: heap positions still to visit, as a min-heap by key. */
  private readonly frontier: Int32Array;

  constructor(loads: Float64Array, members: readonly number[]) {
    this.loads = loads;
    this.scale = loads.length;
    this.count = members.length;
    this.heap = Int32Array.from(members);
    this.heap.sort((a, b) => this.key(a) - this.key(b));
    this.pos = new Int32Array(loads.length).fill(-1);
    this.heap.forEach((rank, p) => (this.pos[rank] = p));
    this.frontier = new Int32Array(this.count);
  }

  get size(): number {
    return this.count;
  }

  /** The least-loaded member (lowest rank among equals), or -1 when empty. */
  first(): number {
    return this.count === 0 ? -1 : (this.heap[0] as number);
  }

  /**
   * The first member in (load, rank) order for which `accept` holds, or -1:
   * a best-first walk of the heap, O(k log k) for k machines looked at.
   * `accept` must not change loads.
   */
  find(accept: (rank: number) => boolean): number {
    if (this.count === 0) return -1;
    const top = this.heap[0] as number;
    if (accept(top)) return top;
    const f = this.frontier;
    let size = 0;
    const push = (p: number): void => {
      const k = this.key(this.heap[p] as number);
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const fp = f[parent] as number;
        if (this.key(this.heap[fp] as number) <= k) break;
        f[i] = fp;
        i = parent;
      }
      f[i] = p;
    };
    const pop = (): number => {
      const best = f[0] as number;
      const last = f[--size] as number;
      const k = this.key(this.heap[last] as number);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        let c = l;
        if (l + 1 < size && this.key(this.heap[f[l + 1] as number] as number) < this.key(this.heap[f[l] as number] as number)) {
          c = l + 1;
        }
        const fc = f[c] as number;
        if (this.key(this.heap[fc] as number) >= k) break;
        f[i] = fc;
        i = c;
      }
      f[i] = last;
      return best;
    };
    if (1 < this.count) push(1);
    if (2 < this.count) push(2);
    while (size > 0) {
      const p = pop();
      const rank = this.heap[p] as number;
      if (accept(rank)) return rank;
      const l = 2 * p + 1;
      if (l < this.count) push(l);
      if (l + 1 < this.count) push(l + 1);
    }
    return -1;
  }

  /** Restores order after the load of `rank` changed by `delta`. */
  moved(rank: number, delta: number): void {
    const p = this.pos[rank] as number;
    if (p < 0) return;
    if (delta < 0) this.up(p);
    else if (delta > 0) this.down(p);
  }

  private key(rank: number): number {
    return (this.loads[rank] as number) * this.scale + rank;
  }

  private up(p: number): void {
    const rank = this.heap[p] as number;
    const k = this.key(rank);
    while (p > 0) {
      const parent = (p - 1) >> 1;
      const pr = this.heap[parent] as number;
      if (this.key(pr) <= k) break;
      this.heap[p] = pr;
      this.pos[pr] = p;
      p = parent;
    }
    this.heap[p] = rank;
    this.pos[rank] = p;
  }

  private down(p: number): void {
    const rank = this.heap[p] as number;
    const k = this.key(rank);
    for (;;) {
      const l = 2 * p + 1;
      if (l >= this.count) break;
      let c = l;
      let ck = this.key(this.heap[l] as number);
      if (l + 1 < this.count) {
        const rk = this.key(this.heap[l + 1] as number);
        if (rk < ck) {
          c = l + 1;
          ck = rk;
        }
      }
      if (ck >= k) break;
      const cr = this.heap[c] as number;
      this.heap[p] = cr;
      this.pos[cr] = p;
      p = c;
    }
    this.heap[p] = rank;
    this.pos[rank] = p;
  }
}

/** A tiny binary min-heap over plain numbers (used for orders of work). */
export function pushMin(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pv = h[parent] as number;
    if (pv <= v) break;
    h[i] = pv;
    i = parent;
  }
  h[i] = v;
}

export function popMin(h: number[]): number {
  const top = h[0] as number;
  const last = h.pop() as number;
  if (h.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    let c = l;
    if (l + 1 < h.length && (h[l + 1] as number) < (h[l] as number)) c = l + 1;
    const cv = h[c] as number;
    if (cv >= last) break;
    h[i] = cv;
    i = c;
  }
  h[i] = last;
  return top;
}
