import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DuplicateMachineError,
  Keys,
  machinePresence,
  NotLeaderError,
  Registry,
  RegistryUnavailableError,
  SchemaTooNewError,
  UnitExistsError,
  UnitNotFoundError,
  type MachineRecord,
  type PlanOp,
} from '../../src/registry/index.js';
import { freePorts } from '../../src/lab/etcd.js';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry, unitRecord } from '../helpers/registry.js';

const etcd = useEtcd();
const opened: Registry[] = [];
function registry(): Registry {
  const r = testRegistry(etcd.endpoints);
  opened.push(r);
  return r;
}
afterEach(() => {
  for (const r of opened.splice(0)) r.close();
});

function machine(id: string, extra: Partial<MachineRecord> = {}): MachineRecord {
  return {
    id,
    publicIp: '127.0.0.11',
    metadata: { role: 'web' },
    version: 'test',
    hostname: `host-${id}`,
    bootId: `boot-${id}`,
    since: new Date().toISOString(),
    ...extra,
  };
}

describe('units', () => {
  it('creates, reads and lists units with their desired state', async () => {
    const r = registry();
    expect(await r.createUnit(unitRecord('a.service'))).toBe('created');
    expect(await r.createUnit(unitRecord('b.service'), { desiredState: 'launched' })).toBe('created');
    expect(await r.getUnit('a.service')).toMatchObject({ name: 'a.service', desiredState: 'inactive' });
    const all = await r.listUnits();
    expect(all.map((u) => [u.name, u.desiredState])).toEqual([
      ['a.service', 'inactive'],
      ['b.service', 'launched'],
    ]);
    expect(await r.getUnit('missing.service')).toBeUndefined();
  });

  it('is idempotent for the same file, refuses a different one, and replaces with replace', async () => {
    const r = registry();
    await r.createUnit(unitRecord('a.service'), { desiredState: 'launched' });
    expect(await r.createUnit(unitRecord('a.service'))).toBe('unchanged');
    const changed = unitRecord('a.service', '[Service]\nExecStart=/bin/true\n');
    await expect(r.createUnit(changed)).rejects.toBeInstanceOf(UnitExistsError);
    await expect(r.createUnit(changed)).rejects.toThrow(/a\.service already exists.*--replace/);
    expect(await r.createUnit(changed, { replace: true })).toBe('replaced');
    const got = await r.getUnit('a.service');
    expect(got?.hash).toBe(changed.hash);
    // replacing keeps the desired state
    expect(got?.desiredState).toBe('launched');
  });

  it('creates many units in few transactions, refusing all when one conflicts', async () => {
    const r = registry();
    await r.createUnit(unitRecord('taken.service', '[Service]\nExecStart=/bin/true\n'));
    const batch = Array.from({ length: 100 }, (_, i) => unitRecord(`b${i}.service`));
    await expect(r.createUnits([...batch, unitRecord('taken.service')])).rejects.toBeInstanceOf(UnitExistsError);
    expect(await r.listUnits()).toHaveLength(1);
    const results = await r.createUnits(batch, { desiredState: 'loaded' });
    expect([...results.values()].every((v) => v === 'created')).toBe(true);
    expect((await r.listUnits()).filter((u) => u.desiredState === 'loaded')).toHaveLength(100);
    const again = await r.createUnits(batch, { desiredState: 'loaded' });
    expect([...again.values()].every((v) => v === 'unchanged')).toBe(true);
  });

  it('sets desired state of many units, refusing unknown ones before writing anything', async () => {
    const r = registry();
    const names = Array.from({ length: 150 }, (_, i) => `u${i}.service`);
    for (const n of names) await r.createUnit(unitRecord(n));
    await expect(r.setDesiredState([...names.slice(0, 3), 'nope.service'], 'launched')).rejects.toThrow(
      /unit nope\.service does not exist/,
    );
    expect((await r.listUnits()).every((u) => u.desiredState === 'inactive')).toBe(true);
    await r.setDesiredState(names, 'launched');
    expect((await r.listUnits()).every((u) => u.desiredState === 'launched')).toBe(true);
  });

  it('keeps the global index in step with global units', async () => {
    const r = registry();
    await r.createUnit(unitRecord('g.service', '[X-Fleet]\nGlobal=true\n', true));
    await r.createUnit(unitRecord('p.service'));
    await r.setDesiredState(['g.service', 'p.service'], 'launched');
    expect(await r.listGlobalUnits()).toEqual([{ name: 'g.service', hash: expect.any(String), state: 'launched' }]);
    await r.destroyUnit('g.service');
    expect(await r.listGlobalUnits()).toEqual([]);
  });

  it('destroys a unit with its desired state, pending reason and states in one transaction', async () => {
    const r = registry();
    await r.createUnit(unitRecord('a.service'), { desiredState: 'launched' });
    const lease = await r.grantLease(10);
    await r.publishStates(
      [{ unit: 'a.service', machine: 'm1', hash: 'h', loadState: 'loaded', activeState: 'active', subState: 'running', since: '' }],
      lease,
    );
    await r.destroyUnit('a.service');
    expect(await r.getUnit('a.service')).toBeUndefined();
    expect(await r.listStates('a.service')).toEqual([]);
    const left = await r.listPrefix(r.keys.prefix);
    expect(left.items.map((kv) => kv.key)).toEqual([]);
    await expect(r.destroyUnit('a.service')).rejects.toBeInstanceOf(UnitNotFoundError);
    await lease.revoke();
  });

  it('destroys many units in a few transactions; an unknown one is refused after the others are gone', async () => {
    const r = registry();
    const names = Array.from({ length: 60 }, (_, i) => `many-${i}.service`);
    await r.createUnits(names.map((n) => unitRecord(n)), { desiredState: 'launched' });
    await expect(r.destroyUnits([...names, 'nope.service'])).rejects.toThrow(/unit nope.service does not exist/);
    expect((await r.listPrefix(r.keys.prefix)).items.map((kv) => kv.key)).toEqual([]);
    await r.createUnits(names.map((n) => unitRecord(n)));
    await r.destroyUnits(names);
    expect(await r.listUnits()).toEqual([]);
  });

  it('lists 10,000 units in pages within etcd request limits', async () => {
    const r = registry();
    const client = r.client;
    const text = '[Service]\nExecStart=/bin/sleep 1000\n' + '# padding\n'.repeat(20);
    // write directly in batches: this test is about reading
    for (let i = 0; i < 10_000; i += 100) {
      const ops = [];
      for (let j = i; j < i + 100; j++) {
        const name = `bulk-${String(j).padStart(5, '0')}.service`;
        ops.push(client.put(r.keys.unit(name)).value(JSON.stringify({ v: 1, name, text, hash: 'h', global: false })));
      }
      await client.if(r.keys.schema, 'Create', '>', -1).then(...ops).commit();
    }
    const units = await r.listUnits();
    expect(units).toHaveLength(10_000);
    expect(units[9_999]?.name).toBe('bulk-09999.service');
  });
});

describe('machines', () => {
  it('registers presence under a lease; expiry removes presence and states, metadata stays', async () => {
    const r = registry();
    const lease = await r.grantLease(1);
    await r.registerMachine(machine('m1'), lease);
    await r.setMetadata('m1', 'zone', 'a');
    await r.publishStates(
      [{ unit: 'x.service', machine: 'm1', hash: 'h', loadState: 'loaded', activeState: 'active', subState: 'running', since: '' }],
      lease,
    );
    expect((await r.listMachines()).map((m) => m.id)).toEqual(['m1']);
    lease.release(); // stop keep-alive: the lease expires after its TTL
    const deadline = Date.now() + 5_000;
    while ((await r.listMachines()).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(await r.listMachines()).toEqual([]);
    expect(await r.listStates()).toEqual([]);
    expect(await r.listMetadata()).toEqual(new Map([['m1', { zone: 'a' }]]));
  });

  it('refuses a duplicate machine ID with a message that names it', async () => {
    const r = registry();
    const l1 = await r.grantLease(10);
    const l2 = await r.grantLease(10);
    await r.registerMachine(machine('dup'), l1);
    const err = await r.registerMachine(machine('dup', { hostname: 'other', bootId: 'other-boot', publicIp: '127.0.0.12' }), l2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateMachineError);
    expect((err as Error).message).toMatch(/machine ID dup is already registered by host-dup \(127\.0\.0\.11\)/);
    await l1.revoke();
    await l2.revoke();
  });

  it('takes over presence left by an earlier run of the same host', async () => {
    const r = registry();
    const old = await r.grantLease(30);
    await r.registerMachine(machine('m2'), old);
    old.release(); // the earlier run died without withdrawing
    const fresh = await r.grantLease(30);
    await r.registerMachine(machine('m2'), fresh);
    const kv = await r.getRaw(r.keys.machine('m2'));
    expect(kv?.lease).toBe(fresh.id);
    await r.withdrawMachine('m2', fresh);
    expect(await r.listMachines()).toEqual([]);
    await fresh.revoke();
  });

  it('takes over presence left by an earlier run in one transaction: no revision shows the machine absent, old states stay', async () => {
    const r = registry();
    const key = r.keys.machine('m4');
    const old = await r.grantLease(30);
    await r.registerMachine(machine('m4'), old);
    const state = { unit: 'x.service', machine: 'm4', hash: 'h', loadState: 'loaded', activeState: 'active', subState: 'running', since: '' };
    await r.publishStates([state], old);
    const before = Number((await r.client.kv.range({ key: Buffer.from(key) })).header.revision);
    old.release(); // the earlier run was killed: no withdrawal, no revoke
    const fresh = await r.grantLease(30);
    await r.registerMachine(machine('m4'), fresh);
    const after = Number((await r.client.kv.range({ key: Buffer.from(key) })).header.revision);
    expect(after).toBeGreaterThan(before);
    // Every revision in between holds the record: the engine never sees the machine gone.
    for (let rev = before; rev <= after; rev++) {
      const res = await r.client.kv.range({ key: Buffer.from(key), revision: String(rev) });
      expect(res.kvs.length, `machine record at revision ${rev}`).toBe(1);
    }
    expect((await r.getRaw(key))?.lease).toBe(fresh.id);
    // The states the earlier run published stay until the agent republishes them (or the old lease expires).
    expect((await r.listStates()).map((s) => s.unit)).toEqual(['x.service']);
    await r.client.leaseClient.leaseRevoke({ ID: old.id }).catch(() => undefined);
    await fresh.revoke();
  });

  it('reports the presence of every machine, an unreadable record as present without its record', async () => {
    const r = registry();
    const lease = await r.grantLease(30);
    await r.registerMachine(machine('m3', { metadata: { role: 'db' } }), lease);
    await r.client.put(r.keys.machine('future')).value(JSON.stringify({ v: 2, id: 'future' }));
    const present = await machinePresence(r);
    expect([...present.keys()].sort()).toEqual(['future', 'm3']);
    expect(present.get('m3')?.metadata).toEqual({ role: 'db' });
    expect(present.has('future')).toBe(true);
    expect(present.get('future')).toBeUndefined();
    // listMachines, by contrast, leaves the unreadable one out
    expect((await r.listMachines()).map((m) => m.id)).toEqual(['m3']);
    await lease.revoke();
  });
});

describe('leadership and fenced plans', () => {
  const place = (unit: string, m = 'm1'): PlanOp => ({
    type: 'place',
    decision: { unit, machine: m, hash: 'h', state: 'launched' },
  });

  it('commits a plan of many decisions in few transactions', async () => {
    const r = registry();
    const lease = await r.grantLease(10);
    const token = await r.tryLead('e1', lease);
    expect(token).toBeDefined();
    const ops = Array.from({ length: 1_000 }, (_, i) => place(`u${i}.service`, `m${i % 7}`));
    const { txns, revision } = await r.applyPlan(token!, ops);
    // a decision and a placement key per unit: 63 units per transaction
    expect(txns).toBe(Math.ceil(1_000 / 63));
    expect(revision).toBeGreaterThan(0);
    expect(await r.listDecisions()).toHaveLength(1_000);
    expect(await r.listDecisions('m3')).toHaveLength(Math.ceil((1_000 - 3) / 7));
    await r.applyPlan(token!, [{ type: 'unplace', machine: 'm0', unit: 'u0.service' }]);
    expect(await r.listDecisions()).toHaveLength(999);
    await lease.revoke();
  });

  it("writes nothing of a deposed leader's late plan", async () => {
    const r = registry();
    const l1 = await r.grantLease(10);
    const t1 = await r.tryLead('e1', l1);
    expect(t1).toBeDefined();
    const l2 = await r.grantLease(10);
    expect(await r.tryLead('e2', l2)).toBeUndefined();
    await r.applyPlan(t1!, [place('before.service')]);
    // e1 loses its lease (as if partitioned past its TTL); e2 takes over
    await l1.revoke();
    const t2 = await r.tryLead('e2', l2);
    expect(t2).toBeDefined();
    expect((await r.getLeader())?.id).toBe('e2');
    await expect(r.applyPlan(t1!, [place('late.service'), place('late2.service')])).rejects.toBeInstanceOf(NotLeaderError);
    expect((await r.listDecisions()).map((d) => d.unit)).toEqual(['before.service']);
    await r.applyPlan(t2!, [place('after.service')]);
    await r.resign(t2!);
    expect(await r.getLeader()).toBeUndefined();
    await l2.revoke();
  });
});

describe('schema, corrupt values, connection', () => {
  it('writes the schema at first start and refuses a newer layout', async () => {
    const r = registry();
    expect(await r.ensureSchema('test')).toBe(1);
    expect(await r.ensureSchema('test')).toBe(1);
    await r.client.put(r.keys.schema).value(JSON.stringify({ v: 1, layout: 99, writtenBy: 'future' }));
    const err = await r.ensureSchema('test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(/layout version 99, newer than this flotilla understands \(1\)/);
  });

  it('skips corrupt and foreign values instead of failing', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/log.js');
    const r = testRegistry(etcd.endpoints, { logger: createLogger('test', { write: (l) => lines.push(l) }) });
    opened.push(r);
    await r.createUnit(unitRecord('good.service'));
    await r.client.put(r.keys.unit('bad.service')).value('{not json');
    await r.client.put(r.keys.unit('old.service')).value(JSON.stringify({ v: 0, name: 'old.service' }));
    await r.client.put(r.keys.machine('weird')).value(JSON.stringify({ v: 1, id: 5 }));
    expect((await r.listUnits()).map((u) => u.name)).toEqual(['good.service']);
    expect(await r.listMachines()).toEqual([]);
    expect(lines.join('')).toMatch(/bad\.service.*not JSON/);
    expect(lines.join('')).toMatch(/old\.service.*record version 0/);
  });

  it('names the endpoints of an unreachable etcd within the request timeout', async () => {
    const [port] = await freePorts('127.0.0.1', 1);
    const endpoint = `http://127.0.0.1:${port}`;
    const r = Registry.connect({ endpoints: [endpoint], requestTimeoutMs: 1_000 });
    opened.push(r);
    const started = Date.now();
    const err = await r.listUnits().catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toContain(endpoint);
    // bounded by the timeout (plus scheduling slack), never a hang
    expect(elapsed).toBeLessThan(5_000);
  });

  it('keeps every key under its prefix', async () => {
    const r = registry();
    await r.createUnit(unitRecord('a.service'));
    const raw = new Etcd3({ hosts: etcd.endpoints });
    try {
      const keys = await raw.getAll().prefix(r.keys.prefix).keys();
      expect(keys.sort()).toEqual([r.keys.desired('a.service'), r.keys.unit('a.service')].sort());
      expect(new Keys('x').prefix).toBe('/x/');
    } finally {
      raw.close();
    }
  });
});
