import { describe, expect, it } from 'vitest';
import { FENCE_MARGIN_MS, FenceClock, fenceHolds, trackGone } from '../../../src/engine/fence.js';

// The engine's half of self-fencing (issue 15.5): a vanished machine's
// fenced units are held (not placed elsewhere) until fence + margin after
// the engine saw the machine gone.
const M = FENCE_MARGIN_MS;

describe('trackGone', () => {
  it('keeps the first time each decided machine was seen gone, and forgets it when it is back or undecided', () => {
    let gone = trackGone(new Map(), ['a', 'b', 'b'], new Set(['a']), 1_000);
    expect([...gone]).toEqual([['b', 1_000]]);
    gone = trackGone(gone, ['a', 'b'], new Set(), 5_000);
    expect([...gone]).toEqual([
      ['a', 5_000],
      ['b', 1_000],
    ]);
    gone = trackGone(gone, ['a', 'b'], new Set(['b']), 6_000);
    expect([...gone]).toEqual([['a', 5_000]]);
    expect([...trackGone(gone, ['b'], new Set(), 7_000)]).toEqual([['b', 7_000]]);
  });
});

describe('fenceHolds', () => {
  const decisions = [
    { unit: 'f.service', machine: 'gone', fenceAfter: 10 },
    { unit: 'g.service', machine: 'gone', fenceAfter: 30 },
    { unit: 'plain.service', machine: 'gone' },
    { unit: 'zero.service', machine: 'gone', fenceAfter: 0 },
    { unit: 'live.service', machine: 'up', fenceAfter: 10 },
  ];
  const goneSince = new Map([['gone', 1_000]]);

  it('holds each fenced unit of a gone machine until its fence plus the margin, and names the first end', () => {
    const h = fenceHolds(decisions, goneSince, 1_000);
    expect([...h.held]).toEqual([
      ['f.service', 1_000 + 10_000 + M],
      ['g.service', 1_000 + 30_000 + M],
    ]);
    expect(h.nextAt).toBe(1_000 + 10_000 + M);
  });

  it('releases a unit exactly when its hold ends, not a moment before', () => {
    expect([...fenceHolds(decisions, goneSince, 1_000 + 10_000 + M - 1).held.keys()]).toEqual(['f.service', 'g.service']);
    const h = fenceHolds(decisions, goneSince, 1_000 + 10_000 + M);
    expect([...h.held.keys()]).toEqual(['g.service']);
    expect(h.nextAt).toBe(1_000 + 30_000 + M);
    expect(fenceHolds(decisions, goneSince, 1_000 + 30_000 + M)).toEqual({ held: new Map(), nextAt: undefined });
  });

  it('holds nothing on live machines nor units without a fence', () => {
    const h = fenceHolds(decisions, new Map(), 0);
    expect(h.held.size).toBe(0);
    expect(h.nextAt).toBeUndefined();
  });
});

describe('FenceClock', () => {
  it('a new leader times from when it took over, so it never shortens a wait begun under the old one', () => {
    const decisions = [{ unit: 'f.service', machine: 'gone', fenceAfter: 10 }];
    const old = new FenceClock();
    old.update(decisions, new Set(), 0);
    // The old leader would release at 10 s + margin; the new one, taking over at 8 s, holds until 18 s + margin.
    const fresh = new FenceClock();
    const h = fresh.update(decisions, new Set(), 8_000);
    expect(h.held.get('f.service')).toBe(18_000 + M);
    expect(h.newHolds).toEqual([{ machine: 'gone', units: 1, until: 18_000 + M }]);
    // Reported once per machine going away.
    expect(fresh.update(decisions, new Set(), 9_000).newHolds).toEqual([]);
  });
});
