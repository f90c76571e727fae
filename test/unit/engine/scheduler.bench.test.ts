/**
 * Micro-benchmark of the pure scheduler, skipped by default. Run with
 *   SCHEDULER_BENCH=1 npx vitest run --project unit test/unit/engine/scheduler.bench.test.ts
 * It prints timings for a fresh placement of every unit and for the
 * no-change re-run that follows, at 10,000 units on 1,000 machines and
 * 100,000 units on 5,000 machines.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterState, MachineInfo, SchedulableUnit } from '../../../src/engine/scheduler.js';
import { applyPlan, isEmptyPlan, schedule } from '../../../src/engine/scheduler.js';
import { machine, md, unit } from './fixtures.js';

const ROLES = ['db', 'web', 'worker', 'cache'];
const ZONES = ['z1', 'z2', 'z3', 'z4'];

/** The mix the issue names: plain, 10% MachineMetadata, 5% Conflicts, 1% Global. */
export function benchCluster(unitCount: number, machineCount: number): ClusterState {
  const machines: MachineInfo[] = [];
  for (let m = 0; m < machineCount; m++) {
    const id = (m * 2654435761 >>> 0).toString(16).padStart(8, '0') + m.toString(16).padStart(24, '0');
    machines.push(machine(id, { role: ROLES[m % ROLES.length] as string, zone: ZONES[(m >> 2) % ZONES.length] as string }));
  }
  const units: SchedulableUnit[] = [];
  for (let i = 0; i < unitCount; i++) {
    const k = i % 100;
    if (k === 0) {
      // 1% global: half everywhere, half on one role.
      units.push(unit(`monitor-${i}.service`, { global: true, machineMetadata: i % 200 === 0 ? [] : md('role=web') }));
    } else if (k <= 10) {
      // 10% MachineMetadata: OR within a key, AND across keys, and !=.
      const req = k % 3 === 0 ? md('role=db', 'role=web') : k % 3 === 1 ? md('role=worker', 'zone!=z3') : md('role=cache', 'zone=z1');
      units.push(unit(`meta-${i}.service`, { machineMetadata: req }));
    } else if (k <= 15) {
      // 5% Conflicts: instances of one template spread apart (groups of 10), some by a suffix pattern.
      const group = Math.floor(i / 1000);
      const conflicts = k === 15 ? ['*-lb.service'] : [`cache-${group}@*.service`];
      const name = k === 15 ? `edge-${i}-lb.service` : `cache-${group}@${i}.service`;
      units.push(unit(name, { conflicts }));
    } else {
      units.push(unit(`app-${i}.service`));
    }
  }
  return { units, machines, decisions: new Map() };
}

function time<T>(f: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = f();
  return { value, ms: performance.now() - start };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

describe.skipIf(!process.env.SCHEDULER_BENCH)('scheduler micro-benchmark', () => {
  for (const [units, machines, rounds] of [
    [10_000, 1_000, 7],
    [100_000, 5_000, 3],
  ] as const) {
    it(`${units} units on ${machines} machines`, () => {
      const fresh: number[] = [];
      const again: number[] = [];
      const lost: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // A new cluster each round: nothing is cached between calls but the JIT's work.
        const state = benchCluster(units, machines);
        const first = time(() => schedule(state));
        expect(first.value.place.length).toBe(units - units / 100);
        const decisions = applyPlan(state.decisions, first.value);
        const second = time(() => schedule({ ...state, decisions }));
        expect(isEmptyPlan(second.value)).toBe(true);
        const third = time(() => schedule({ ...state, machines: state.machines.slice(1), decisions }));
        fresh.push(first.ms);
        again.push(second.ms);
        lost.push(third.ms);
      }
      const show = (xs: number[]): string => `first ${(xs[0] as number).toFixed(0)} ms, median ${median(xs).toFixed(0)} ms`;
      console.log(
        `${units} units / ${machines} machines, ${rounds} rounds: ` +
          `place all: ${show(fresh)}; re-run, no change: ${show(again)}; one machine lost: ${show(lost)}`,
      );
    });
  }
});
