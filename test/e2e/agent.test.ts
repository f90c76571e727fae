// flotillad against real systemd: two lab nodes run the daemon as a systemd
// service (as a machine would), with a private etcd on host loopback. Every
// check reads systemd's real state inside the nodes, not only the registry.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootNode, cleanup, killLiveNodesSync, makeRunDir, mountsUnder, skipWithoutNodes, type LabNode } from '../../src/lab/nodes.js';
import type { EtcdCluster } from '../../src/lab/etcd.js';
import type { Registry, UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { startEtcd } from '../helpers/etcd.js';
import { testRegistry } from '../helpers/registry.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT_TTL = 3;

function unit(name: string, service: string, extra = ''): UnitRecord {
  const p = parseUnit(name, `[Service]\n${service}\n${extra}`);
  return { name, text: p.text, hash: p.hash, global: p.requirements.global };
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(skipWithoutNodes('flotillad e2e tests (test/e2e/agent.test.ts)'))('flotillad on real systemd', () => {
  let runDir = '';
  let etcd: EtcdCluster | undefined;
  let registry: Registry;
  const nodes: LabNode[] = [];

  const sh = async (node: LabNode, ...argv: string[]): Promise<string> => (await node.exec(argv)).stdout.trim();
  const isActive = (node: LabNode, u: string): Promise<string> => sh(node, 'systemctl', 'is-active', u);

  beforeAll(async () => {
    runDir = makeRunDir();
    process.once('exit', killLiveNodesSync);
    etcd = await startEtcd();
    registry = testRegistry(etcd.endpoints);
    const service = readFileSync(path.join(repo, 'units/flotillad.service'), 'utf8');
    for (const [i, role] of [
      [1, 'web'],
      [2, 'db'],
    ] as const) {
      nodes.push(
        await bootNode({
          stateDir: runDir,
          name: `agent${i}`,
          ip: `127.0.0.${20 + i}`,
          wants: ['flotillad.service'],
          files: {
            '/etc/systemd/system/flotillad.service': service,
            // run from the checkout with tsx, as the tests do; the lab runs dist/
            '/etc/systemd/system/flotillad.service.d/test.conf': [
              '[Service]',
              'ExecStart=',
              `ExecStart=/usr/bin/node --import tsx ${repo}/cli/flotillad.ts`,
              `WorkingDirectory=${repo}`,
              '',
            ].join('\n'),
            '/etc/flotilla/flotilla.conf': [
              `etcd_servers=${etcd.endpoints.join(',')}`,
              `etcd_key_prefix=${registry.keys.prefix}`,
              `public_ip=127.0.0.${20 + i}`,
              `metadata=role=${role}`,
              `agent_ttl=${AGENT_TTL}`,
              'engine_ttl=3',
              '',
            ].join('\n'),
          },
        }),
      );
    }
    await eventually(async () => (await registry.listMachines()).length === 2, 'both machines registered', 60_000);
  });

  afterAll(async () => {
    process.off('exit', killLiveNodesSync);
    for (const node of nodes) await node.destroy().catch((err: unknown) => console.error(err));
    registry?.close();
    await etcd?.close();
    if (runDir) {
      await cleanup(runDir);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
    }
  });

  const nodeOf = async (u: string): Promise<LabNode> => {
    const d = (await registry.listDecisions()).find((x) => x.unit === u);
    const node = nodes.find((n) => n.machineId === d?.machine);
    if (!node) throw new Error(`${u} is not scheduled`);
    return node;
  };

  it('loads and starts units, enables [Install] ones at runtime, and reports a failing one while the others run', async () => {
    await registry.createUnits(
      [
        unit('e2e-ok.service', 'ExecStart=/bin/sleep infinity'),
        unit('e2e-fail.service', 'ExecStart=/bin/false'),
        unit('e2e-install.service', 'ExecStart=/bin/sleep infinity', '[Install]\nWantedBy=multi-user.target\n'),
      ],
      { desiredState: 'launched' },
    );
    for (const u of ['e2e-ok.service', 'e2e-install.service']) {
      await eventually(async () => (await registry.listDecisions()).some((d) => d.unit === u), `${u} scheduled`);
      const node = await nodeOf(u);
      await eventually(async () => (await isActive(node, u)) === 'active', `${u} active in systemd`);
    }
    const installNode = await nodeOf('e2e-install.service');
    expect(await sh(installNode, 'systemctl', 'is-enabled', 'e2e-install.service')).toBe('enabled-runtime');
    await eventually(async () => (await registry.listStates('e2e-fail.service'))[0]?.activeState === 'failed', 'failure reported');
    expect(await isActive(await nodeOf('e2e-fail.service'), 'e2e-fail.service')).toBe('failed');
    expect((await registry.listStates('e2e-ok.service'))[0]).toMatchObject({ loadState: 'loaded', activeState: 'active', subState: 'running' });
  });

  it('stops a unit set to loaded and unloads one set to inactive', async () => {
    const node = await nodeOf('e2e-ok.service');
    await registry.setDesiredState(['e2e-ok.service'], 'loaded');
    await eventually(async () => (await isActive(node, 'e2e-ok.service')) === 'inactive', 'stopped in systemd');
    await registry.setDesiredState(['e2e-ok.service', 'e2e-fail.service'], 'inactive');
    await eventually(
      async () => (await sh(node, 'systemctl', 'show', '-p', 'LoadState', '--value', 'e2e-ok.service')) === 'not-found',
      'unloaded from systemd',
    );
    await eventually(async () => (await registry.listStates('e2e-ok.service')).length === 0, 'state withdrawn');
    expect((await node.exec(['test', '-e', '/run/flotilla/units/e2e-ok.service'])).code).not.toBe(0);
  });

  it('replaces a unit whose file changed, with the new command running', async () => {
    await registry.createUnit(unit('e2e-replace.service', 'ExecStart=/bin/sleep 1001'), { desiredState: 'launched' });
    await eventually(async () => (await registry.listStates('e2e-replace.service'))[0]?.activeState === 'active', 'v1 active');
    const v2 = unit('e2e-replace.service', 'ExecStart=/bin/sleep 1002');
    await registry.createUnit(v2, { replace: true });
    const node = await nodeOf('e2e-replace.service');
    await eventually(
      async () => (await sh(node, 'systemctl', 'show', '-p', 'ExecStart', '--value', 'e2e-replace.service')).includes('1002'),
      'v2 loaded',
    );
    await eventually(async () => (await registry.listStates('e2e-replace.service'))[0]?.hash === v2.hash, 'v2 hash published');
    expect(await isActive(node, 'e2e-replace.service')).toBe('active');
  });

  it('runs a global unit on every node, and a metadata-bound one only where it matches', async () => {
    await registry.createUnits(
      [
        unit('e2e-global.service', 'ExecStart=/bin/sleep infinity', '[X-Fleet]\nGlobal=true\n'),
        unit('e2e-global-db.service', 'ExecStart=/bin/sleep infinity', '[X-Fleet]\nGlobal=true\nMachineMetadata=role=db\n'),
      ],
      { desiredState: 'launched' },
    );
    for (const node of nodes) {
      await eventually(async () => (await isActive(node, 'e2e-global.service')) === 'active', `global active on ${node.name}`);
    }
    await eventually(async () => (await isActive(nodes[1]!, 'e2e-global-db.service')) === 'active', 'db global on the db node');
    expect(await isActive(nodes[0]!, 'e2e-global-db.service')).not.toBe('active');
  });

  it('a slow unit holds up no other unit of its machine: while it activates for 120 s, another starts and a third stops', async () => {
    const web = '[X-Fleet]\nMachineMetadata=role=web\n';
    const node = nodes[0]!;
    await registry.createUnit(unit('e2e-third.service', 'ExecStart=/bin/sleep infinity', web), { desiredState: 'launched' });
    await eventually(async () => (await isActive(node, 'e2e-third.service')) === 'active', 'third active');
    await registry.createUnit(
      unit('e2e-slow.service', 'ExecStartPre=/bin/sleep 120\nExecStart=/bin/sleep infinity\nTimeoutStartSec=infinity', web),
      { desiredState: 'launched' },
    );
    await eventually(async () => (await isActive(node, 'e2e-slow.service')) === 'activating', 'slow unit activating');

    // Not blocked for the slow unit's 120 s: 10 s is slack for a loaded machine, not a performance bound.
    let t0 = Date.now();
    await registry.createUnit(unit('e2e-next.service', 'ExecStart=/bin/sleep infinity', web), { desiredState: 'launched' });
    await eventually(async () => (await isActive(node, 'e2e-next.service')) === 'active', 'next active while slow activates', 10_000);
    const startMs = Date.now() - t0;
    t0 = Date.now();
    await registry.setDesiredState(['e2e-third.service'], 'loaded');
    await eventually(async () => (await isActive(node, 'e2e-third.service')) === 'inactive', 'third stopped while slow activates', 10_000);
    const stopMs = Date.now() - t0;
    console.log(`while a unit activated: another active after ${startMs} ms, a third stopped after ${stopMs} ms`);
    expect(await isActive(node, 'e2e-slow.service')).toBe('activating');

    // Unloading the activating unit stops it first (its start job canceled), then removes it.
    await registry.setDesiredState(['e2e-slow.service', 'e2e-next.service', 'e2e-third.service'], 'inactive');
    for (const u of ['e2e-slow.service', 'e2e-next.service', 'e2e-third.service']) {
      await eventually(async () => (await sh(node, 'systemctl', 'show', '-p', 'LoadState', '--value', u)) === 'not-found', `${u} unloaded`);
    }
  });

  it('keeps units running while etcd is gone for longer than agent_ttl, and publishes states again', async () => {
    const node = await nodeOf('e2e-replace.service');
    const pid = await sh(node, 'systemctl', 'show', '-p', 'MainPID', '--value', 'e2e-replace.service');
    await etcd!.stopMember(0);
    await new Promise((r) => setTimeout(r, (AGENT_TTL + 2) * 1000));
    expect(await isActive(node, 'e2e-replace.service')).toBe('active');
    await etcd!.startMember(0);
    // the leases expired meanwhile: machines register again and republish
    await eventually(async () => (await registry.listMachines()).length === 2, 'machines registered again', 30_000);
    await eventually(async () => (await registry.listStates('e2e-replace.service'))[0]?.activeState === 'active', 'state republished', 30_000);
    expect(await sh(node, 'systemctl', 'show', '-p', 'MainPID', '--value', 'e2e-replace.service')).toBe(pid);
  });

  it('systemctl restart and kill -s KILL of flotillad (not the engine leader) stop nothing and move nothing; states are republished', async () => {
    const leader = (await registry.getLeader())?.id;
    const node = nodes.find((n) => n.machineId !== leader)!;
    // This file's agent_ttl (3 s) is shorter than RestartSec (2 s) plus a start
    // under tsx: give this node the margin a real one has (default 30 s).
    await node.exec(['sh', '-c', 'echo agent_ttl=15 >> /etc/flotilla/flotilla.conf']);
    const firstLease = (await registry.getRaw(registry.keys.machine(node.machineId)))?.lease;
    await node.exec(['systemctl', 'restart', 'flotillad.service'], { timeoutMs: 60_000 });
    await eventually(async () => {
      const kv = await registry.getRaw(registry.keys.machine(node.machineId));
      return kv !== undefined && kv.lease !== firstLease;
    }, 'flotillad back with agent_ttl=15');
    const names = Array.from({ length: 100 }, (_, i) => `e2e-r-${String(i).padStart(3, '0')}.service`);
    await registry.createUnits(
      names.map((n) => unit(n, 'ExecStart=/bin/sleep infinity', `[X-Fleet]\nMachineID=${node.machineId}\n`)),
      { desiredState: 'launched' },
    );
    const mainPids = async (): Promise<Map<string, string>> => {
      const out = await sh(node, 'systemctl', 'show', '-p', 'Id', '-p', 'MainPID', '-p', 'ActiveState', ...names);
      const pids = new Map<string, string>();
      for (const block of out.split('\n\n')) {
        const f = Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
        if (f['Id'] && f['ActiveState'] === 'active') pids.set(f['Id'], f['MainPID'] ?? '');
      }
      return pids;
    };
    await eventually(async () => (await mainPids()).size === 100, '100 units active on the node', 60_000);
    await eventually(async () => (await registry.listStates()).filter((s) => names.includes(s.unit) && s.activeState === 'active').length === 100, 'states');
    const pids = await mainPids();
    const schedule = async (): Promise<string[]> =>
      (await registry.listPrefix(registry.keys.schedulePrefix)).items.map((kv) => `${kv.key}@${kv.modRevision}`).sort();
    const decisions = await schedule();
    const key = registry.keys.machine(node.machineId);
    const revision = async (): Promise<number> => Number((await registry.client.kv.range({ key: Buffer.from(key) })).header.revision);
    const before = await revision();

    for (const how of [['restart'], ['kill', '-s', 'KILL']]) {
      const lease = (await registry.getRaw(key))?.lease;
      const daemonPid = await sh(node, 'systemctl', 'show', '-p', 'MainPID', '--value', 'flotillad.service');
      // exit 0: with one cgroup tree per node, systemd signals all of
      // flotillad's cgroup (it failed with EIO when nodes shared one)
      const done = await node.exec(['systemctl', ...how, 'flotillad.service'], { timeoutMs: 60_000 });
      expect(done.code, done.stderr).toBe(0);
      // a new run (systemd restarts a killed one after RestartSec) took the machine over and republished every state
      await eventually(async () => {
        const pid = await sh(node, 'systemctl', 'show', '-p', 'MainPID', '--value', 'flotillad.service');
        const now = (await registry.getRaw(key))?.lease;
        if (pid === daemonPid || pid === '0' || now === undefined || now === lease) return false;
        const states = (await registry.listPrefix(registry.keys.statesPrefix)).items.filter((kv) => kv.key.includes('/e2e-r-'));
        return states.length === 100 && states.every((kv) => kv.lease === now);
      }, `flotillad back after ${how.join(' ')}, states republished`, 30_000);
      expect(await mainPids(), `units after ${how.join(' ')}`).toEqual(pids);
    }
    expect(await schedule()).toEqual(decisions);
    const after = await revision();
    for (let rev = before; rev <= after; rev++) {
      const res = await registry.client.kv.range({ key: Buffer.from(key), revision: String(rev) });
      expect(res.kvs.length, `machine record at revision ${rev}`).toBe(1);
    }
    await registry.destroyUnits(names);
  });

  it('with shutdown=drain, SIGTERM stops and unloads every unit it runs and withdraws the machine', async () => {
    const node = nodes[0]!;
    const before = (await registry.listMachines()).length;
    // shutdown is applied by a reload (SIGHUP), as an operator would before taking a machine out
    await node.exec(['sh', '-c', 'echo shutdown=drain >> /etc/flotilla/flotilla.conf']);
    await node.exec(['systemctl', 'reload', 'flotillad.service']);
    await eventually(
      async () => (await sh(node, 'journalctl', '-u', 'flotillad.service', '-o', 'cat', '--grep', 'applied.*shutdown')).includes('shutdown'),
      'shutdown=drain applied',
    );
    await node.exec(['systemctl', 'stop', 'flotillad.service'], { timeoutMs: 60_000 });
    await eventually(async () => (await registry.listMachines()).length === before - 1, 'machine withdrawn');
    const left = await sh(node, 'sh', '-c', 'ls /run/flotilla/units 2>/dev/null | wc -l');
    expect(left).toBe('0');
    expect(await isActive(node, 'e2e-global.service')).not.toBe('active');
    // its units move to the other node
    await eventually(
      async () => (await registry.listDecisions()).every((d) => d.machine === nodes[1]!.machineId),
      'units rescheduled to the other node',
    );
  });
});
