// The node harness against real systemd: a node boots, runs units, and when
// it is stopped, killed or cleaned up after a crash, no process, mount or
// folder of it remains. Nodes boot one after another (two cores).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existingLabCgroups } from '../../src/lab/cgroup.js';
import { run } from '../../src/lab/exec.js';
import {
  bootNode,
  cleanup,
  killLiveNodesSync,
  NodeBootError,
  makeRunDir,
  mountsUnder,
  nodeStats,
  skipWithoutNodes,
  unmountAll,
  type LabNode,
} from '../../src/lab/nodes.js';
import { isAlive, startTime } from '../../src/lab/proc.js';

describe.skipIf(skipWithoutNodes('lab node tests (test/e2e/node.test.ts)'))('lab nodes', () => {
  let runDir = '';
  const booted: LabNode[] = [];
  const strays: ChildProcess[] = [];

  const boot = async (opts: Parameters<typeof bootNode>[0]): Promise<LabNode> => {
    const node = await bootNode(opts);
    booted.push(node);
    return node;
  };

  beforeAll(() => {
    runDir = makeRunDir();
    // A worker torn down without afterAll: no node may outlive it (the next
    // run's cleanup() removes the mounts and folders).
    process.once('exit', killLiveNodesSync);
  });

  // Also when a test failed half-way: end every node, then sweep the run's
  // folder with cleanup() for anything a lost handle left behind.
  afterAll(async () => {
    process.off('exit', killLiveNodesSync);
    for (const node of booted) await node.destroy().catch((err: unknown) => console.error(err));
    for (const child of strays) child.kill('SIGKILL');
    if (runDir) {
      await cleanup(runDir);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
    }
  });

  it('boots a node that runs units, and stop() leaves no process, mount or folder', async () => {
    const node = await boot({
      stateDir: runDir,
      name: 'n1',
      ip: '127.0.0.11',
      files: { '/etc/systemd/system/lab-hello.service': '[Service]\nExecStart=/bin/sleep infinity\n' },
      wants: ['lab-hello.service'],
    });
    expect(node.bootState).toBe('running');
    expect(node.initPid).not.toBe(node.nspawnPid);

    // Its identity, as seen from inside.
    expect((await node.exec(['hostname'])).stdout.trim()).toBe('n1');
    expect((await node.exec(['cat', '/etc/machine-id'])).stdout.trim()).toBe(node.machineId);
    expect((await node.exec(['cat', '/etc/flotilla/node.env'])).stdout).toContain('FLOTILLA_NODE_IP=127.0.0.11');
    expect((await node.exec(['systemctl', 'is-active', 'lab-hello.service'])).stdout.trim()).toBe('active');
    expect((await node.exec(['cat'], { input: 'through stdin' })).stdout).toBe('through stdin');

    // A transient unit, as flotillad will start them.
    const started = await node.exec([
      'systemd-run', '--unit=flotilla-probe', '--property=Description=flotilla probe', '--property=RuntimeMaxSec=600',
      'sleep', '300',
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect((await node.exec(['systemctl', 'is-active', 'flotilla-probe'])).stdout.trim()).toBe('active');

    // Before: the node is there by every account.
    const before = scanProcesses(node);
    expect(before).toContain(node.nspawnPid);
    expect(before).toContain(node.initPid);
    expect(before.some((pid) => /(^|\/)sleep 300$/.test(cmdlineOf(pid)))).toBe(true);
    expect(await pgrep(node.dir)).toContain(node.nspawnPid);
    expect(await findmntUnder(node.dir)).toEqual([node.root]);
    expect(existsSync(node.dir)).toBe(true);

    const stats = await nodeStats(node);
    console.log(`node n1: booted in ${node.bootMs} ms; ${stats.processes} processes, RSS ${mib(stats.rssBytes)}, upper ${mib(stats.upperBytes)}`);

    await node.stop();

    // After: nothing of it.
    expect(scanProcesses(node)).toEqual([]);
    expect(await pgrep(node.dir)).toEqual([]);
    expect(await findmntUnder(node.dir)).toEqual([]);
    expect(existsSync(node.dir)).toBe(false);
    await node.destroy(); // idempotent
  });

  it('starts only what the lab wants, whatever the host has enabled', async () => {
    // Units enabled as on a host (systemctl enable links them into the
    // .wants folders of targets basic.target reaches), in a read-only layer
    // over the host root: the host itself is not changed.
    // (On a tmpfs: overlayfs refuses a layer that lies inside another one, /.)
    const layer = path.join(runDir, 'host-layer');
    mkdirSync(layer);
    expect((await run(['mount', '-t', 'tmpfs', 'tmpfs', layer])).code).toBe(0);
    const etc = path.join(layer, 'etc', 'systemd', 'system');
    const unit = (name: string, text: string, wantedBy: string[]): void => {
      writeFileSync(path.join(etc, name), text);
      for (const target of wantedBy) {
        mkdirSync(path.join(etc, `${target}.wants`), { recursive: true });
        symlinkSync(`/etc/systemd/system/${name}`, path.join(etc, `${target}.wants`, name));
      }
    };
    mkdirSync(etc, { recursive: true });
    unit('host-early.service', '[Service]\nExecStart=/bin/sleep infinity\n', ['sysinit.target', 'multi-user.target']);
    unit('host-listen.socket', '[Socket]\nListenStream=/run/host-listen.sock\n', ['sockets.target']);
    unit('host-listen.service', '[Service]\nExecStart=/bin/sleep infinity\n', []);
    unit('host-tick.timer', '[Timer]\nOnActiveSec=1s\nUnit=host-early.service\n', ['timers.target']);
    unit('host-path.path', '[Path]\nPathExists=/etc/hostname\nUnit=host-early.service\n', ['paths.target']);
    mkdirSync(path.join(etc, 'basic.target.requires'));
    symlinkSync('/etc/systemd/system/host-listen.service', path.join(etc, 'basic.target.requires', 'host-listen.service'));

    const node = await boot({
      stateDir: runDir,
      name: 'n9',
      ip: '127.0.0.19',
      hostLayers: [layer],
      files: { '/etc/systemd/system/lab-hello.service': '[Service]\nExecStart=/bin/sleep infinity\n' },
      wants: ['lab-hello.service'],
    });
    expect(node.bootState, node.failedUnits.join(' ')).toBe('running');
    await sleep(1_500); // past host-tick.timer's OnActiveSec, had it started
    // The node sees the host's units (they could be started by hand)...
    expect((await node.exec(['systemctl', 'cat', 'host-early.service'])).code).toBe(0);
    // ...but none of them runs.
    const states = await node.exec(['systemctl', 'is-active', 'host-early.service', 'host-listen.socket', 'host-listen.service', 'host-tick.timer', 'host-path.path']);
    expect(states.stdout.split('\n').filter(Boolean)).toEqual(['inactive', 'inactive', 'inactive', 'inactive', 'inactive']);
    // Running services: the lab's own, journald, and D-Bus once something used it.
    const running = await units(node, 'service', 'running');
    expect(running.filter((u) => u !== 'dbus.service')).toEqual(['lab-hello.service', 'systemd-journald.service']);
    // Listening sockets and waiting timers and paths: systemd's own, no one else's.
    expect((await units(node, 'socket', 'listening')).filter((u) => !/^(dbus|systemd-[a-z-]+)\.socket$/.test(u))).toEqual([]);
    expect(await units(node, 'timer', 'active')).toEqual([]);
    expect((await units(node, 'path', 'active')).filter((u) => !/^systemd-[a-z-]+\.path$/.test(u))).toEqual([]);
    await node.stop();
    await unmountAll(layer);
  });

  it('kill() ends every process of the node at once and leaves the folder until destroy()', async () => {
    const node = await boot({ stateDir: runDir, name: 'n2', ip: '127.0.0.12' });
    const started = await node.exec(['systemd-run', '--unit=flotilla-probe', 'sleep', '300']);
    expect(started.code, started.stderr).toBe(0);
    const before = scanProcesses(node);
    expect(before.length).toBeGreaterThanOrEqual(4); // nspawn, systemd, journald, sleep

    await node.kill();

    expect(isAlive(node.initPid)).toBe(false);
    expect(isAlive(node.nspawnPid)).toBe(false);
    expect(before.filter(isAlive)).toEqual([]);
    expect(scanProcesses(node)).toEqual([]);
    await expect(node.exec(['true'])).rejects.toThrow(/not running/);
    // Left for inspection: the folder with what the node wrote, and its log.
    expect(existsSync(path.join(node.dir, 'upper', 'etc', 'machine-id'))).toBe(true);
    expect(readFileSync(node.logFile, 'utf8')).toContain('Reached target lab-node.target');

    await node.destroy();
    expect(await findmntUnder(node.dir)).toEqual([]);
    expect(existsSync(node.dir)).toBe(false);
    await node.destroy(); // idempotent
  });

  it('cleanup() removes a node whose handle was lost, and spares unrelated processes and live runs', async () => {
    const crashed = path.join(runDir, 'crashed');
    // The crashed run's node; only the facts a later run could read remain.
    const lost = await boot({ stateDir: crashed, name: 'n3', ip: '127.0.0.13' });
    await lost.exec(['systemd-run', '--unit=flotilla-probe', 'sleep', '300']);
    const lostPids = scanProcesses(lost);
    expect(lostPids.length).toBeGreaterThanOrEqual(4);

    // A stale node folder whose PID now names an unrelated process (a reused
    // PID): cleanup must not touch that process.
    const bystander = spawn('sleep', ['120'], { stdio: 'ignore' });
    strays.push(bystander);
    const bystanderPid = bystander.pid ?? 0;
    const stale = path.join(crashed, 'stale-node');
    mkdirSync(stale, { recursive: true });
    writeFileSync(path.join(stale, 'nspawn.pid'), `${bystanderPid}\n`);
    writeFileSync(
      path.join(stale, 'node.json'),
      JSON.stringify({ name: 'stale-node', machineId: 'f'.repeat(32), ip: '127.0.0.99', nspawnPid: bystanderPid, initPid: bystanderPid, pidNamespace: 'pid:[1]' }),
    );
    // A run folder whose owner is alive (another test run going on now).
    const liveRun = path.join(crashed, 'run-live');
    mkdirSync(liveRun);
    writeFileSync(path.join(liveRun, 'owner.json'), JSON.stringify({ pid: bystanderPid, start: startTime(bystanderPid) }));

    const report = await cleanup(crashed);

    expect(report.killed).toContain(lost.initPid);
    expect(report.killed).not.toContain(bystanderPid);
    expect(report.unmounted).toEqual([lost.root]);
    expect(report.kept).toEqual([liveRun]);
    expect(lostPids.filter(isAlive)).toEqual([]);
    expect(scanProcesses(lost)).toEqual([]);
    expect(await pgrep(lost.dir)).toEqual([]);
    expect(await findmntUnder(crashed)).toEqual([]);
    expect(readdirSync(crashed)).toEqual(['run-live']);
    expect(existingLabCgroups(crashed)).toEqual([]);
    expect(isAlive(bystanderPid)).toBe(true);

    // Idempotent: nothing left to do.
    const again = await cleanup(crashed);
    expect(again).toEqual({ killed: [], unmounted: [], network: [], removed: [], kept: [liveRun] });
  });

  it('reports a degraded boot with its failed units, and a failed boot leaves nothing behind', async () => {
    const degraded = await boot({
      stateDir: runDir,
      name: 'n7',
      ip: '127.0.0.17',
      files: { '/etc/systemd/system/lab-broken.service': '[Service]\nType=oneshot\nExecStart=/bin/false\n' },
      wants: ['lab-broken.service'],
    });
    expect(degraded.bootState).toBe('degraded');
    expect(degraded.failedUnits).toEqual(['lab-broken.service']);
    await degraded.stop();

    const failed = bootNode({ stateDir: runDir, name: 'n8', ip: '127.0.0.18', bootTimeoutMs: 1 });
    await expect(failed).rejects.toThrow(NodeBootError);
    await expect(failed).rejects.toThrow(/nspawn log tail/);
    expect(existsSync(path.join(runDir, 'n8'))).toBe(false);
    expect(await findmntUnder(path.join(runDir, 'n8'))).toEqual([]);
    expect(await pgrep(path.join(runDir, 'n8'))).toEqual([]);
  });

  it('boots nodes one after another in seconds, each with its own machine ID', async () => {
    const times: number[] = [];
    const ids = new Set<string>();
    for (const i of [4, 5, 6]) {
      const node = await boot({ stateDir: runDir, name: `n${i}`, ip: `127.0.0.1${i}` });
      times.push(node.bootMs);
      ids.add(node.machineId);
      const stats = await nodeStats(node);
      console.log(`node n${i}: booted in ${node.bootMs} ms; RSS ${mib(stats.rssBytes)}, upper ${mib(stats.upperBytes)}`);
      await node.stop();
    }
    const median = [...times].sort((a, b) => a - b)[1] ?? 0;
    console.log(`median boot to running: ${median} ms (${times.join(', ')})`);
    expect(ids.size).toBe(3);
    expect(median).toBeLessThan(30_000);
  });
});

// Every host process that belongs to the node by an account independent of
// the harness's own: its command line names the node's folder (nspawn), or
// its root directory is the node's (it reads the node's machine ID there).
function scanProcesses(node: LabNode): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (!isAlive(pid)) continue;
    const ours = cmdlineOf(pid).includes(node.dir) || readOr(`/proc/${pid}/root/etc/machine-id`).trim() === node.machineId;
    if (ours) found.push(pid);
  }
  return found;
}

// Names of the node's units of a type in a sub-state, sorted.
async function units(node: LabNode, type: string, sub: string): Promise<string[]> {
  const result = await node.exec(['systemctl', 'list-units', `--type=${type}`, `--state=${sub}`, '--plain', '--no-legend', '--no-pager']);
  return result.stdout.split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '').filter(Boolean).sort();
}

async function pgrep(pattern: string): Promise<number[]> {
  const result = await run(['pgrep', '-f', '--', pattern]);
  return result.stdout.split('\n').filter(Boolean).map(Number);
}

async function findmntUnder(dir: string): Promise<string[]> {
  const result = await run(['findmnt', '-rn', '-o', 'TARGET']);
  return result.stdout.split('\n').filter((t) => t === dir || t.startsWith(dir + '/'));
}

function cmdlineOf(pid: number): string {
  return readOr(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').trim();
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
