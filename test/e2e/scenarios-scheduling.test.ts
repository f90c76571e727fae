// fleet's functional suite, scheduling: the [X-Fleet] options on a 3-node
// lab, checked in systemd inside the nodes (which node runs what), not only
// in the engine's decisions. The nodes carry metadata to aim units with:
//   n1 node=n1,zone=x,disk=ssd   n2 node=n2,zone=x   n3 node=n3,zone=y
// Ends with SIGHUP (metadata reloaded) and a duplicate machine ID refused.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findCheckout, flotilladScript } from '../../src/lab/flotillad-files.js';
import { skipWithoutNodes } from '../../src/lab/nodes.js';
import { eventually, LabCluster } from '../helpers/lab-cluster.js';

const svc = (exec: string, fleet = '', extra = ''): string =>
  `[Service]\nExecStart=/bin/sleep ${exec}\n${extra}${fleet ? `\n[X-Fleet]\n${fleet}\n` : ''}`;

describe.skipIf(skipWithoutNodes('scheduling scenarios (test/e2e/scenarios-scheduling.test.ts)'))('scenarios: scheduling options', () => {
  let c: LabCluster;

  beforeAll(async () => {
    c = await LabCluster.start({
      nodes: 3,
      metadata: ['n1=node=n1,zone=x,disk=ssd', 'n2=node=n2,zone=x', 'n3=node=n3,zone=y'],
    });
  });
  afterAll(async () => {
    await c?.close();
  });
  afterEach(async () => {
    await c?.destroyAll();
  });

  /** unit → the nodes systemd runs it on. */
  const placement = async (units: string[]): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const u of units) out[u] = await c.activeOn(u);
    return out;
  };

  /** The unit's pending reason, as flotctl list-units shows it. */
  const pendingReason = async (unit: string): Promise<string | null | undefined> => {
    const json = JSON.parse(await c.ctl('list-units', '-o', 'json')) as { units: { unit: string; pending: string | null }[] };
    return json.units.find((u) => u.unit === unit)?.pending;
  };

  it('MachineOf: each follower runs beside its target; a follower whose target is destroyed stops', async () => {
    c.writeUnit('ping@.service', svc('20%i'));
    c.writeUnit('pong@.service', svc('21%i', 'MachineOf=ping@%i.service'));
    const units = [1, 2, 3].flatMap((i) => [`ping@${i}.service`, `pong@${i}.service`]);
    await c.ctl('start', ...units);
    const at = await placement(units);
    for (const i of [1, 2, 3]) {
      expect(at[`ping@${i}.service`]).toHaveLength(1);
      expect(at[`pong@${i}.service`]).toEqual(at[`ping@${i}.service`]);
    }
    // spread: three pairs, three nodes
    expect(new Set([1, 2, 3].map((i) => at[`ping@${i}.service`]![0])).size).toBe(3);

    await c.ctl('destroy', 'ping@1.service');
    await eventually(async () => (await c.activeOn('pong@1.service')).length === 0, 'pong@1 stopped once ping@1 is gone');
    expect(await pendingReason('pong@1.service')).toMatch(/MachineOf peer ping@1\.service/);
    expect(await c.activeOn('pong@2.service')).toEqual(at['pong@2.service']);
  });

  it('5 mutually conflicting units on 3 nodes: exactly 3 run, on different nodes, and it stays so', async () => {
    c.writeUnit('conflict@.service', svc('22%i', 'Conflicts=conflict@*.service'));
    const units = [0, 1, 2, 3, 4].map((i) => `conflict@${i}.service`);
    await c.ctl('start', '--no-block', ...units);
    let running: string[] = [];
    const count = async (): Promise<number> => {
      const at = await placement(units);
      running = Object.values(at).flat();
      return running.length;
    };
    await eventually(async () => (await count()) === 3, 'three conflicting units active');
    expect(new Set(running)).toEqual(new Set(['n1', 'n2', 'n3']));
    const pending = JSON.parse(await c.ctl('list-units', '-o', 'json')) as { units: { unit: string; pending: string | null }[] };
    expect(pending.units.filter((u) => u.pending !== null).map((u) => u.unit)).toHaveLength(2);
    // no churn: the same three keep running
    const before = await placement(units);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await placement(units)).toEqual(before);
  });

  it('one-way conflict: a unit that another conflicts with cannot join it; it runs once the other is destroyed', async () => {
    // both can run only on n1 (disk=ssd); only the first names the conflict
    c.writeUnit('oneway-a.service', svc('2301', 'MachineMetadata=disk=ssd\nConflicts=oneway-b.service'));
    c.writeUnit('oneway-b.service', svc('2302', 'MachineMetadata=disk=ssd'));
    await c.ctl('start', 'oneway-a.service');
    expect(await c.activeOn('oneway-a.service')).toEqual(['n1']);
    await c.ctl('start', '--no-block', 'oneway-b.service');
    await eventually(async () => (await pendingReason('oneway-b.service')) != null, 'oneway-b pending');
    expect(await pendingReason('oneway-b.service')).toMatch(/oneway-a\.service/);
    expect(await c.activeOn('oneway-b.service')).toEqual([]);

    await c.ctl('destroy', 'oneway-a.service');
    await eventually(async () => (await c.activeOn('oneway-b.service')).join() === 'n1', 'oneway-b active on n1');
    expect(await c.activeOn('oneway-a.service')).toEqual([]);
  });

  it('multiple conflicts: a unit conflicting with two units avoids both their nodes', async () => {
    // zone=x: n1 and n2
    c.writeUnit('multi-a.service', svc('2401', 'MachineMetadata=zone=x'));
    c.writeUnit('multi-b.service', svc('2402', 'MachineMetadata=zone=x'));
    c.writeUnit('multi-c.service', svc('2403', 'MachineMetadata=zone=x\nConflicts=multi-a.service multi-b.service'));
    c.writeUnit('multi-d.service', svc('2404', 'Conflicts=multi-a.service\nConflicts=multi-b.service'));
    await c.ctl('start', 'multi-a.service', 'multi-b.service');
    const at = await placement(['multi-a.service', 'multi-b.service']);
    expect([...at['multi-a.service']!, ...at['multi-b.service']!].sort()).toEqual(['n1', 'n2']);
    await c.ctl('start', '--no-block', 'multi-c.service');
    await c.ctl('start', 'multi-d.service');
    // multi-d (repeated Conflicts lines) goes to the one node that runs neither
    expect(await c.activeOn('multi-d.service')).toEqual(['n3']);
    await eventually(async () => (await pendingReason('multi-c.service')) != null, 'multi-c pending');
    expect(await c.activeOn('multi-c.service')).toEqual([]);

    await c.ctl('destroy', 'multi-b.service');
    await eventually(async () => (await c.activeOn('multi-c.service')).join() === at['multi-b.service']![0], 'multi-c where multi-b was');
    expect(await c.activeOn('multi-a.service')).toEqual(at['multi-a.service']);
  });

  it('Replaces: the replacing unit takes the node and the replaced unit moves to another', async () => {
    c.writeUnit('replaced.service', svc('2501'));
    await c.ctl('start', 'replaced.service');
    const [home] = await c.activeOn('replaced.service');
    expect(home).toBeDefined();
    c.writeUnit('replacer.service', svc('2502', `MachineMetadata=node=${home}\nReplaces=replaced.service`));
    await c.ctl('start', 'replacer.service');
    expect(await c.activeOn('replacer.service')).toEqual([home]);
    const moved = await c.activeOnOne('replaced.service');
    expect(moved).not.toBe(home);
    expect(await c.isActive(home!, 'replaced.service')).not.toBe('active');
  });

  it('circular Replaces are ignored: both units run, side by side, without flapping', async () => {
    c.writeUnit('circle-a.service', svc('2601', 'MachineMetadata=disk=ssd\nReplaces=circle-b.service'));
    c.writeUnit('circle-b.service', svc('2602', 'MachineMetadata=disk=ssd\nReplaces=circle-a.service'));
    await c.ctl('start', 'circle-a.service', 'circle-b.service');
    expect(await placement(['circle-a.service', 'circle-b.service'])).toEqual({ 'circle-a.service': ['n1'], 'circle-b.service': ['n1'] });
    const pids = await Promise.all(['circle-a.service', 'circle-b.service'].map((u) => c.show('n1', u, 'MainPID')));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await Promise.all(['circle-a.service', 'circle-b.service'].map((u) => c.show('n1', u, 'MainPID')))).toEqual(pids);
  });

  it('MachineID=%i pins each instance of a template to the machine its instance names (full and short ID)', async () => {
    c.writeUnit('pinned@.service', '[Service]\nExecStart=/bin/sleep 2700\n\n[X-Fleet]\nMachineID=%i\n');
    const full = `pinned@${c.machineId('n2')}.service`;
    const short = `pinned@${c.machineId('n3').slice(0, 8)}.service`;
    const nowhere = 'pinned@0123456789abcdef0123456789abcdef.service';
    await c.ctl('start', full, short);
    await c.ctl('start', '--no-block', nowhere);
    expect(await c.activeOn(full)).toEqual(['n2']);
    expect(await c.activeOn(short)).toEqual(['n3']);
    await eventually(async () => /MachineID/.test((await pendingReason(nowhere)) ?? ''), 'the instance for no machine is pending');
    expect(await c.activeOn(nowhere)).toEqual([]);
  });

  it('MachineMetadata with specifiers: %i picks the zone, %p the node', async () => {
    c.writeUnit('zone@.service', svc('2800', 'MachineMetadata=zone=%i'));
    // %p is the prefix: the unit "n2@z.service" runs where node=n2
    c.writeUnit('n2@.service', svc('2899', 'MachineMetadata=node=%p'));
    await c.ctl('start', 'zone@x.service', 'zone@y.service', 'n2@any.service');
    await c.ctl('start', '--no-block', 'zone@q.service');
    expect(await c.activeOn('zone@y.service')).toEqual(['n3']);
    const [x] = await c.activeOn('zone@x.service');
    expect(['n1', 'n2']).toContain(x);
    expect(await c.activeOn('n2@any.service')).toEqual(['n2']);
    await eventually(async () => (await pendingReason('zone@q.service')) != null, 'zone@q pending');
    expect(await pendingReason('zone@q.service')).toMatch(/MachineMetadata zone=q/);
    expect(await c.activeOn('zone@q.service')).toEqual([]);
  });

  it('global units: 2 plain and 1 global unit on 3 nodes make 5 active units', async () => {
    c.writeUnit('plain-1.service', svc('2901'));
    c.writeUnit('plain-2.service', svc('2902'));
    c.writeUnit('everywhere.service', svc('2903', 'Global=true'));
    const out = await c.ctl('start', 'plain-1.service', 'plain-2.service', 'everywhere.service');
    expect(out).toContain('Triggered global unit everywhere.service start');
    await eventually(async () => (await c.activeOn('everywhere.service')).length === 3, 'the global unit on every node');
    const at = await placement(['plain-1.service', 'plain-2.service', 'everywhere.service']);
    expect(Object.values(at).flat()).toHaveLength(5);
    expect(at['plain-1.service']).toHaveLength(1);
    expect(at['plain-2.service']).toHaveLength(1);
    expect(await c.ctl('list-unit-files', '--no-legend', '--fields', 'unit,state,target')).toMatch(/^everywhere\.service\s+-\s+global\s*$/m);
  });

  it('global conflicts: of two conflicting global units only the first runs, and a unit conflicting with a global one waits', async () => {
    c.writeUnit('gc-a.service', svc('3001', 'Global=true\nConflicts=gc-*.service'));
    c.writeUnit('gc-b.service', svc('3002', 'Global=true\nConflicts=gc-*.service'));
    // (not named gc-*: gc-b's pattern would match it too)
    c.writeUnit('plain-vs-gc.service', svc('3003', 'Conflicts=gc-a.service'));
    await c.ctl('start', 'gc-a.service', 'gc-b.service');
    await c.ctl('start', '--no-block', 'plain-vs-gc.service');
    await eventually(async () => (await c.activeOn('gc-a.service')).length === 3, 'gc-a on every node');
    await eventually(async () => (await pendingReason('plain-vs-gc.service')) != null, 'plain-vs-gc pending');
    expect(await c.activeOn('gc-b.service')).toEqual([]);
    expect(await c.activeOn('plain-vs-gc.service')).toEqual([]);
    // with gc-a gone, gc-b runs everywhere and plain-vs-gc can be placed
    await c.ctl('destroy', 'gc-a.service');
    await eventually(async () => (await c.activeOn('gc-b.service')).length === 3, 'gc-b on every node');
    await eventually(async () => (await c.activeOn('plain-vs-gc.service')).length === 1, 'plain-vs-gc placed');
    expect(await c.activeOn('gc-a.service')).toEqual([]);
  });

  it('a second flotillad with another machine\'s ID is refused, naming the ID, and disturbs nothing', async () => {
    c.writeUnit('dup-probe.service', svc('3101', 'MachineMetadata=node=n2'));
    await c.ctl('start', 'dup-probe.service');
    const other = c.machineId('n2');
    // In n1: n2's ID in a file of its own, a unit folder of its own, no engine.
    const r = await c.exec(
      'n1',
      [
        'sh',
        '-c',
        'set -e; d=$(mktemp -d); echo "$1" > "$d/machine-id"; mkdir "$d/units"; ' +
          'exec timeout 30 "$2" "$3" --machine-id-file "$d/machine-id" --unit-dir "$d/units" --disable-engine true',
        'sh',
        other,
        process.execPath,
        flotilladScript(findCheckout()),
      ],
      { timeoutMs: 40_000 },
    );
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.code).not.toBe(124); // refused, not timed out
    expect(r.stderr).toContain(other);
    expect(r.stderr).toMatch(/already registered by n2/);
    // n2 is still the machine with that ID, and runs its unit
    const machines = JSON.parse(await c.ctl('list-machines', '-o', 'json')) as { machines: { id: string; hostname: string }[] };
    expect(machines.machines.find((m) => m.id === other)?.hostname).toBe('n2');
    expect(machines.machines).toHaveLength(3);
    expect(await c.activeOn('dup-probe.service')).toEqual(['n2']);
  });

  it('SIGHUP reloads metadata: a unit waiting for it lands on the node', async () => {
    c.writeUnit('late.service', svc('3201', 'MachineMetadata=role=late'));
    await c.ctl('start', '--no-block', 'late.service');
    await eventually(async () => (await pendingReason('late.service')) != null, 'late.service pending');
    const pid = await c.show('n3', 'flotillad.service', 'MainPID');
    const conf = await c.sh('n3', 'cat', '/etc/flotilla/flotilla.conf');
    expect(conf).toMatch(/^metadata=node=n3,zone=y$/m);
    await c.exec('n3', ['sh', '-c', 'sed -i "s/^metadata=.*/&,role=late/" /etc/flotilla/flotilla.conf']);
    // --kill-whom=main: only flotillad itself reloads on SIGHUP.
    const hup = await c.exec('n3', ['systemctl', 'kill', '--kill-whom=main', '-s', 'HUP', 'flotillad.service']);
    expect(hup.code, hup.stderr).toBe(0);
    await eventually(async () => (await c.activeOn('late.service')).join() === 'n3', 'late.service active on n3');
    // reloaded, not restarted
    expect(await c.show('n3', 'flotillad.service', 'MainPID')).toBe(pid);
    const machines = JSON.parse(await c.ctl('list-machines', '-o', 'json')) as { machines: { id: string; metadata: Record<string, string> }[] };
    expect(machines.machines.find((m) => m.id === c.machineId('n3'))?.metadata).toEqual({ node: 'n3', zone: 'y', role: 'late' });
  });
});
