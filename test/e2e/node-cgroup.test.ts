// Each lab node has a cgroup tree of its own (src/lab/cgroup.ts), so nodes
// are isolated the way machines are: the same unit name in two nodes is two
// host cgroups, and signalling or stopping it in one touches nothing of the
// other. Before, every node's system.slice/NAME.service was one host cgroup
// and systemd in a node failed on the other nodes' processes (EIO).
// Nothing of it outlives the node: destroy(), kill() and cleanup() after a
// crash remove every cgroup the lab made.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existingLabCgroups, nodeCgroup } from '../../src/lab/cgroup.js';
import { down } from '../../src/lab/cluster.js';
import { markDir } from '../../src/lab/lab-folder.js';
import { labLayout } from '../../src/lab/lab-state.js';
import { labProcesses } from '../../src/lab/lab-sweep.js';
import { bootNode, cleanup, killLiveNodesSync, makeRunDir, mountsUnder, skipWithoutNodes, type LabNode } from '../../src/lab/nodes.js';
import { childrenOf, isAlive, pidsInNamespace } from '../../src/lab/proc.js';

// A main process and an auxiliary one (forked before the exec), as a unit
// with helpers has.
const TWIN = '[Service]\nExecStart=/bin/sh -c "sleep 1000 & exec sleep 2000"\n';

describe.skipIf(skipWithoutNodes('node cgroup tests (test/e2e/node-cgroup.test.ts)'))('a cgroup tree per node', () => {
  let runDir = '';
  const booted: LabNode[] = [];

  const boot = async (stateDir: string, name: string, ip: string): Promise<LabNode> => {
    const node = await bootNode({ stateDir, name, ip, files: { '/etc/systemd/system/twin.service': TWIN } });
    booted.push(node);
    return node;
  };

  beforeAll(() => {
    runDir = makeRunDir();
    process.once('exit', killLiveNodesSync);
  });

  afterAll(async () => {
    process.off('exit', killLiveNodesSync);
    for (const node of booted) await node.destroy().catch((err: unknown) => console.error(err));
    if (runDir) {
      await cleanup(runDir);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
    }
  });

  it('runs one unit name in two nodes in two cgroups; systemctl kill and stop in one leave the other running', async () => {
    const a = await boot(runDir, 'c1', '127.0.0.31');
    const b = await boot(runDir, 'c2', '127.0.0.32');
    for (const node of [a, b]) {
      const started = await node.exec(['systemctl', 'start', 'twin.service']);
      expect(started.code, started.stderr).toBe(0);
    }
    const mainA = await hostMainPid(a, 'twin.service');
    const mainB = await hostMainPid(b, 'twin.service');
    const [auxA] = childrenOf(mainA);
    const [auxB] = childrenOf(mainB);
    expect(auxA).toBeDefined();
    expect(auxB).toBeDefined();

    // From the host: two cgroups, each in its node's own tree, in both
    // hierarchies the nodes' systemd manages.
    const cgA = cgroupsOf(mainA);
    const cgB = cgroupsOf(mainB);
    expect(cgA.systemd).toBe(`${nodeCgroup(a.dir)}/payload/system.slice/twin.service`);
    expect(cgB.systemd).toBe(`${nodeCgroup(b.dir)}/payload/system.slice/twin.service`);
    expect(cgA.unified).toBe(cgA.systemd);
    expect(cgB.unified).toBe(cgB.systemd);
    expect(cgroupsOf(auxA ?? 0)).toEqual(cgA);

    // SIGKILL to every process of a's unit, the auxiliary one included.
    const killed = await a.exec(['systemctl', 'kill', '-s', 'KILL', 'twin.service']);
    expect(killed.stderr).not.toContain('Input/output error');
    expect(killed.code, killed.stderr).toBe(0);
    await until(() => !isAlive(mainA) && !isAlive(auxA ?? 0), 'a\'s main and auxiliary processes gone');
    // b's copy is untouched.
    expect(isAlive(mainB) && isAlive(auxB ?? 0)).toBe(true);
    expect(await hostMainPid(b, 'twin.service')).toBe(mainB);
    expect((await b.exec(['systemctl', 'is-active', 'twin.service'])).stdout.trim()).toBe('active');

    // And the other way round with a stop (as flotillad stops a unit it
    // loses): b's stops at once and cleanly, a's new copy runs on.
    await a.exec(['systemctl', 'reset-failed', 'twin.service']);
    expect((await a.exec(['systemctl', 'start', 'twin.service'])).code).toBe(0);
    const mainA2 = await hostMainPid(a, 'twin.service');
    const stopped = await b.exec(['systemctl', 'stop', 'twin.service'], { timeoutMs: 10_000 });
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((await b.exec(['systemctl', 'is-active', 'twin.service'])).stdout.trim()).toBe('inactive');
    expect(isAlive(mainB) || isAlive(auxB ?? 0)).toBe(false);
    expect(isAlive(mainA2)).toBe(true);
    expect(await hostMainPid(a, 'twin.service')).toBe(mainA2);

    // destroy() leaves no cgroup of the lab's: not the nodes', not the lab's own.
    expect(existingLabCgroups(runDir)).not.toEqual([]);
    await a.destroy();
    await b.destroy();
    expect(existingLabCgroups(runDir)).toEqual([]);
  });

  it('kill() removes the node\'s cgroups; cleanup() after a crash ends a node known only by its cgroups and removes them', async () => {
    const killedNode = await boot(runDir, 'c3', '127.0.0.33');
    expect(cgroupsOf(killedNode.initPid).systemd).toBe(`${nodeCgroup(killedNode.dir)}/payload/init.scope`);
    expect(existingLabCgroups(runDir)).not.toEqual([]);
    await killedNode.kill();
    expect(existingLabCgroups(runDir)).toEqual([]);
    await killedNode.destroy();

    const crashed = path.join(runDir, 'crashed');
    const lost = await boot(crashed, 'c4', '127.0.0.34');
    expect((await lost.exec(['systemctl', 'start', 'twin.service'])).code).toBe(0);
    const main = await hostMainPid(lost, 'twin.service');
    expect(cgroupsOf(main).systemd?.startsWith(nodeCgroup(lost.dir) + '/')).toBe(true);
    expect(existingLabCgroups(crashed)).not.toEqual([]);
    // The crash lost the node's record too: only its cgroups say whose its processes are.
    for (const file of ['node.json', 'nspawn.pid']) rmSync(path.join(lost.dir, file));

    const report = await cleanup(crashed);
    expect(report.killed).toContain(lost.initPid);
    expect(isAlive(main) || isAlive(lost.initPid) || isAlive(lost.nspawnPid)).toBe(false);
    expect(existingLabCgroups(crashed)).toEqual([]);
    expect(mountsUnder(crashed)).toEqual([]);
  });

  it('down finds a node\'s processes by its cgroups alone (record and machine ID gone) and leaves no cgroup', async () => {
    const layout = labLayout(path.join(runDir, 'lab'));
    markDir(layout);
    const node = await boot(layout.nodesDir, 'c5', '127.0.0.35');
    expect((await node.exec(['systemctl', 'start', 'twin.service'])).code).toBe(0);
    const main = await hostMainPid(node, 'twin.service');
    // What else would prove the node's: its record and the machine ID in its upper layer.
    for (const file of ['node.json', 'nspawn.pid', 'upper/etc/machine-id']) rmSync(path.join(node.dir, file));

    const found = labProcesses(layout.dir);
    expect(found).toContainEqual({ pid: node.initPid, kind: 'node' });
    expect(found).toContainEqual({ pid: main, kind: 'node' });

    await down(layout.dir);
    expect(isAlive(node.initPid) || isAlive(main)).toBe(false);
    expect(existingLabCgroups(layout.nodesDir)).toEqual([]);
    expect(existsSync(layout.dir)).toBe(false);
  });
});

// The host PID of a unit's main process (systemd inside names it in the
// node's PID namespace: NSpid's last field).
async function hostMainPid(node: LabNode, unit: string): Promise<number> {
  const inner = Number((await node.exec(['systemctl', 'show', '-p', 'MainPID', '--value', unit])).stdout.trim());
  if (!(inner > 0)) throw new Error(`${unit} has no main process in ${node.name}`);
  for (const pid of pidsInNamespace(node.pidNamespace)) {
    const nspid = /^NSpid:\s+(.+)$/m.exec(readOr(`/proc/${pid}/status`))?.[1]?.trim().split(/\s+/);
    if (Number(nspid?.[nspid.length - 1]) === inner) return pid;
  }
  throw new Error(`${unit}'s main process ${inner} of ${node.name} not found on the host`);
}

// A process's cgroup in the name=systemd hierarchy and in cgroup2, as the host sees them.
function cgroupsOf(pid: number): { systemd?: string; unified?: string } {
  const out: { systemd?: string; unified?: string } = {};
  for (const line of readOr(`/proc/${pid}/cgroup`).split('\n')) {
    const [, controllers, ...rest] = line.split(':');
    if (controllers === 'name=systemd') out.systemd = rest.join(':');
    else if (line.startsWith('0::')) out.unified = rest.join(':');
  }
  return out;
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
