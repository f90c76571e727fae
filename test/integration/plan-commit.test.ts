// Plans commit only while each unit's decision is what the plan assumed:
// the placement key is compared in the same transaction as the decision.
import { afterEach, describe, expect, it } from 'vitest';
import { encode, placementValue, type LeaderToken, type PlanOp, type Registry } from '../../src/registry/index.js';
import { currentRevision, doubleDecisions } from '../helpers/decision-history.js';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry } from '../helpers/registry.js';

const etcd = useEtcd();
const opened: Registry[] = [];
afterEach(async () => {
  for (const r of opened.splice(0)) {
    await r.client.delete().prefix(r.keys.prefix);
    r.close();
  }
});

async function leader(): Promise<{ r: Registry; token: LeaderToken }> {
  const r = testRegistry(etcd.endpoints);
  opened.push(r);
  const token = await r.tryLead('e1', await r.grantLease(10));
  if (!token) throw new Error('not leader');
  return { r, token };
}

const place = (unit: string, machine: string, from?: string): PlanOp => ({
  type: 'place',
  decision: { unit, machine, hash: 'h', state: 'launched' },
  from,
});

async function where(r: Registry): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const d of await r.listDecisions()) (out[d.unit] ??= []).push(d.machine);
  return out;
}

describe('plans compared with each unit placement', () => {
  it('refuses a move planned before the unit moved, and writes nothing of its transaction', async () => {
    const { r, token } = await leader();
    const from = await currentRevision(r.client);
    await r.applyPlan(token, [place('a.service', 'm1')]);
    // a plan made now assumes a.service is on m1 ...
    const stalePlan = [place('a.service', 'm3', 'm1'), place('c.service', 'm3')];
    // ... but before it commits, a.service moves to m2
    const moved = await r.applyPlan(token, [place('a.service', 'm2', 'm1')]);
    expect(moved.stale).toBe(0);
    const res = await r.applyPlan(token, stalePlan);
    expect(await doubleDecisions(r.client, r.keys.schedulePrefix, from, await currentRevision(r.client))).toEqual([]);
    expect(await where(r)).toEqual({ 'a.service': ['m2'] });
    expect(res.stale).toBe(1);
    expect(res.opRevisions).toEqual([0, 0]);
  });

  it('refuses to place a unit the plan saw undecided once it is decided', async () => {
    const { r, token } = await leader();
    await r.applyPlan(token, [place('b.service', 'm1')]);
    expect((await r.applyPlan(token, [place('b.service', 'm2')])).stale).toBe(1);
    expect((await r.applyPlan(token, [{ type: 'unplace', machine: 'm2', unit: 'b.service' }])).stale).toBe(1);
    expect(await where(r)).toEqual({ 'b.service': ['m1'] });
    // what the plan assumed is true: it commits, and the placement goes with the decision
    expect((await r.applyPlan(token, [{ type: 'unplace', machine: 'm1', unit: 'b.service' }])).stale).toBe(0);
    expect(await r.getRaw(r.keys.placement('b.service'))).toBeUndefined();
  });

  it('commits 63 placements per transaction: a decision and a placement each, one compare each', async () => {
    const { r, token } = await leader();
    const ops = Array.from({ length: 1_000 }, (_, i) => place(`u${i}.service`, `m${i % 7}`));
    const res = await r.applyPlan(token, ops);
    expect(res.txns).toBe(Math.ceil(1_000 / 63));
    expect(res.stale).toBe(0);
    expect(await r.listDecisions()).toHaveLength(1_000);
  });

  it('gives decisions written before placement keys existed their placement, and drops placements with no decision', async () => {
    const { r, token } = await leader();
    const k = r.keys;
    // an older engine's decisions: no placement keys
    await r.client.put(k.decision('m1', 'old.service')).value(encode({ unit: 'old.service', machine: 'm1', hash: 'h', state: 'launched' }));
    await r.client.put(k.decision('m2', 'twice.service')).value(encode({ unit: 'twice.service', machine: 'm2', hash: 'h', state: 'launched' }));
    await r.client.put(k.decision('m1', 'twice.service')).value(encode({ unit: 'twice.service', machine: 'm1', hash: 'h', state: 'launched' }));
    await r.client.put(k.placement('gone.service')).value(placementValue('gone.service', 'm9'));
    // until then, a plan assuming old.service is on m1 is refused
    expect((await r.applyPlan(token, [place('old.service', 'm2', 'm1')])).stale).toBe(1);
    expect(await r.repairPlacements(token)).toBe(3);
    expect(await r.repairPlacements(token)).toBe(0);
    expect((await r.getRaw(k.placement('twice.service')))?.value).toBe(placementValue('twice.service', 'm1'));
    expect(await r.getRaw(k.placement('gone.service'))).toBeUndefined();
    expect((await r.applyPlan(token, [place('old.service', 'm2', 'm1')])).stale).toBe(0);
    expect((await where(r))['old.service']).toEqual(['m2']);
  });
});
