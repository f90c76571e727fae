import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoadBoard } from '../../../src/engine/machine-heap.js';

/** Ranks in (load, rank) order, the order the scheduler wants. */
function byLoad(loads: Float64Array, ranks: number[]): number[] {
  return [...ranks].sort((a, b) => (loads[a] as number) - (loads[b] as number) || a - b);
}

describe('LoadBoard', () => {
  it('keeps every heap in (load, id) order through load changes, and find walks that order', () => {
    const op = fc.record({ rank: fc.nat(), delta: fc.constantFrom(1, 1, 2, -1) });
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 30 }),
        fc.array(op, { maxLength: 60 }),
        fc.array(fc.boolean(), { maxLength: 30 }),
        (start, ops, inSubset) => {
          const board = new LoadBoard(Float64Array.from(start));
          const members = start.flatMap((_, r) => (inSubset[r] === true ? [r] : []));
          const subset = board.subset(members, members);
          for (const { rank, delta } of ops) {
            const r = rank % start.length;
            if ((board.loads[r] as number) + delta < 0) continue;
            board.adjust(r, delta);
          }
          const all = start.map((_, r) => r);
          const walk = (accept: (r: number) => boolean, h = board.all): number[] => {
            const seen: number[] = [];
            h.find((r) => {
              seen.push(r);
              return accept(r);
            });
            return seen;
          };
          expect(board.all.first()).toBe(byLoad(board.loads, all)[0]);
          expect(walk(() => false)).toEqual(byLoad(board.loads, all));
          expect(walk(() => false, subset)).toEqual(byLoad(board.loads, members));
          const odd = byLoad(board.loads, all).find((r) => r % 2 === 1) ?? -1;
          expect(board.all.find((r) => r % 2 === 1)).toBe(odd);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('stops making subset heaps past its limit', () => {
    const board = new LoadBoard(new Float64Array(4), 1);
    expect(board.subset({}, [0, 1])).toBeDefined();
    expect(board.subset({}, [2, 3])).toBeUndefined();
  });
});
