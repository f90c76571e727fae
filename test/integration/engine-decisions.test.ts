// One decision per unit, held by etcd: a pass planned from caches that lag
// behind a move is refused and planned again, and no revision of etcd's
// history shows a non-global unit decided onto two machines.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { encode, placementValue, type PlanOp, type Registry, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { currentRevision, doubleDecisions } from '../helpers/decision-history.js';
import { useEtcd } from '../helpers/etcd.js';
import { HollowCluster, hollowId } from '../helpers/hollow.js';
import { testRegistry } from '../helpers/registry.js';

const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function unit(name: string): UnitRecord {
  const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n`);
  return { name, text: p.text, hash: p.hash, global: false };
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function machinesOf(registry: Registry, name: string): Promise<string[]> {
  return (await registry.listDecisions()).filter((d) => d.unit === name).map((d) => d.machine);
}

/**
 * Moves a unit's decision from one machine to another behind the engine's
 * back, the way a plan does (decision and placement in one transaction), so
 * the engine's caches lag behind etcd when its own commit arrives.
 */
async function moveBehind(registry: Registry, name: string, from: string, to: string, hash: string): Promise<void> {
  const k = registry.keys;
  await registry.client
    .if(k.decision(from, name), 'Create', '>', 0)
    .then(
      registry.client.delete().key(k.decision(from, name)),
      registry.client.put(k.decision(to, name)).value(encode({ unit: name, machine: to, hash, state: 'launched' })),
      registry.client.put(k.placement(name)).value(placementValue(name, to)),
    )
    .commit();
}

/**
 * Wraps the registry's applyPlan: `before` runs ahead of each commit, after
 * the pass has planned. Returns the count of refused transactions, over
 * every reconciler the engine runs.
 */
function interceptPlans(registry: Registry, before: (ops: readonly PlanOp[]) => Promise<void>): { stale: number } {
  const apply = registry.applyPlan.bind(registry);
  const seen = { stale: 0 };
  registry.applyPlan = async (token, ops) => {
    await before(ops);
    const res = await apply(token, ops);
    seen.stale += res.stale;
    return res;
  };
  return seen;
}

async function setup(machines: number, ttlSeconds: number, offset = 0) {
  const registry = testRegistry(etcd.endpoints);
  cleanups.push(() => registry.close());
  const hollow = await HollowCluster.start(registry, { count: machines, ttlSeconds, id: (i) => hollowId(i + offset) });
  cleanups.push(() => hollow.stop());
  return { registry, hollow };
}

function startEngine(registry: Registry): Engine {
  const engine = new Engine({ registry, id: 'e1', leaseTtlSeconds: 10, batchDelayMs: 2 });
  engine.start();
  cleanups.push(() => engine.stop());
  return engine;
}

describe('one decision per unit', () => {
  it('refuses a pass planned before a unit moved behind it, and plans again from what etcd holds', async () => {
    const { registry, hollow } = await setup(3, 1);
    const from = await currentRevision(registry.client);
    const u = unit('racer.service');
    await registry.createUnits([u], { desiredState: 'launched' });
    const engine = startEngine(registry);
    const [first] = await eventually(() => machinesOf(registry, u.name), (m) => m.length === 1, 10_000, 'first decision');
    let moved: string | undefined;
    const refused = interceptPlans(registry, async (ops) => {
      const op = ops.find((o) => o.type === 'place' && o.decision.unit === u.name && o.decision.machine !== first);
      if (moved !== undefined || op?.type !== 'place') return;
      // The pass moves the unit off its dead machine; before it commits, the
      // unit moves to the third machine, which the pass has not seen.
      moved = hollow.ids.find((id) => id !== first && id !== op.decision.machine) as string;
      await moveBehind(registry, u.name, first as string, moved, u.hash);
    });
    hollow.kill(first as string);
    await eventually(() => Promise.resolve(moved), (m) => m !== undefined, 10_000, 'the racing pass');
    await engine.reconciler?.whenIdle();
    expect(await doubleDecisions(registry.client, registry.keys.schedulePrefix, from, await currentRevision(registry.client))).toEqual([]);
    // The moved decision holds (its machine is live), so the pass planned
    // again keeps it.
    expect(await machinesOf(registry, u.name)).toEqual([moved]);
    expect(refused.stale).toBeGreaterThanOrEqual(1);
  });

  it('never shows a unit on two machines at any revision while machines come and go and units move', async () => {
    const { registry, hollow } = await setup(4, 1);
    const from = await currentRevision(registry.client);
    const units = Array.from({ length: 40 }, (_, i) => unit(`churn-${i}.service`));
    await registry.createUnits(units, { desiredState: 'launched' });
    const engine = startEngine(registry);
    await eventually(() => registry.listDecisions(), (d) => d.length === units.length, 10_000, 'all units placed');
    // Every third commit, one unit it touches moves behind the engine's back first.
    let commits = 0;
    let behind = 0;
    const refused = interceptPlans(registry, async (ops) => {
      if (++commits % 3 !== 0) return;
      const live = (await registry.listMachines()).map((m) => m.id);
      const now = new Map((await registry.listDecisions()).map((d) => [d.unit, d.machine]));
      for (const op of ops) {
        // a move: the unit is decided elsewhere now
        const at = op.type === 'place' ? now.get(op.decision.unit) : undefined;
        if (op.type !== 'place' || at === undefined || at === op.decision.machine) continue;
        const to = live.find((id) => id !== at && id !== op.decision.machine);
        if (to === undefined) continue;
        await moveBehind(registry, op.decision.unit, at, to, op.decision.hash);
        behind++;
        return;
      }
    });
    const extra: HollowCluster[] = [];
    for (let round = 0; round < 4; round++) {
      // a machine dies, another joins, some units stop and start again
      hollow.kill(hollow.ids[round] as string);
      const joined = await HollowCluster.start(registry, { count: 1, ttlSeconds: 1, id: () => hollowId(100 + round) });
      extra.push(joined);
      cleanups.push(() => joined.stop());
      const some = units.filter((_, i) => i % 4 === round).map((x) => x.name);
      await registry.setDesiredState(some, 'inactive');
      await new Promise((r) => setTimeout(r, 300));
      await registry.setDesiredState(some, 'launched');
      await new Promise((r) => setTimeout(r, 1_500));
    }
    const live = new Set(extra.map((c) => c.ids[0]));
    await eventually(
      () => registry.listDecisions(),
      (d) => d.length === units.length && d.every((x) => live.has(x.machine)),
      30_000,
      'every unit on a live machine',
    );
    await engine.reconciler?.whenIdle();
    const to = await currentRevision(registry.client);
    expect(await doubleDecisions(registry.client, registry.keys.schedulePrefix, from, to)).toEqual([]);
    expect(to - from).toBeGreaterThan(20);
    // Whether a move behind the engine's back lands depends on timing (on a
    // loaded machine none may); the forced race is the test above. Here the
    // checker is the point: no revision of the churn shows a double decision.
    console.info(`moves behind the engine: ${behind}, stale plans refused: ${refused.stale}`);
  });
});
