import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { Engine } from '../../src/engine/engine.js';
import { DuplicateMachineError, type MachineRecord, type Registry, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { testRegistry } from '../helpers/registry.js';

// The agent's reconciler logic against a real registry and engine, with a
// fake systemd (real systemd: test/e2e/agent.test.ts).
const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ID = 'a'.repeat(32);
function machine(id = ID, metadata: Record<string, string> = { role: 'web' }): MachineRecord {
  return { id, publicIp: '127.0.0.11', metadata, version: 'test', hostname: `h-${id.slice(0, 4)}`, bootId: `b-${id}`, since: '' };
}

function unit(name: string, body = 'ExecStart=/bin/sleep infinity', extra = ''): UnitRecord {
  const p = parseUnit(name, `[Service]\n${body}\n${extra}`);
  return { name, text: p.text, hash: p.hash, global: p.requirements.global };
}

async function cluster(opts: { metadata?: Record<string, string> } = {}): Promise<{ registry: Registry; systemd: FakeSystemd; agent: Agent }> {
  const registry = testRegistry(etcd.endpoints);
  cleanups.push(() => registry.close());
  const systemd = new FakeSystemd();
  const agent = new Agent({ registry, systemd, machine: machine(ID, opts.metadata), ttlSeconds: 10, batchDelayMs: 1 });
  await agent.start();
  cleanups.push(() => agent.stop({ purge: false }));
  const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
  engine.start();
  cleanups.push(() => engine.stop());
  return { registry, systemd, agent };
}

async function stateOf(registry: Registry, name: string): Promise<string | undefined> {
  return (await registry.listStates(name))[0]?.activeState;
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent', () => {
  it('loads, starts, stops and unloads units as their desired state changes, and publishes states', async () => {
    const { registry, systemd } = await cluster();
    await registry.createUnits([unit('a.service'), unit('b.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'a.service')) === 'active' && (await stateOf(registry, 'b.service')) === 'active', 'both active');
    expect(systemd.running()).toEqual(['a.service', 'b.service']);
    expect(systemd.calls.filter((c) => c === 'reload')).toEqual([]);

    await registry.setDesiredState(['a.service'], 'loaded');
    await eventually(async () => (await stateOf(registry, 'a.service')) === 'inactive', 'a stopped');
    expect(systemd.units.get('a.service')?.file).toBeDefined();

    await registry.setDesiredState(['a.service'], 'inactive');
    await eventually(() => systemd.units.get('a.service')?.file === undefined, 'a unloaded');
    await eventually(async () => (await registry.listStates('a.service')).length === 0, 'a state removed');
    expect(systemd.calls.filter((c) => c.endsWith(' a.service'))).toEqual([
      'write a.service',
      'start a.service',
      'stop a.service',
      'disable a.service',
      'reset-failed a.service',
      'remove a.service',
    ]);
    await registry.destroyUnit('b.service');
    await eventually(() => systemd.units.get('b.service')?.file === undefined, 'b unloaded after destroy');
  });

  it('replaces a unit whose file changed: unload, load, one reload, start', async () => {
    const { registry, systemd } = await cluster();
    await registry.createUnits([unit('r.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'r.service')) === 'active', 'active');
    const v2 = unit('r.service', 'ExecStart=/bin/sleep 1000000');
    await registry.createUnit(v2, { replace: true });
    await eventually(async () => (await registry.listStates('r.service'))[0]?.hash === v2.hash, 'new hash published');
    expect(systemd.units.get('r.service')?.file).toBe(v2.text);
    expect(systemd.calls.filter((c) => c === 'reload')).toHaveLength(1);
    expect(systemd.running()).toEqual(['r.service']);
  });

  it('reports a unit that fails to start while the others start', async () => {
    const { registry, systemd } = await cluster();
    systemd.failing.add('bad.service');
    await registry.createUnits([unit('bad.service'), unit('good-1.service'), unit('good-2.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'bad.service')) === 'failed', 'bad reported failed');
    await eventually(async () => (await stateOf(registry, 'good-2.service')) === 'active', 'good active');
    expect(systemd.running()).toEqual(['good-1.service', 'good-2.service']);
  });

  it('fires jobs without waiting: a unit still activating holds up no other start, stop or unload', async () => {
    const { registry, systemd } = await cluster();
    await registry.createUnits([unit('third.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'third.service')) === 'active', 'third active');
    systemd.slow.add('slow.service');
    await registry.createUnits([unit('slow.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'slow.service')) === 'activating', 'slow activating');

    await registry.createUnits([unit('next.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'next.service')) === 'active', 'next active while slow activates');
    await registry.setDesiredState(['third.service'], 'loaded');
    await eventually(async () => (await stateOf(registry, 'third.service')) === 'inactive', 'third stopped while slow activates');
    // the start in flight was not queued again by the passes meanwhile
    expect(systemd.calls.filter((c) => c === 'start slow.service')).toHaveLength(1);

    // its job's end arrives as a state, and is published
    systemd.finish('slow.service');
    await eventually(async () => (await stateOf(registry, 'slow.service')) === 'active', 'slow active when its job ends');
  });

  it('unloads a unit whose start is in flight only after its stop, and starts a replaced one again', async () => {
    const { registry, systemd } = await cluster();
    systemd.slow.add('s.service');
    await registry.createUnits([unit('s.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 's.service')) === 'activating', 'activating');
    const v2 = unit('s.service', 'ExecStart=/bin/sleep 1000000');
    systemd.slow.delete('s.service');
    await registry.createUnit(v2, { replace: true });
    await eventually(async () => (await registry.listStates('s.service'))[0]?.hash === v2.hash, 'v2 published');
    await eventually(async () => (await stateOf(registry, 's.service')) === 'active', 'v2 active');
    expect(systemd.units.get('s.service')?.file).toBe(v2.text);
    // stop (canceling the start), and only then remove, write, reload, start
    expect(systemd.calls.filter((c) => c.endsWith(' s.service') || c === 'reload')).toEqual([
      'write s.service',
      'link s.service',
      'start s.service',
      'stop s.service',
      'disable s.service',
      'reset-failed s.service',
      'remove s.service',
      'write s.service',
      'link s.service',
      'reload',
      'start s.service',
    ]);

    systemd.slow.add('s.service');
    await registry.setDesiredState(['s.service'], 'loaded');
    await eventually(async () => (await stateOf(registry, 's.service')) === 'inactive', 'stopped');
    await registry.setDesiredState(['s.service'], 'launched');
    await eventually(async () => (await stateOf(registry, 's.service')) === 'activating', 'activating again');
    await registry.destroyUnit('s.service');
    await eventually(() => systemd.units.get('s.service')?.file === undefined, 'unloaded');
    expect(systemd.calls.filter((c) => c.endsWith(' s.service')).slice(-4)).toEqual([
      'stop s.service',
      'disable s.service',
      'reset-failed s.service',
      'remove s.service',
    ]);
  });

  it('runs global units whose metadata matches, and only those', async () => {
    const { registry, systemd } = await cluster({ metadata: { role: 'web' } });
    await registry.createUnits(
      [
        unit('g-all.service', 'ExecStart=/bin/sleep infinity', '[X-Fleet]\nGlobal=true\n'),
        unit('g-db.service', 'ExecStart=/bin/sleep infinity', '[X-Fleet]\nGlobal=true\nMachineMetadata=role=db\n'),
      ],
      { desiredState: 'launched' },
    );
    await eventually(() => systemd.running().includes('g-all.service'), 'global running');
    expect(systemd.units.get('g-db.service')?.file).toBeUndefined();
  });

  it('publishes a crash reported by systemd without restarting the unit itself', async () => {
    const { registry, systemd } = await cluster();
    await registry.createUnits([unit('c.service')], { desiredState: 'launched' });
    await eventually(async () => (await stateOf(registry, 'c.service')) === 'active', 'active');
    systemd.crash('c.service');
    await eventually(async () => (await stateOf(registry, 'c.service')) === 'failed', 'crash published');
    expect(systemd.calls.filter((c) => c === 'start c.service')).toHaveLength(1);
  });

  it('on purge stops and unloads every unit and withdraws the machine', async () => {
    const registry = testRegistry(etcd.endpoints);
    cleanups.push(() => registry.close());
    const systemd = new FakeSystemd();
    const agent = new Agent({ registry, systemd, machine: machine(), ttlSeconds: 10, batchDelayMs: 1 });
    await agent.start();
    const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
    engine.start();
    cleanups.push(() => engine.stop());
    await registry.createUnits([unit('p1.service'), unit('p2.service')], { desiredState: 'launched' });
    await eventually(() => systemd.running().length === 2, 'running');
    await agent.stop({ purge: true });
    expect(systemd.running()).toEqual([]);
    expect([...systemd.units.values()].every((u) => u.file === undefined)).toBe(true);
    expect(await registry.listMachines()).toEqual([]);
    expect(await registry.listStates()).toEqual([]);
  });

  it('a stop without purge (shutdown=keep) and a new run move nothing: units not restarted, machine never absent, states republished', async () => {
    const registry = testRegistry(etcd.endpoints);
    cleanups.push(() => registry.close());
    const systemd = new FakeSystemd();
    const first = new Agent({ registry, systemd, machine: machine(), ttlSeconds: 10, batchDelayMs: 1 });
    await first.start();
    // Another daemon leads the engine, and it keeps running throughout.
    const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
    engine.start();
    cleanups.push(() => engine.stop());
    const names = ['k1.service', 'k2.service', 'k3.service'];
    await registry.createUnits(names.map((n) => unit(n)), { desiredState: 'launched' });
    await eventually(async () => (await registry.listStates()).filter((s) => s.activeState === 'active').length === 3, 'all active');
    const schedule = async (): Promise<string[]> =>
      (await registry.listPrefix(registry.keys.scheduleOf(ID))).items.map((kv) => `${kv.key}@${kv.modRevision}`).sort();
    const decisions = await schedule();
    expect(decisions).toHaveLength(3);
    const key = registry.keys.machine(ID);
    const before = Number((await registry.client.kv.range({ key: Buffer.from(key) })).header.revision);
    const oldLease = (await registry.getRaw(key))?.lease;

    await first.stop({ purge: false });
    expect(systemd.running()).toEqual(names);
    // Time for the engine to act on an absent machine, as systemd's RestartSec would give it.
    await new Promise((r) => setTimeout(r, 500));
    const callsBefore = systemd.calls.length;
    const second = new Agent({ registry, systemd, machine: machine(), ttlSeconds: 10, batchDelayMs: 1 });
    await second.start();
    cleanups.push(() => second.stop({ purge: false }));
    await eventually(async () => (await registry.listStates()).every((s) => s.activeState === 'active' && s.unit.startsWith('k')), 'states');
    await eventually(async () => {
      const kvs = (await registry.listPrefix(registry.keys.statesPrefix)).items;
      return kvs.length === 3 && kvs.every((kv) => kv.lease !== oldLease);
    }, 'states republished under the new lease');
    await second.whenIdle();

    expect(systemd.running()).toEqual(names);
    expect(systemd.calls.slice(callsBefore).filter((c) => /^(start|stop|remove) /.test(c))).toEqual([]);
    expect(await schedule()).toEqual(decisions);
    const after = Number((await registry.client.kv.range({ key: Buffer.from(key) })).header.revision);
    for (let rev = before; rev <= after; rev++) {
      const res = await registry.client.kv.range({ key: Buffer.from(key), revision: String(rev) });
      expect(res.kvs.length, `machine record at revision ${rev}`).toBe(1);
    }
  });

  it('on purge (shutdown=drain) every unit already runs on another machine when the stop returns', async () => {
    const registry = testRegistry(etcd.endpoints);
    cleanups.push(() => registry.close());
    const systemd = new FakeSystemd();
    const agent = new Agent({ registry, systemd, machine: machine(), ttlSeconds: 10, batchDelayMs: 1 });
    await agent.start();
    const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
    engine.start();
    cleanups.push(() => engine.stop());
    const names = ['m1.service', 'm2.service', 'm3.service'];
    await registry.createUnits(names.map((n) => unit(n)), { desiredState: 'launched' });
    await eventually(() => systemd.running().length === 3, 'running here');
    const OTHER = 'b'.repeat(32);
    const otherSystemd = new FakeSystemd();
    const other = new Agent({ registry, systemd: otherSystemd, machine: machine(OTHER), ttlSeconds: 10, batchDelayMs: 1 });
    await other.start();
    cleanups.push(() => other.stop({ purge: false }));
    await agent.stop({ purge: true });
    expect(otherSystemd.running()).toEqual(names);
    expect(systemd.running()).toEqual([]);
    expect((await registry.listMachines()).map((m) => m.id)).toEqual([OTHER]);
    expect(await registry.listDraining()).toEqual([]);
  });

  it('refuses a duplicate machine ID with a clear message', async () => {
    const { registry } = await cluster();
    const other = new Agent({
      registry,
      systemd: new FakeSystemd(),
      machine: { ...machine(), hostname: 'another-host', bootId: 'another-boot', publicIp: '127.0.0.12' },
      ttlSeconds: 10,
    });
    const err = await other.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateMachineError);
    expect((err as Error).message).toContain(ID);
  });
});
