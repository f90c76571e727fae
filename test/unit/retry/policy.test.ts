import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, RETRY_INITIAL_MS, RETRY_MAX_MS, retryUntilStopped } from '../../../src/retry.js';

const delays = (b: Backoff, n: number): number[] => Array.from({ length: n }, () => b.next());

describe('retry policy', () => {
  it('draws the n-th delay from [d/2, d) with d = initial * 2^n capped: exponential growth, never above the cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 40 }), (initialMs, extra, n) => {
        const maxMs = initialMs + extra;
        const got = delays(new Backoff({ initialMs, maxMs }), n);
        got.forEach((delay, i) => {
          const d = Math.min(maxMs, initialMs * 2 ** i);
          expect(delay).toBeLessThanOrEqual(maxMs);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(d / 2));
          expect(delay).toBeLessThanOrEqual(d);
        });
      }),
    );
  });

  it('the default policy starts near 100 ms and stays within 5 s however long it retries', () => {
    const got = delays(new Backoff(), 1_000);
    expect(got[0]).toBeLessThan(RETRY_INITIAL_MS);
    expect(Math.max(...got)).toBeLessThanOrEqual(RETRY_MAX_MS);
    // late delays sit in the upper half of the cap, not at 0
    expect(Math.min(...got.slice(10))).toBeGreaterThanOrEqual(RETRY_MAX_MS / 2);
  });

  it('is jittered: two loops retrying from the same moment do not wait the same delays', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 5_000 }), (initialMs) => {
        const a = delays(new Backoff({ initialMs, maxMs: 60_000 }), 8);
        const b = delays(new Backoff({ initialMs, maxMs: 60_000 }), 8);
        expect(a).not.toEqual(b);
      }),
    );
    // at the cap too: agents stuck at the longest delay still spread out
    const capped = (): number[] => delays(new Backoff(), 40).slice(20);
    expect(capped()).not.toEqual(capped());
    expect(new Set(capped()).size).toBeGreaterThan(1);
  });

  it('starts again from the first delay after reset()', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000 });
    delays(b, 10);
    b.reset();
    expect(b.next()).toBeLessThan(100);
  });

  it('retryUntilStopped tries until success, waiting by the policy, and ends when stopped', async () => {
    let tries = 0;
    const waits: number[] = [];
    const result = await retryUntilStopped(
      async () => {
        if (++tries < 4) throw new Error('not yet');
        return 'done';
      },
      { initialMs: 4, maxMs: 20, stopped: () => false, onError: (_err, ms) => waits.push(ms) },
    );
    expect(result).toBe('done');
    expect(waits).toHaveLength(3);
    let stopped = false;
    const never = await retryUntilStopped(
      () => {
        stopped = true;
        return Promise.reject(new Error('down'));
      },
      { stopped: () => stopped, onError: () => undefined },
    );
    expect(never).toBeUndefined();
  });
});
