import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { Engine } from '../../src/engine/engine.js';
import { FENCE_MARGIN_MS } from '../../src/engine/fence.js';
import { createLogger } from '../../src/log.js';
import { machineHolder, type MachineRecord, type Registry, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { startProxy, type CuttableProxy } from '../helpers/proxy.js';
import { testRegistry } from '../helpers/registry.js';

// Self-fencing across a cut (issue 15.5): one agent's etcd traffic goes
// through a proxy the test cuts. With a fence, the cut agent stops its units
// after the fence and the engine places them elsewhere only after that, so
// the two copies never overlap; without one (the default), the cut agent
// keeps its units running, as fleet did. Real etcd and engine; the agents'
// systemd is the fake one, which records when each job was queued.
const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const TTL = 2;

/** A fake systemd that notes when each start and stop job was queued (Date.now()). */
class TimedSystemd extends FakeSystemd {
  readonly started = new Map<string, number>();
  readonly stopped = new Map<string, number>();
  override async queueStart(name: string): Promise<string> {
    this.started.set(name, Date.now());
    return super.queueStart(name);
  }
  override async queueStop(name: string): Promise<string> {
    this.stopped.set(name, Date.now());
    return super.queueStop(name);
  }
}

function machine(id: string, fenceAfter: number | undefined): MachineRecord {
  const r: MachineRecord = { id, publicIp: '127.0.0.1', metadata: {}, version: 'test', hostname: id.slice(0, 4), bootId: `boot-${id}`, since: '' };
  if (fenceAfter !== undefined) r.fenceAfter = fenceAfter;
  return r;
}

function unit(name: string, xfleet = ''): UnitRecord {
  const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n${xfleet ? `\n[X-Fleet]\n${xfleet}\n` : ''}`);
  return { name, text: p.text, hash: p.hash, global: p.requirements.global };
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Cluster {
  registry: Registry;
  proxy: CuttableProxy;
  a: TimedSystemd;
  b: TimedSystemd;
  logs: string[];
  startB: () => Promise<void>;
}

/** An engine and machine A (through the proxy) running `units`; machine B is started by startB(). */
async function cluster(fenceAfter: number | undefined, units: UnitRecord[]): Promise<Cluster> {
  const registry = testRegistry(etcd.endpoints);
  cleanups.push(() => registry.close());
  const proxy = await startProxy(etcd.endpoints[0]!);
  cleanups.push(() => proxy.close());
  const viaProxy = testRegistry([proxy.url], { prefix: registry.keys.prefix });
  cleanups.push(() => viaProxy.close());
  const engine = new Engine({ registry, id: 'engine', leaseTtlSeconds: 5, batchDelayMs: 1 });
  engine.start();
  cleanups.push(() => engine.stop());
  const logs: string[] = [];
  const logger = createLogger('a', { level: 'info', write: (l) => logs.push(l) });
  const a = new TimedSystemd();
  const agentA = new Agent({ registry: viaProxy, systemd: a, machine: machine(A, fenceAfter), ttlSeconds: TTL, batchDelayMs: 1, logger });
  await agentA.start();
  cleanups.push(() => agentA.stop({ purge: false }));
  await registry.createUnits(units, { desiredState: 'launched' });
  const names = units.map((u) => u.name).sort().join();
  await eventually(() => a.running().join() === names, 'A runs every unit');
  const b = new TimedSystemd();
  const startB = async (): Promise<void> => {
    const agentB = new Agent({ registry, systemd: b, machine: machine(B, fenceAfter), ttlSeconds: TTL, batchDelayMs: 1 });
    await agentB.start();
    cleanups.push(() => agentB.stop({ purge: false }));
  };
  return { registry, proxy, a, b, logs, startB };
}

describe('self-fencing across a cut from etcd', () => {
  it('with a fence, the cut machine stops its units after the fence, before the engine starts them elsewhere', async () => {
    const FENCE = 3;
    const c = await cluster(FENCE, [unit('f1.service'), unit('f2.service', 'FenceAfter=5s'), unit('f0.service', 'FenceAfter=0'), unit('g.service', 'Global=true')]);
    // The engine wrote each unit's effective fence into its decision.
    const fences = new Map((await c.registry.listDecisions(A)).map((d) => [d.unit, d.fenceAfter]));
    expect(Object.fromEntries(fences)).toEqual({ 'f0.service': undefined, 'f1.service': 3, 'f2.service': 5 });
    await c.startB();
    await eventually(() => c.b.running().join() === 'g.service', 'B runs the global unit');

    const cut = Date.now();
    c.proxy.cut();
    await eventually(() => ['f0.service', 'f1.service', 'f2.service'].every((u) => c.b.running().includes(u)), 'B runs every unit');

    // A stopped each fenced unit about its fence after the last ack etcd sent
    // it (keepalives are answered every TTL/3, so that ack is up to TTL/3 before the cut).
    for (const [u, fence] of [['f1.service', 3], ['f2.service', 5]] as const) {
      const stoppedAt = c.a.stopped.get(u);
      expect(stoppedAt, `${u} stopped on A`).toBeDefined();
      expect(stoppedAt! - cut).toBeGreaterThanOrEqual(fence * 1000 - (TTL * 1000) / 3 - 100);
      expect(stoppedAt! - cut).toBeLessThan(fence * 1000 + 1_000);
      // ... and B started it only after that, and no sooner than fence + margin after the cut.
      const startedAt = c.b.started.get(u)!;
      expect(stoppedAt!).toBeLessThan(startedAt);
      expect(startedAt - cut).toBeGreaterThanOrEqual(fence * 1000 + FENCE_MARGIN_MS);
    }
    // A unit with FenceAfter=0 is not fenced: it moved as soon as A was gone and runs on A too.
    expect(c.b.started.get('f0.service')! - cut).toBeLessThan(FENCE * 1000);
    expect(c.a.running()).toEqual(['f0.service', 'g.service']);
    expect(c.logs.some((l) => l.includes('stopping units (self-fencing)'))).toBe(true);

    // etcd back: A registers again, reads its schedule up to date and starts nothing it lost.
    c.proxy.restore();
    await eventually(async () => (await machineHolder(c.registry, A)) !== undefined, 'A registered again');
    await eventually(() => c.a.running().join() === 'g.service', 'A unloaded what moved away');
    await sleep(1_000);
    for (const u of ['f1.service', 'f2.service']) expect(c.a.calls.filter((x) => x === `start ${u}`)).toHaveLength(1);
  }, 90_000);

  it('without a fence (the default), the cut machine keeps its units running while the engine places them elsewhere', async () => {
    const c = await cluster(undefined, [unit('u1.service'), unit('u2.service', 'FenceAfter=1s')]);
    // An agent that publishes no fence fences nothing, whatever the unit says.
    expect((await c.registry.listDecisions(A)).map((d) => d.fenceAfter)).toEqual([undefined, undefined]);
    await c.startB();
    const cut = Date.now();
    c.proxy.cut();
    await eventually(() => c.b.running().join() === 'u1.service,u2.service', 'B runs both units');
    // Placed as soon as A's lease expired, no hold.
    expect(c.b.started.get('u1.service')! - cut).toBeLessThan(TTL * 1000 * 2 + 1_000);
    await sleep(3_000);
    expect(c.a.running()).toEqual(['u1.service', 'u2.service']);
    expect(c.a.stopped.size).toBe(0);
  }, 60_000);
});
