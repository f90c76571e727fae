import { describe, expect, it } from 'vitest';
import { isEmptyPlan, planMoves, schedule } from '../../../src/engine/scheduler.js';
import { cluster, machine, md, pendingReasons, placed, settle, unit } from './fixtures.js';

const twoMachines = [machine('m1'), machine('m2')];
const threeMachines = [machine('m1'), machine('m2'), machine('m3')];

describe('least-loaded placement', () => {
  it.each([
    ['spreads units, ties by machine id', [unit('a.service'), unit('b.service'), unit('c.service')], twoMachines, {}, { 'a.service': 'm1', 'b.service': 'm2', 'c.service': 'm1' }],
    ['sorts machines by id whatever the input order', [unit('a.service')], [machine('m2'), machine('m1')], {}, { 'a.service': 'm1' }],
    ['counts committed decisions as load', [unit('a.service'), unit('x.service')], twoMachines, { 'x.service': 'm1' }, { 'a.service': 'm2', 'x.service': 'm1' }],
    ['counts units placed earlier in the same plan', [unit('a.service'), unit('b.service')], twoMachines, {}, { 'a.service': 'm1', 'b.service': 'm2' }],
    ['treats loaded like launched', [unit('a.service', {}, 'loaded')], twoMachines, {}, { 'a.service': 'm1' }],
  ])('%s', (_, units, machines, decisions, expected) => {
    expect(placed(cluster(units, machines, decisions))).toEqual(expected);
  });

  it('does not rebalance: existing decisions stay even when uneven', () => {
    const state = cluster([unit('a.service'), unit('b.service'), unit('c.service')], twoMachines, {
      'a.service': 'm1',
      'b.service': 'm1',
      'c.service': 'm1',
    });
    expect(schedule(state)).toEqual({ place: [], unplace: [], pending: [] });
  });

  it('waits when no machine is live', () => {
    const plan = schedule(cluster([unit('a.service')], []));
    expect(plan.pending).toEqual([{ unit: 'a.service', reason: 'no machines are available' }]);
  });
});

describe('desired state and stray decisions', () => {
  it.each([
    ['desired inactive is unplaced', unit('a.service', {}, 'inactive'), 'desired state is inactive'],
    ['a global unit is never scheduled', unit('a.service', { global: true }), 'global units are not scheduled: every matching machine runs them'],
  ])('%s', (_, u, reason) => {
    const plan = schedule(cluster([u], twoMachines, { 'a.service': 'm1' }));
    expect(plan).toEqual({ place: [], unplace: [{ unit: 'a.service', machine: 'm1', reason }], pending: [] });
  });

  it('an inactive unit without a decision is neither placed nor pending', () => {
    expect(schedule(cluster([unit('a.service', {}, 'inactive')], twoMachines))).toEqual({ place: [], unplace: [], pending: [] });
  });

  it('a decision for a unit that no longer exists is removed', () => {
    const plan = schedule(cluster([unit('b.service')], twoMachines, { 'a.service': 'm1', 'b.service': 'm1', 'z.service': 'm2' }));
    expect(plan.unplace).toEqual([
      { unit: 'a.service', machine: 'm1', reason: 'unit no longer exists' },
      { unit: 'z.service', machine: 'm2', reason: 'unit no longer exists' },
    ]);
    expect(plan.place).toEqual([]);
  });

  it('a machine that is gone loses its units, which are placed again in the same plan', () => {
    const plan = schedule(cluster([unit('a.service'), unit('b.service')], twoMachines, { 'a.service': 'gone0000ffff', 'b.service': 'm1' }));
    expect(plan.unplace).toEqual([{ unit: 'a.service', machine: 'gone0000ffff', reason: 'machine gone0000 is gone' }]);
    expect(plan.place).toEqual([{ unit: 'a.service', machine: 'm2' }]);
    expect(planMoves(plan)).toEqual([{ unit: 'a.service', from: 'gone0000ffff', to: 'm2', reason: 'machine gone0000 is gone' }]);
  });
});

describe('MachineID', () => {
  const machines = [machine('aaaaaaaa0000000000000000000000001'), machine('bbbbbbbb0000000000000000000000002')];
  it.each([
    ['full id', { machineId: 'bbbbbbbb0000000000000000000000002' }, 'bbbbbbbb0000000000000000000000002'],
    ['8-character short id', { machineId: 'bbbbbbbb' }, 'bbbbbbbb0000000000000000000000002'],
    ['deprecated MachineBootID pins the same way', { machineBootId: 'bbbbbbbb' }, 'bbbbbbbb0000000000000000000000002'],
  ])('%s', (_, req, expected) => {
    expect(placed(cluster([unit('a.service', req)], machines))).toEqual({ 'a.service': expected });
  });

  it.each([
    ['an unknown id', 'cccccccc', 'no live machine matches MachineID=cccccccc'],
    ['a prefix that is not 8 characters', 'bbbbbbb', 'no live machine matches MachineID=bbbbbbb'],
  ])('waits for %s', (_, machineId, reason) => {
    const plan = schedule(cluster([unit('a.service', { machineId })], machines));
    expect(plan.pending).toEqual([{ unit: 'a.service', reason }]);
  });

  it('is pinned even when its machine is the most loaded', () => {
    const state = cluster([unit('a.service', { machineId: 'aaaaaaaa' }), unit('x.service')], machines, {
      'x.service': 'aaaaaaaa0000000000000000000000001',
    });
    expect(placed(state)['a.service']).toBe('aaaaaaaa0000000000000000000000001');
  });

  it('a decision on another machine is moved to the pinned one', () => {
    const plan = schedule(cluster([unit('a.service', { machineId: 'bbbbbbbb' })], machines, { 'a.service': 'aaaaaaaa0000000000000000000000001' }));
    expect(planMoves(plan)).toEqual([
      {
        unit: 'a.service',
        from: 'aaaaaaaa0000000000000000000000001',
        to: 'bbbbbbbb0000000000000000000000002',
        reason: 'machine aaaaaaaa does not match MachineID=bbbbbbbb',
      },
    ]);
  });

  it('with MachineMetadata the pinned machine must match too', () => {
    const plan = schedule(cluster([unit('a.service', { machineId: 'aaaaaaaa', machineMetadata: md('role=db') })], machines));
    expect(pendingReasons(plan)).toEqual({ 'a.service': 'machine aaaaaaaa (MachineID=aaaaaaaa) does not match MachineMetadata role=db' });
  });
});

describe('MachineMetadata', () => {
  const machines = [
    machine('m1', { role: 'db', disk: 'ssd' }),
    machine('m2', { role: 'web', disk: 'ssd' }),
    machine('m3', { role: 'db', disk: 'hdd' }),
    machine('m4', {}),
  ];
  it.each([
    ['one key', ['role=db'], 'm1'],
    ['AND across keys', ['role=db', 'disk=hdd'], 'm3'],
    ['OR within a key', ['role=web', 'role=db', 'disk=ssd'], 'm1'],
    ['!= excludes the value', ['role!=db'], 'm2'],
    ['!= with several values excludes each', ['role!=db', 'role!=web'], 'm4'],
    ['!= and = together', ['role=db', 'role=web', 'disk!=ssd'], 'm3'],
  ])('%s', (_, pairs, expected) => {
    expect(placed(cluster([unit('a.service', { machineMetadata: md(...pairs) })], machines))).toEqual({ 'a.service': expected });
  });

  it('spreads over the matching machines only', () => {
    const units = ['a', 'b', 'c', 'd'].map((n) => unit(`${n}.service`, { machineMetadata: md('role=db') }));
    expect(Object.values(placed(cluster(units, machines)))).toEqual(['m1', 'm3', 'm1', 'm3']);
  });

  it.each([
    [['gpu=yes'], 'no machine matches MachineMetadata gpu=yes'],
    [['role=db', 'disk=nvme'], 'no machine matches MachineMetadata role=db disk=nvme'],
    [['role=cache', 'role=queue'], 'no machine matches MachineMetadata role=cache|queue'],
  ])('waits with a reason when nothing matches %j', (pairs, reason) => {
    const plan = schedule(cluster([unit('a.service', { machineMetadata: md(...pairs) })], machines));
    expect(plan.pending).toEqual([{ unit: 'a.service', reason }]);
  });

  it('a machine whose metadata changed loses the unit, which moves', () => {
    const changed = [machine('m1', { role: 'web' }), machine('m2', { role: 'db' })];
    const plan = schedule(cluster([unit('a.service', { machineMetadata: md('role=db') })], changed, { 'a.service': 'm1' }));
    expect(planMoves(plan)).toEqual([
      { unit: 'a.service', from: 'm1', to: 'm2', reason: 'machine m1 no longer matches MachineMetadata role=db' },
    ]);
  });
});

describe('MachineOf', () => {
  it('a follower goes where its target is, even on a loaded machine', () => {
    const units = [unit('db.service'), unit('db-sidekick.service', { machineOf: ['db.service'] }), unit('x.service')];
    expect(placed(cluster(units, twoMachines, { 'x.service': 'm2', 'db.service': 'm2' }))).toEqual({
      'db-sidekick.service': 'm2',
      'db.service': 'm2',
      'x.service': 'm2',
    });
  });

  it('targets are placed before followers whatever the names', () => {
    // a.service follows z.service, which follows m.service: placed m, z, a.
    const units = [unit('a.service', { machineOf: ['z.service'] }), unit('z.service', { machineOf: ['m.service'] }), unit('m.service'), unit('b.service')];
    const result = placed(cluster(units, threeMachines, { 'b.service': 'm1' }));
    expect(result).toEqual({ 'a.service': 'm2', 'b.service': 'm1', 'm.service': 'm2', 'z.service': 'm2' });
  });

  it('MachineOf itself is ignored', () => {
    expect(placed(cluster([unit('a.service', { machineOf: ['a.service'] })], twoMachines))).toEqual({ 'a.service': 'm1' });
  });

  it('several targets on one machine', () => {
    const units = [unit('a.service'), unit('b.service', { machineOf: ['a.service'] }), unit('c.service', { machineOf: ['a.service', 'b.service'] })];
    expect(Object.values(placed(cluster(units, twoMachines)))).toEqual(['m1', 'm1', 'm1']);
  });

  it.each([
    ['a missing peer', [unit('f.service', { machineOf: ['t.service'] })], 'waiting for MachineOf peer t.service, which is not submitted'],
    [
      'an inactive peer',
      [unit('f.service', { machineOf: ['t.service'] }), unit('t.service', {}, 'inactive')],
      'waiting for MachineOf peer t.service, whose desired state is inactive',
    ],
    [
      'a peer that cannot be placed',
      [unit('f.service', { machineOf: ['t.service'] }), unit('t.service', { machineMetadata: md('role=none') })],
      'waiting for MachineOf peer t.service, which is not scheduled',
    ],
    [
      'a cycle',
      [unit('f.service', { machineOf: ['t.service'] }), unit('t.service', { machineOf: ['f.service'] })],
      'waiting for MachineOf peer t.service, which is not scheduled',
    ],
  ])('waits for %s', (_, units, reason) => {
    expect(pendingReasons(schedule(cluster(units, twoMachines)))['f.service']).toBe(reason);
  });

  it('waits when its peers are on different machines', () => {
    const units = [unit('a.service'), unit('b.service'), unit('f.service', { machineOf: ['a.service', 'b.service'] })];
    expect(pendingReasons(schedule(cluster(units, twoMachines)))).toEqual({
      'f.service': 'MachineOf peers a.service and b.service are on different machines (m1, m2)',
    });
  });

  it("waits when the target's machine does not suit the follower", () => {
    const machines = [machine('m1', { role: 'web' }), machine('m2', { role: 'db' })];
    const units = [unit('a.service'), unit('f.service', { machineOf: ['a.service'], machineMetadata: md('role=db') })];
    expect(pendingReasons(schedule(cluster(units, machines)))).toEqual({
      'f.service': 'cannot follow MachineOf peer a.service to machine m1: it does not match MachineMetadata role=db',
    });
  });

  it('followers move with their target when the target is rescheduled', () => {
    const units = [unit('db.service'), unit('side1.service', { machineOf: ['db.service'] }), unit('side2.service', { machineOf: ['side1.service'] })];
    const state = cluster(units, [machine('m2'), machine('m3')], { 'db.service': 'm1', 'side1.service': 'm1', 'side2.service': 'm1' });
    const plan = schedule(state);
    expect(planMoves(plan)).toEqual([
      { unit: 'db.service', from: 'm1', to: 'm2', reason: 'machine m1 is gone' },
      { unit: 'side1.service', from: 'm1', to: 'm2', reason: 'machine m1 is gone' },
      { unit: 'side2.service', from: 'm1', to: 'm2', reason: 'machine m1 is gone' },
    ]);
  });

  it('followers move with a target whose machine stopped matching it', () => {
    const units = [unit('db.service', { machineMetadata: md('role=db') }), unit('side.service', { machineOf: ['db.service'] })];
    const machines = [machine('m1', { role: 'web' }), machine('m2', { role: 'db' })];
    const plan = schedule(cluster(units, machines, { 'db.service': 'm1', 'side.service': 'm1' }));
    expect(planMoves(plan)).toEqual([
      { unit: 'db.service', from: 'm1', to: 'm2', reason: 'machine m1 no longer matches MachineMetadata role=db' },
      { unit: 'side.service', from: 'm1', to: 'm2', reason: 'MachineOf peer db.service is not on machine m1' },
    ]);
  });

  it('a global peer runs on every matching machine', () => {
    const machines = [machine('m1', { role: 'web' }), machine('m2', { role: 'db' })];
    const units = [unit('agent.service', { global: true, machineMetadata: md('role=db') }), unit('f.service', { machineOf: ['agent.service'] })];
    expect(placed(cluster(units, machines))).toEqual({ 'f.service': 'm2' });
  });
});

describe('Conflicts', () => {
  it.each([
    ['its own pattern matches a scheduled unit', unit('x.service', { conflicts: ['a*'] }), unit('a.service')],
    ['a scheduled unit’s pattern matches it', unit('x.service'), unit('a.service', { conflicts: ['x.*'] })],
    ['character classes', unit('x.service', { conflicts: ['[a-c].service'] }), unit('a.service')],
  ])('never shares a machine when %s', (_, newcomer, existing) => {
    // a.service sits alone on m1 and m1 is the least-loaded machine: only the conflict keeps x off it.
    const state = cluster([existing, newcomer, unit('y.service')], twoMachines, { 'a.service': 'm1', 'y.service': 'm2' });
    expect(placed(state)['x.service']).toBe('m2');
  });

  it('a unit matching its own pattern does not conflict with itself', () => {
    const units = ['web@1.service', 'web@2.service'].map((n) => unit(n, { conflicts: ['web@*.service'] }));
    expect(placed(cluster(units, twoMachines))).toEqual({ 'web@1.service': 'm1', 'web@2.service': 'm2' });
  });

  it('5 mutually conflicting units on 3 machines: 3 placed, 2 pending with a reason', () => {
    const units = [1, 2, 3, 4, 5].map((k) => unit(`web@${k}.service`, { conflicts: ['web@*.service'] }));
    const plan = schedule(cluster(units, threeMachines));
    expect(plan.place).toEqual([
      { unit: 'web@1.service', machine: 'm1' },
      { unit: 'web@2.service', machine: 'm2' },
      { unit: 'web@3.service', machine: 'm3' },
    ]);
    const reason = 'no machine can take it: m1 runs conflicting web@1.service; m2 runs conflicting web@2.service; m3 runs conflicting web@3.service';
    expect(plan.pending).toEqual([
      { unit: 'web@4.service', reason },
      { unit: 'web@5.service', reason },
    ]);
  });

  it('names only three machines in a reason', () => {
    const machines = ['m1', 'm2', 'm3', 'm4', 'm5'].map((id) => machine(id));
    const units = [1, 2, 3, 4, 5, 6].map((k) => unit(`w${k}.service`, { conflicts: ['w*'] }));
    expect(pendingReasons(schedule(cluster(units, machines)))['w6.service']).toMatch(/; and 2 more$/);
  });

  it('committed decisions that conflict: the later unit (by name) moves', () => {
    const state = cluster([unit('a.service', { conflicts: ['b*'] }), unit('b.service')], twoMachines, { 'a.service': 'm1', 'b.service': 'm1' });
    expect(planMoves(schedule(state))).toEqual([
      { unit: 'b.service', from: 'm1', to: 'm2', reason: 'machine m1 runs conflicting a.service' },
    ]);
  });

  it('a malformed pattern matches nothing', () => {
    const state = cluster([unit('a.service', { conflicts: ['[b'] }), unit('b.service')], [machine('m1')]);
    expect(placed(state)).toEqual({ 'a.service': 'm1', 'b.service': 'm1' });
  });
});

describe('Replaces', () => {
  it('lands by least load and pushes the replaced unit to the least-loaded other machine', () => {
    const units = [unit('new.service', { replaces: ['old*'] }), unit('old.service'), unit('x.service')];
    const plan = schedule(cluster(units, threeMachines, { 'old.service': 'm1', 'x.service': 'm2' }));
    // m3 is emptiest, so new.service goes there and old.service stays.
    expect(plan.place).toEqual([{ unit: 'new.service', machine: 'm3' }]);

    const tied = schedule(cluster(units, twoMachines, { 'old.service': 'm1', 'x.service': 'm2' }));
    expect(tied.place).toEqual([
      { unit: 'new.service', machine: 'm1' },
      { unit: 'old.service', machine: 'm2' },
    ]);
    expect(tied.unplace).toEqual([{ unit: 'old.service', machine: 'm1', reason: 'replaced by new.service on machine m1' }]);
  });

  it('a replaced unit never joins its replacer', () => {
    const units = [unit('new.service', { replaces: ['old*'] }), unit('old.service')];
    expect(placed(cluster(units, twoMachines, { 'new.service': 'm1' }))).toEqual({ 'new.service': 'm1', 'old.service': 'm2' });
    expect(pendingReasons(schedule(cluster(units, [machine('m1')], { 'new.service': 'm1' })))).toEqual({
      'old.service': 'no machine can take it: m1 runs new.service, which replaces it',
    });
  });

  it('a replaced unit moves with its followers', () => {
    const units = [unit('new.service', { replaces: ['old.service'] }), unit('old.service'), unit('side.service', { machineOf: ['old.service'] }), unit('x.service')];
    const plan = schedule(cluster(units, twoMachines, { 'old.service': 'm1', 'side.service': 'm1', 'x.service': 'm2' }));
    // new.service: m1 has 2, m2 has 1 → m2. Nothing moves.
    expect(plan.place).toEqual([{ unit: 'new.service', machine: 'm2' }]);
    const plan2 = schedule(cluster(units, twoMachines, { 'old.service': 'm1', 'side.service': 'm1', 'x.service': 'm2', 'y.service': 'm2' }));
    expect(plan2.place).toEqual([{ unit: 'new.service', machine: 'm2' }]);
    const crowded = cluster([...units, unit('y.service'), unit('z.service')], twoMachines, {
      'old.service': 'm1',
      'side.service': 'm1',
      'x.service': 'm2',
      'y.service': 'm2',
      'z.service': 'm2',
    });
    expect(planMoves(schedule(crowded))).toEqual([
      { unit: 'old.service', from: 'm1', to: 'm2', reason: 'replaced by new.service on machine m1' },
      { unit: 'side.service', from: 'm1', to: 'm2', reason: 'MachineOf peer old.service left machine m1' },
    ]);
  });

  it.each([
    ['mutual', [unit('a.service', { replaces: ['b.service'] }), unit('b.service', { replaces: ['a.service'] })]],
    [
      'through a third unit',
      [unit('a.service', { replaces: ['b.service'] }), unit('b.service', { replaces: ['c.service'] }), unit('c.service', { replaces: ['a.service'] })],
    ],
  ])('circular Replaces (%s) are ignored', (_, units) => {
    const decisions = Object.fromEntries(units.map((u) => [u.name, 'm1']));
    expect(schedule(cluster(units, twoMachines, decisions))).toEqual({ place: [], unplace: [], pending: [] });
  });

  it('a circular pair does not cancel a plain replace of the same unit', () => {
    const units = [unit('a.service', { replaces: ['b.service'] }), unit('b.service', { replaces: ['a.service'] }), unit('c.service', { replaces: ['b.service'] })];
    const plan = schedule(cluster(units, twoMachines, { 'a.service': 'm1', 'b.service': 'm1', 'c.service': 'm1' }));
    expect(planMoves(plan)).toEqual([{ unit: 'b.service', from: 'm1', to: 'm2', reason: 'machine m1 runs c.service, which replaces it' }]);
  });
});

describe('Global units', () => {
  const machines = [machine('m1', { role: 'web' }), machine('m2', { role: 'db' })];

  it('are never placed and never pending', () => {
    expect(schedule(cluster([unit('mon.service', { global: true })], machines))).toEqual({ place: [], unplace: [], pending: [] });
  });

  it('count as load on the machines they match', () => {
    const units = [unit('mon.service', { global: true, machineMetadata: md('role=web') }), unit('a.service')];
    expect(placed(cluster(units, machines))).toEqual({ 'a.service': 'm2' });
  });

  it('do not count when inactive', () => {
    const units = [unit('mon.service', { global: true, machineMetadata: md('role=web') }, 'inactive'), unit('a.service')];
    expect(placed(cluster(units, machines))).toEqual({ 'a.service': 'm1' });
  });

  it.each([
    ['the global unit’s pattern matches', unit('mon.service', { global: true, machineMetadata: md('role=web'), conflicts: ['a*'] }), unit('a.service')],
    ['the unit’s pattern matches the global', unit('mon.service', { global: true, machineMetadata: md('role=web') }), unit('a.service', { conflicts: ['mon*'] })],
  ])('take part in Conflicts: %s', (_, global, u) => {
    // mon.service loads m1 and x.service loads m2: a tie that m1 would win but for the conflict.
    const state = cluster([global, u, unit('x.service')], machines, { 'x.service': 'm2' });
    expect(placed(state)['a.service']).toBe('m2');
  });

  it('win a conflict against a committed decision', () => {
    const units = [unit('mon.service', { global: true, conflicts: ['a.service'] }), unit('a.service')];
    const plan = schedule(cluster(units, machines, { 'a.service': 'm1' }));
    expect(plan.unplace).toEqual([{ unit: 'a.service', machine: 'm1', reason: 'machine m1 runs conflicting mon.service (global)' }]);
    expect(plan.pending).toEqual([
      {
        unit: 'a.service',
        reason: 'no machine can take it: m1 runs conflicting mon.service (global); m2 runs conflicting mon.service (global)',
      },
    ]);
  });
});

describe('stability and determinism', () => {
  const units = [
    unit('a.service'),
    unit('b.service', { machineMetadata: md('role=db') }),
    unit('c.service', { machineOf: ['a.service'] }),
    unit('d@1.service', { conflicts: ['d@*'] }),
    unit('d@2.service', { conflicts: ['d@*'] }),
    unit('e.service', { replaces: ['a.service'] }),
    unit('g.service', { global: true }),
  ];
  const machines = [machine('m1', { role: 'db' }), machine('m2', { role: 'web' }), machine('m3', { role: 'db' })];

  it('scheduling the result again changes nothing', () => {
    const { plan, decisions } = settle(cluster(units, machines));
    expect(plan.pending).toEqual([]);
    const again = schedule(cluster(units, machines, decisions));
    expect(isEmptyPlan(again)).toBe(true);
  });

  it('the same cluster in any input order gives the same plan', () => {
    const plan = schedule(cluster(units, machines, { 'a.service': 'm9' }));
    const shuffled = schedule(cluster([...units].reverse(), [...machines].reverse(), { 'a.service': 'm9' }));
    expect(shuffled).toEqual(plan);
  });
});
