import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { Engine } from '../../src/engine/engine.js';
import { createLogger } from '../../src/log.js';
import { Informer, decode, listDuplicates, machineHolder, type MachineRecord, type Registry, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { startProxy } from '../helpers/proxy.js';
import { testRegistry } from '../helpers/registry.js';

// An agent acts on its schedule only while it holds its presence (its
// machine record under its own lease): two hosts with one machine ID, and a
// record deleted behind an agent's back. Real etcd, fake systemd.
const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ID = 'c'.repeat(32);
function machine(hostname: string, publicIp: string): MachineRecord {
  return { id: ID, publicIp, metadata: {}, version: 'test', hostname, bootId: `boot-${hostname}`, since: '' };
}

function unit(name: string, extra = ''): UnitRecord {
  const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n${extra}`);
  return { name, text: p.text, hash: p.hash, global: p.requirements.global };
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('t', { level: 'info', write: (l) => lines.push(l) }) };
}

async function withEngine(registry: Registry): Promise<void> {
  const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
  engine.start();
  cleanups.push(() => engine.stop());
}

describe('presence', () => {
  it('a host that lost its machine ID to another live host stops its units, starts none, and does not take the ID back', async () => {
    const registry = testRegistry(etcd.endpoints);
    cleanups.push(() => registry.close());
    const proxy = await startProxy(etcd.endpoints[0]!);
    cleanups.push(() => proxy.close());
    const viaProxy = testRegistry([proxy.url], { prefix: registry.keys.prefix });
    cleanups.push(() => viaProxy.close());
    await withEngine(registry);

    const loserLog = capture();
    const loserSystemd = new FakeSystemd();
    const loser = new Agent({ registry: viaProxy, systemd: loserSystemd, machine: machine('host-a', '127.0.0.21'), ttlSeconds: 2, batchDelayMs: 1, logger: loserLog.logger });
    await loser.start();
    cleanups.push(() => loser.stop({ purge: false }));
    await registry.createUnits([unit('u1.service'), unit('g1.service', '[X-Fleet]\nGlobal=true\n')], { desiredState: 'launched' });
    await eventually(() => loserSystemd.running().join() === 'g1.service,u1.service', 'the first host runs u1 and g1');

    // Cut off longer than its TTL: its record expires and another host with the same ID registers.
    proxy.cut();
    await eventually(async () => (await machineHolder(registry, ID)) === undefined, 'the record expired');
    const winnerSystemd = new FakeSystemd();
    const winner = new Agent({ registry, systemd: winnerSystemd, machine: machine('host-b', '127.0.0.22'), ttlSeconds: 2, batchDelayMs: 1 });
    await winner.start();
    cleanups.push(() => winner.stop({ purge: false }));
    await eventually(() => winnerSystemd.running().join() === 'g1.service,u1.service', 'the second host runs u1 and g1');
    proxy.restore();

    // The loser stands down: its non-global unit stops, the global one stays.
    await eventually(() => loserSystemd.running().join() === 'g1.service', 'the loser stopped u1');
    await registry.createUnits([unit('u2.service')], { desiredState: 'launched' });
    await eventually(() => winnerSystemd.running().includes('u2.service'), 'the winner runs u2');
    await sleep(1_500);
    expect(loserSystemd.calls).not.toContain('start u2.service');
    expect(loserSystemd.running()).toEqual(['g1.service']);
    expect(loserLog.lines.filter((l) => l.includes('held by another live host'))).toHaveLength(1);
    // list-machines tells why: the loser's entry, under its own lease.
    await eventually(async () => (await listDuplicates(registry)).get(ID)?.[0]?.hostname === 'host-a', 'the loser reported itself');

    // No flapping: the record is not rewritten while both keep running.
    const holder = await machineHolder(registry, ID);
    expect(holder?.record?.hostname).toBe('host-b');
    const watch = new Informer(registry, registry.keys.machine(ID), decode.machine);
    await watch.start();
    let rewrites = 0;
    watch.subscribe((events) => (rewrites += events.length));
    cleanups.push(() => watch.stop());
    await sleep(10_000);
    expect(rewrites).toBe(0);
    expect((await machineHolder(registry, ID))?.lease).toBe(holder?.lease);
    expect(loserSystemd.calls).not.toContain('start u2.service');
    expect(loserSystemd.calls.filter((c) => c === 'start u1.service')).toHaveLength(1);

    // Once the other host is gone, the ID is free: the first host takes it and acts again.
    await winner.stop({ purge: false });
    await eventually(async () => (await machineHolder(registry, ID))?.record?.hostname === 'host-a', 'the first host registered again');
    await eventually(() => loserSystemd.running().join() === 'g1.service,u1.service,u2.service', 'the first host runs u1 and u2 again');
    expect((await listDuplicates(registry)).size).toBe(0);
  }, 60_000);

  it('an agent whose record is deleted stops acting, registers again, then acts again, its units running throughout', async () => {
    const registry = testRegistry(etcd.endpoints);
    cleanups.push(() => registry.close());
    // Decisions written by a stand-in leader, not an engine: an engine would
    // itself unschedule the units of a machine whose record is gone.
    const leaderLease = await registry.grantLease(10);
    cleanups.push(() => leaderLease.revoke());
    const token = (await registry.tryLead('test', leaderLease))!;
    const place = async (u: UnitRecord): Promise<void> => {
      await registry.createUnits([u], { desiredState: 'launched' });
      await registry.applyPlan(token, [{ type: 'place', decision: { unit: u.name, machine: ID, hash: u.hash, state: 'launched' } }]);
    };
    const log = capture();
    const systemd = new FakeSystemd();
    const agent = new Agent({ registry, systemd, machine: machine('host-a', '127.0.0.21'), ttlSeconds: 10, batchDelayMs: 1, logger: log.logger });
    await agent.start();
    cleanups.push(() => agent.stop({ purge: false }));
    await place(unit('d1.service'));
    await eventually(() => systemd.running().join() === 'd1.service', 'd1 runs');
    const before = await machineHolder(registry, ID);

    await registry.client.delete().key(registry.keys.machine(ID));
    await eventually(async () => (await machineHolder(registry, ID))?.lease === before?.lease, 'registered again under its lease');
    const order = (): string[] => log.lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m.startsWith('machine '));
    // The record is back a moment before the agent hears that its write succeeded.
    await eventually(() => order().length === 2, 'the agent logged both changes');
    expect(order()).toEqual([
      'machine presence lost; not acting on the schedule until registered again (units keep running)',
      'machine registered again; acting on its schedule',
    ]);

    await place(unit('d2.service'));
    await eventually(() => systemd.running().join() === 'd1.service,d2.service', 'd2 started after registering again');
    expect(systemd.calls.filter((c) => c.startsWith('stop '))).toEqual([]);
  }, 30_000);
});
