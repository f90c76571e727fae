import { describe, expect, it } from 'vitest';
import { fenceDue, shorterFence } from '../../../src/agent/fence.js';

// The agent's half of self-fencing (issue 15.5): which units to stop, counted
// from the last moment etcd acknowledged the machine.
describe('fenceDue', () => {
  const units = [
    { name: 'b.service', fenceAfter: 10 },
    { name: 'a.service', fenceAfter: 2 },
    { name: 'plain.service', fenceAfter: undefined },
    { name: 'zero.service', fenceAfter: 0 },
  ];

  it('stops nothing while etcd answered within every fence, and names when the first passes', () => {
    expect(fenceDue(units, 1_000, 2_999)).toEqual({ due: [], nextAt: 3_000 });
  });

  it('stops each unit whose fence has passed since the last ack; unfenced units run on', () => {
    expect(fenceDue(units, 1_000, 3_000)).toEqual({ due: ['a.service'], nextAt: 11_000 });
    expect(fenceDue(units, 1_000, 11_000)).toEqual({ due: ['a.service', 'b.service'], nextAt: undefined });
  });
});

describe('shorterFence', () => {
  it('takes the shorter of the fences that are on', () => {
    expect(shorterFence(10, 5)).toBe(5);
    expect(shorterFence(undefined, 5)).toBe(5);
    expect(shorterFence(10, undefined)).toBe(10);
    expect(shorterFence(0, 7)).toBe(7);
    expect(shorterFence(undefined, undefined)).toBeUndefined();
  });
});
