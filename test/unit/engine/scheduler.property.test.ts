/**
 * Properties of `schedule` over random small clusters, checked against a
 * deliberately naive reading of the rules (globMatch per pair, no indexes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterState, MachineInfo, SchedulableUnit } from '../../../src/engine/scheduler.js';
import { applyPlan, isEmptyPlan, schedule } from '../../../src/engine/scheduler.js';
import { globMatch } from '../../../src/unit/glob.js';
import type { MetadataRequirement } from '../../../src/unit/requirements.js';
import { fakeRequirements, machine } from './fixtures.js';

const MACHINE_IDS = ['m0aaaaaa01', 'm1bbbbbb02', 'm2cccccc03', 'm3dddddd04', 'm4eeeeee05'];
const GONE = 'zzzzzzzz99';
const NAMES = ['a.service', 'b.service', 'c.service', 'db.service', 'side.service', 'web@1.service', 'web@2.service', 'web@3.service'];
const PATTERNS = ['a*', 'web@*', '*.service', '[bc].service', 'db*', 's?de*', 'web@[12].service'];

const metadataArb: fc.Arbitrary<Record<string, string>> = fc.record(
  { role: fc.constantFrom('db', 'web'), zone: fc.constantFrom('a', 'b') },
  { requiredKeys: [] },
);

const machinesArb: fc.Arbitrary<MachineInfo[]> = fc
  .subarray(MACHINE_IDS)
  .chain((ids) => fc.tuple(...ids.map((id) => metadataArb.map((md) => machine(id, md)))));

const metadataRequirementArb: fc.Arbitrary<MetadataRequirement> = fc.oneof(
  fc.record({ key: fc.constant('role'), values: fc.subarray(['db', 'web'], { minLength: 1 }), negate: fc.boolean() }),
  fc.record({ key: fc.constant('zone'), values: fc.subarray(['a', 'b'], { minLength: 1 }), negate: fc.boolean() }),
);

const unitArb = (name: string): fc.Arbitrary<SchedulableUnit> =>
  fc
    .record(
      {
        machineId: fc.constantFrom(...MACHINE_IDS, ...MACHINE_IDS.map((id) => id.slice(0, 8)), 'nomatch1'),
        machineMetadata: fc.array(metadataRequirementArb, { maxLength: 2 }),
        machineOf: fc.subarray(NAMES, { maxLength: 2 }),
        conflicts: fc.subarray(PATTERNS, { maxLength: 2 }),
        replaces: fc.subarray(PATTERNS, { maxLength: 1 }),
        global: fc.boolean(),
        desiredState: fc.constantFrom('inactive' as const, 'loaded' as const, 'launched' as const),
      },
      { requiredKeys: ['desiredState'] },
    )
    .map(({ desiredState, ...req }) => ({ name, desiredState, requirements: fakeRequirements(req) }));

const clusterArb: fc.Arbitrary<ClusterState> = fc
  .record({
    names: fc.subarray(NAMES),
    machines: machinesArb,
    decided: fc.dictionary(fc.constantFrom(...NAMES, 'ghost.service'), fc.constantFrom(...MACHINE_IDS, GONE), { maxKeys: 8 }),
  })
  .chain(({ names, machines, decided }) =>
    fc.tuple(...names.map(unitArb)).map((units) => ({ units, machines, decisions: new Map(Object.entries(decided)) })),
  );

/** A cluster where most units carry few constraints, so placements happen. */
const looseClusterArb: fc.Arbitrary<ClusterState> = clusterArb.map((state) => ({
  ...state,
  units: state.units.map((u, i) =>
    i % 2 === 0
      ? u
      : {
          ...u,
          desiredState: 'launched' as const,
          requirements: fakeRequirements({ conflicts: u.requirements.conflicts, machineOf: u.requirements.machineOf.slice(0, 1) }),
        },
  ),
}));

const anyCluster = fc.oneof(clusterArb, looseClusterArb);
const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 400) };

describe('schedule: properties', () => {
  it('never places a unit twice, nor a global or inactive unit; every move removes the old decision', () => {
    fc.assert(
      fc.property(anyCluster, (state) => {
        const plan = schedule(state);
        const placedUnits = plan.place.map((p) => p.unit);
        expect(new Set(placedUnits).size).toBe(placedUnits.length);
        const byName = new Map(state.units.map((u) => [u.name, u]));
        for (const p of plan.place) {
          const u = byName.get(p.unit);
          expect(u?.requirements.global).toBe(false);
          expect(u?.desiredState).not.toBe('inactive');
          const before = state.decisions.get(p.unit);
          if (before !== undefined) expect(plan.unplace).toContainEqual(expect.objectContaining({ unit: p.unit, machine: before }));
        }
        for (const u of plan.unplace) expect(state.decisions.get(u.unit)).toBe(u.machine);
      }),
      RUNS,
    );
  });

  it('applying a plan never breaks MachineID, MachineMetadata, MachineOf, Conflicts or Replaces', () => {
    fc.assert(
      fc.property(anyCluster, (state) => {
        const after = applyPlan(state.decisions, schedule(state));
        expect(violations({ ...state, decisions: after })).toEqual([]);
      }),
      RUNS,
    );
  });

  it('scheduling after applying a plan yields an empty plan, with the same units pending', () => {
    fc.assert(
      fc.property(anyCluster, (state) => {
        const plan = schedule(state);
        const again = schedule({ ...state, decisions: applyPlan(state.decisions, plan) });
        expect(again.place).toEqual([]);
        expect(again.unplace).toEqual([]);
        expect(isEmptyPlan(again)).toBe(true);
        expect(again.pending.map((p) => p.unit)).toEqual(plan.pending.map((p) => p.unit));
      }),
      RUNS,
    );
  });

  it('pending lists exactly the units that want a machine and have none', () => {
    fc.assert(
      fc.property(anyCluster, (state) => {
        const plan = schedule(state);
        const after = applyPlan(state.decisions, plan);
        const expected = state.units
          .filter((u) => u.desiredState !== 'inactive' && !u.requirements.global && !after.has(u.name))
          .map((u) => u.name)
          .sort();
        expect(plan.pending.map((p) => p.unit)).toEqual(expected);
        for (const p of plan.pending) expect(p.reason).not.toBe('');
      }),
      RUNS,
    );
  });

  it('is deterministic: input order does not matter', () => {
    fc.assert(
      fc.property(anyCluster, (state) => {
        const reversed: ClusterState = {
          units: [...state.units].reverse(),
          machines: [...state.machines].reverse(),
          decisions: new Map([...state.decisions].reverse()),
        };
        expect(schedule(reversed)).toEqual(schedule(state));
      }),
      RUNS,
    );
  });

  it('spreads unconstrained units evenly (loads differ by at most one)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 60 }), (machines, units) => {
        const state: ClusterState = {
          units: Array.from({ length: units }, (_, i) => ({ name: `u${i}.service`, desiredState: 'launched', requirements: fakeRequirements() })),
          machines: Array.from({ length: machines }, (_, i) => machine(`m${i}`)),
          decisions: new Map(),
        };
        const loads = new Map(state.machines.map((m) => [m.id, 0]));
        for (const p of schedule(state).place) loads.set(p.machine, (loads.get(p.machine) ?? 0) + 1);
        expect(Math.max(...loads.values()) - Math.min(...loads.values())).toBeLessThanOrEqual(1);
      }),
    );
  });
});

/** Every rule a committed schedule must satisfy, read naively. */
function violations(state: ClusterState): string[] {
  const out: string[] = [];
  const units = new Map(state.units.map((u) => [u.name, u]));
  const machines = new Map(state.machines.map((m) => [m.id, m]));
  const active = (u: SchedulableUnit): boolean => u.desiredState !== 'inactive';
  const metadataOk = (reqs: readonly MetadataRequirement[], md: Readonly<Record<string, string>>): boolean =>
    reqs.every((r) => {
      const has = Object.hasOwn(md, r.key) && r.values.includes(md[r.key] as string);
      return r.negate ? !has : has;
    });
  const runsOn = (m: MachineInfo): SchedulableUnit[] => [
    ...[...state.decisions].filter(([, id]) => id === m.id).map(([name]) => units.get(name) as SchedulableUnit),
    ...state.units.filter((g) => g.requirements.global && active(g) && metadataOk(g.requirements.machineMetadata, m.metadata)),
  ];
  const conflict = (a: SchedulableUnit, b: SchedulableUnit): boolean =>
    a.name !== b.name &&
    (a.requirements.conflicts.some((p) => globMatch(p, b.name)) || b.requirements.conflicts.some((p) => globMatch(p, a.name)));

  for (const [name, id] of state.decisions) {
    const u = units.get(name);
    const m = machines.get(id);
    if (u === undefined) out.push(`${name}: not a unit`);
    else if (!active(u) || u.requirements.global) out.push(`${name}: should not be scheduled`);
    else if (m === undefined) out.push(`${name}: on a machine that is gone`);
    else {
      const wanted = u.requirements.machineId ?? u.requirements.machineBootId;
      if (wanted !== undefined && id !== wanted && id.slice(0, 8) !== wanted) out.push(`${name}: MachineID ${wanted} on ${id}`);
      if (!metadataOk(u.requirements.machineMetadata, m.metadata)) out.push(`${name}: MachineMetadata on ${id}`);
      const here = runsOn(m);
      for (const peer of u.requirements.machineOf) {
        if (!here.some((o) => o.name === peer)) out.push(`${name}: MachineOf ${peer} not on ${id}`);
      }
      for (const other of here) if (conflict(u, other)) out.push(`${name}: conflicts with ${other.name} on ${id}`);
      for (const other of here) if (replaces(other, u)) out.push(`${name}: shares ${id} with ${other.name}, which replaces it`);
    }
  }
  return out;

  /** a replaces b, and b does not lead back to a through Replaces (circular ones are ignored). */
  function replaces(a: SchedulableUnit, b: SchedulableUnit): boolean {
    const edge = (x: SchedulableUnit, y: SchedulableUnit): boolean =>
      x.name !== y.name && active(x) && active(y) && !x.requirements.global && !y.requirements.global && x.requirements.replaces.some((p) => globMatch(p, y.name));
    if (!edge(a, b)) return false;
    const seen = new Set([b.name]);
    const todo = [b];
    for (let x = todo.pop(); x !== undefined; x = todo.pop()) {
      for (const y of state.units) {
        if (!edge(x, y) || seen.has(y.name)) continue;
        if (y.name === a.name) return false;
        seen.add(y.name);
        todo.push(y);
      }
    }
    return true;
  }
}

