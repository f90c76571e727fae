// fleet's functional suite, machines coming and going, on one lab cluster
// whose membership changes scenario by scenario (3 nodes at first):
//   a node cut off from etcd keeps its units running;
//   a node shut down cleanly: its units move, nothing else churns;
//   a node joining: global units come to it, new units go to it;
//   a node killed abruptly: its units run elsewhere within agent_ttl + 2 s;
//   the engine leader killed: another daemon leads and schedules.
// Every check reads systemd inside the nodes (is-active, MainPID).
//
// Cutting one node off: the nodes share the host's network namespace, so
// nothing at the network level can separate one node's flotillad from etcd
// without touching the host's firewall. Instead that node's flotillad talks
// to etcd through a TCP proxy on loopback (test/helpers/proxy.ts): its
// flotilla.conf is pointed at the proxy and flotillad restarted before any
// unit runs, and cutting the proxy drops and refuses only that node's
// connections, while etcd and the other nodes carry on.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNodes } from '../../src/lab/nodes.js';
import { eventually, LabCluster, AGENT_TTL_S } from '../helpers/lab-cluster.js';
import { startProxy, type CuttableProxy } from '../helpers/proxy.js';

const svc = (exec: string, fleet = ''): string => `[Service]\nExecStart=/bin/sleep ${exec}\n${fleet ? `\n[X-Fleet]\n${fleet}\n` : ''}`;

describe.skipIf(skipWithoutNodes('failure scenarios (test/e2e/scenarios-failures.test.ts)'))('scenarios: machines failing, leaving and joining', () => {
  let c: LabCluster;
  let proxy: CuttableProxy | undefined;

  beforeAll(async () => {
    c = await LabCluster.start({ nodes: 3 });
  });
  afterAll(async () => {
    proxy?.cut();
    await c?.close();
    await proxy?.close();
  });
  afterEach(async () => {
    proxy?.restore();
    await c?.destroyAll();
  });

  /** unit → [node, MainPID] for every running node where it is active. */
  const snapshot = async (units: string[]): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const u of units) {
      out[u] = [];
      for (const n of await c.activeOn(u)) out[u].push(`${n}:${await c.show(n, u, 'MainPID')}`);
    }
    return out;
  };
  const machines = async (): Promise<string[]> =>
    (await c.registry.listMachines())
      .map((m) => c.nameOf(m.id) ?? m.id)
      .sort();

  it('a node cut off from etcd keeps its units running; back, it keeps its pinned unit and gives up the one that moved', async () => {
    // The node with the lowest machine ID gets the first unit (least loaded, ties by ID).
    const cut = [...c.running()].sort((a, b) => (c.machineId(a) < c.machineId(b) ? -1 : 1))[0]!;
    proxy = await startProxy(c.endpoint, c.hostIp);
    const before = await c.show(cut, 'flotillad.service', 'MainPID');
    await c.exec(cut, ['sed', '-i', `s|^etcd_servers=.*|etcd_servers=${proxy.url}|`, '/etc/flotilla/flotilla.conf']);
    await c.exec(cut, ['systemctl', 'restart', 'flotillad.service'], { timeoutMs: 60_000 });
    await eventually(
      async () => (await c.show(cut, 'flotillad.service', 'MainPID')) !== before && (await machines()).includes(cut),
      `${cut}'s flotillad back, through the proxy`,
    );

    c.writeUnit('roams.service', svc('4001'));
    c.writeUnit('pinned.service', svc('4002', `MachineID=${c.machineId(cut)}`));
    await c.ctl('start', 'roams.service');
    await c.ctl('start', 'pinned.service');
    expect(await c.activeOn('roams.service')).toEqual([cut]);
    expect(await c.activeOn('pinned.service')).toEqual([cut]);
    const pids = await snapshot(['roams.service', 'pinned.service']);

    proxy.cut();
    const cutAt = Date.now();
    // Its machine expires (agent_ttl); the engine moves the roaming unit away.
    await eventually(async () => !(await machines()).includes(cut), `${cut}'s machine expired`, 15_000);
    await eventually(async () => (await c.activeOn('roams.service')).some((n) => n !== cut), 'roams.service started elsewhere', 15_000);
    const elsewhere = (await c.activeOn('roams.service')).find((n) => n !== cut)!;
    // Cut off for longer than agent_ttl: what it runs keeps running, untouched.
    const left = (AGENT_TTL_S + 2) * 1000 - (Date.now() - cutAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    expect(await c.isActive(cut, 'pinned.service')).toBe('active');
    expect(await c.isActive(cut, 'roams.service')).toBe('active');
    expect(await snapshot(['pinned.service'])).toEqual({ 'pinned.service': pids['pinned.service'] });
    expect(`${cut}:${await c.show(cut, 'roams.service', 'MainPID')}`).toBe(pids['roams.service']![0]);

    proxy.restore();
    await eventually(async () => (await machines()).includes(cut), `${cut} registered again`, 20_000);
    // it stops what is no longer its own; the pinned unit ran on throughout
    await eventually(async () => (await c.activeOn('roams.service')).join() === elsewhere, `roams.service only on ${elsewhere}`, 20_000);
    await eventually(
      async () => (await c.registry.listStates('pinned.service')).some((s) => s.machine === c.machineId(cut) && s.activeState === 'active'),
      'pinned.service reported again',
      20_000,
    );
    expect(await snapshot(['pinned.service'])).toEqual({ 'pinned.service': pids['pinned.service'] });
  });

  const UNITS = ['s-1.service', 's-2.service', 's-3.service'];
  const ALL = [...UNITS, 's-g.service'];

  it('a node shut down cleanly: its unit moves, nothing else churns', async () => {
    for (const [i, u] of UNITS.entries()) c.writeUnit(u, svc(`410${i}`));
    c.writeUnit('s-g.service', svc('4109', 'Global=true'));
    await c.ctl('start', ...ALL);
    await eventually(async () => (await c.activeOn('s-g.service')).length === 3, 'the global unit on every node');
    const at = await snapshot(ALL);
    const node = at['s-1.service']![0]!.split(':')[0]!;
    const mine = UNITS.filter((u) => at[u]![0]!.startsWith(`${node}:`));

    const started = Date.now();
    await c.stop(node);
    for (const u of mine) await c.activeOnOne(u, 20_000);
    console.log(`clean shutdown of ${node}: its ${mine.length} unit(s) active elsewhere ${Date.now() - started} ms after the stop began`);
    expect(await machines()).toEqual(c.running().sort());
    const now = await snapshot(ALL);
    for (const u of UNITS) {
      if (mine.includes(u)) expect(now[u]![0]!.startsWith(`${node}:`)).toBe(false);
      else expect(now[u]).toEqual(at[u]);
    }
    expect(now['s-g.service']).toEqual(at['s-g.service']!.filter((x) => !x.startsWith(`${node}:`)));
  });

  it('a node joining: the global unit comes to it and a new unit goes to it; nothing moves', async () => {
    for (const [i, u] of UNITS.entries()) c.writeUnit(u, svc(`420${i}`));
    c.writeUnit('s-g.service', svc('4209', 'Global=true'));
    c.writeUnit('s-new.service', svc('4210'));
    await c.ctl('start', ...ALL);
    const nodes = c.running().length;
    await eventually(async () => (await c.activeOn('s-g.service')).length === nodes, 'the global unit on every node');
    const at = await snapshot(ALL);

    const added = await c.add();
    expect(await machines()).toContain(added);
    await eventually(async () => (await c.activeOn('s-g.service')).includes(added), `the global unit on ${added}`);
    // the least loaded machine takes the next unit
    await c.ctl('start', 's-new.service');
    expect(await c.activeOn('s-new.service')).toEqual([added]);
    const now = await snapshot(ALL);
    for (const u of UNITS) expect(now[u]).toEqual(at[u]);
    expect(now['s-g.service']!.filter((x) => !x.startsWith(`${added}:`))).toEqual(at['s-g.service']);
  });

  it(`a node killed abruptly: its units are active elsewhere within agent_ttl + 2 s (${AGENT_TTL_S + 2} s)`, async () => {
    const units = ['k-1.service', 'k-2.service', 'k-3.service', 'k-4.service', 'k-5.service', 'k-6.service'];
    for (const [i, u] of units.entries()) c.writeUnit(u, svc(`430${i}`));
    await c.ctl('start', ...units);
    const at = await snapshot(units);
    // a node that is not the engine leader: the leader's death is the next scenario
    const leader = await c.leader();
    const victim = c.running().find((n) => n !== leader && units.some((u) => at[u]![0]!.startsWith(`${n}:`)))!;
    expect(victim).toBeDefined();
    const mine = units.filter((u) => at[u]![0]!.startsWith(`${victim}:`));

    const started = Date.now();
    await c.kill(victim);
    await eventually(
      async () => {
        for (const u of mine) if ((await c.activeOn(u)).length !== 1) return false;
        return true;
      },
      `${mine.join(', ')} active elsewhere`,
      30_000,
    );
    const ms = Date.now() - started;
    console.log(`${victim} killed: its ${mine.length} unit(s) active elsewhere after ${ms} ms (agent_ttl ${AGENT_TTL_S} s)`);
    expect(ms).toBeLessThanOrEqual((AGENT_TTL_S + 2) * 1000);
    const now = await snapshot(units);
    for (const u of units) if (!mine.includes(u)) expect(now[u]).toEqual(at[u]);
    expect(await machines()).toEqual(c.running().sort());
  });

  it('the engine leader killed: another daemon takes over and still schedules', async () => {
    await c.add(); // so that two nodes remain
    c.writeUnit('l-1.service', svc('4401'));
    c.writeUnit('l-2.service', svc('4402'));
    c.writeUnit('l-3.service', svc('4403'));
    await c.ctl('start', 'l-1.service', 'l-2.service', 'l-3.service');
    const leader = await c.leader();
    expect(leader).toBeDefined();
    expect(c.running()).toContain(leader);
    const at = await snapshot(['l-1.service', 'l-2.service', 'l-3.service']);
    const mine = Object.keys(at).filter((u) => at[u]![0]!.startsWith(`${leader}:`));

    const started = Date.now();
    await c.kill(leader!);
    let next: string | undefined;
    await eventually(async () => {
      next = await c.leader();
      return next !== undefined && next !== leader;
    }, 'a new engine leader', 30_000);
    console.log(`engine leader ${leader} killed: ${next} leads after ${Date.now() - started} ms`);
    expect(c.running()).toContain(next);
    for (const u of mine) await c.activeOnOne(u, 30_000);
    console.log(`engine leader ${leader} killed: its ${mine.length} unit(s) active elsewhere after ${Date.now() - started} ms`);
    // the new leader schedules new units
    c.writeUnit('l-new.service', svc('4409'));
    await c.ctl('start', 'l-new.service');
    const [where] = await c.activeOn('l-new.service');
    expect(c.running()).toContain(where);
  });
});
