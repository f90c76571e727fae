import { describe, expect, it } from 'vitest';
import { ReconcileLoop } from '../../../src/reconcile-loop.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reconcile loop', () => {
  it('ignores kicks before start, and folds kicks that arrive together into one pass', async () => {
    let passes = 0;
    const loop = new ReconcileLoop({ pass: async () => void passes++, delayMs: () => 5, onError: () => 'retry' });
    loop.kick();
    await tick(20);
    expect(passes).toBe(0);
    loop.start();
    loop.kick();
    loop.kick();
    await loop.whenIdle();
    expect(passes).toBe(1);
    await loop.stop();
  });

  it('runs one more pass for kicks during a pass', async () => {
    let passes = 0;
    let loop: ReconcileLoop | undefined = undefined;
    loop = new ReconcileLoop({
      pass: async () => {
        passes++;
        if (passes === 1) loop!.kick();
        await tick(5);
      },
      delayMs: () => 1,
      onError: () => 'retry',
    });
    loop.start();
    await tick(5);
    await loop.whenIdle();
    expect(passes).toBe(2);
    await loop.stop();
  });

  it('retries a failed pass, and stops for good when told to', async () => {
    let passes = 0;
    const errors: unknown[] = [];
    const loop = new ReconcileLoop({
      pass: async () => {
        passes++;
        if (passes < 3) throw new Error(`fail ${passes}`);
      },
      delayMs: () => 1,
      onError: (err) => (errors.push(err), 'retry'),
      retryMs: 1,
    });
    loop.start();
    await tick(5);
    await loop.whenIdle();
    expect(passes).toBe(3);
    expect(errors).toHaveLength(2);

    let after = 0;
    const stopping = new ReconcileLoop({
      pass: async () => {
        after++;
        throw new Error('deposed');
      },
      delayMs: () => 1,
      onError: () => 'stop',
    });
    stopping.start();
    await tick(10);
    stopping.kick();
    await tick(10);
    expect(after).toBe(1);
    expect(stopping.isStopped).toBe(true);
    await loop.stop();
  });

  it('kickAfter runs a pass once the time has come, the earliest asked for winning (a fenced unit held until then)', async () => {
    const at: number[] = [];
    const loop = new ReconcileLoop({ pass: async () => void at.push(performance.now()), delayMs: () => 1, onError: () => 'retry' });
    loop.start();
    await loop.whenIdle();
    const from = performance.now();
    loop.kickAfter(300);
    loop.kickAfter(100);
    loop.kickAfter(200);
    await tick(60);
    expect(at).toHaveLength(1);
    await tick(120);
    expect(at).toHaveLength(2);
    expect(at[1]! - from).toBeGreaterThanOrEqual(100);
    await tick(250);
    expect(at).toHaveLength(2);
    loop.kickAfter(50);
    await loop.stop();
    await tick(80);
    expect(at).toHaveLength(2);
  });
});
