// The systemd driver when the node's D-Bus goes away: the dbus-daemon
// killed, restarted, and stopped for a while. The driver must connect again,
// subscribe again, settle the jobs it waited for, catch up on states missed
// meanwhile, and say so through onReconnect.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bootNode,
  cleanup,
  killLiveNodesSync,
  makeRunDir,
  mountsUnder,
  skipWithoutNodes,
  type LabNode,
} from '../../src/lab/nodes.js';
import { connectSystemd, type DbusSystemd } from '../../src/systemd/dbus.js';
import { BusClosedError } from '../../src/systemd/errors.js';
import type { UnitStatus } from '../../src/systemd/types.js';

describe.skipIf(skipWithoutNodes('systemd reconnect tests (test/e2e/systemd-reconnect.test.ts)'))('systemd driver reconnects', () => {
  let runDir = '';
  let node: LabNode | undefined;
  let driver: DbusSystemd | undefined;
  const seen: UnitStatus[] = [];
  let reconnects = 0;

  const n = (): LabNode => node ?? expect.fail('no node');
  const d = (): DbusSystemd => driver ?? expect.fail('no driver');

  beforeAll(async () => {
    runDir = makeRunDir();
    process.once('exit', killLiveNodesSync);
    node = await bootNode({ stateDir: runDir, name: 'sd2', ip: '127.0.0.62' });
    driver = await connectSystemd({
      busAddress: node.busAddress,
      rootDir: node.hostRoot,
      // Only the catch-up after a reconnect may list units, never a timer.
      resyncMs: 3_600_000,
    });
    driver.onStatus((s) => seen.push(s));
    driver.onReconnect(() => reconnects++);
    const oneshot = (seconds: number): string => `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep ${seconds}\n`;
    const units: Record<string, string> = {
      'slow.service': oneshot(2),
      'brief.service': oneshot(1),
      'steady.service': '[Service]\nExecStart=/bin/sleep infinity\n',
      'late.service': '[Service]\nExecStart=/bin/sleep infinity\n',
    };
    for (const [name, text] of Object.entries(units)) await driver.writeUnitFile(name, text);
    await driver.linkUnitFiles(Object.keys(units));
    await driver.watch(Object.keys(units));
  });

  afterAll(async () => {
    process.off('exit', killLiveNodesSync);
    await driver?.close().catch((err: unknown) => console.error(err));
    await node?.destroy().catch((err: unknown) => console.error(err));
    if (runDir) {
      await cleanup(runDir);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
    }
  });

  const sh = async (...argv: string[]): Promise<string> => (await n().exec(argv)).stdout.trim();
  const dbusPid = (): Promise<string> => sh('systemctl', 'show', '-p', 'MainPID', '--value', 'dbus.service');

  it('survives a killed dbus-daemon: a job in flight still resolves, and signals arrive again', async () => {
    expect(Number(await dbusPid())).toBeGreaterThan(0);
    const before = await dbusPid();
    const job = d().startUnit('slow.service'); // runs 2 s
    await until(() => seen.some((s) => s.name === 'slow.service' && s.activeState === 'activating'));

    const t0 = performance.now();
    // By PID inside the node (`systemctl kill` also signals dbus.service's
    // other processes, and fails on those it cannot reach here).
    const killed = await n().exec(['kill', '-KILL', before]);
    expect(killed.code, killed.stderr).toBe(0);
    await until(() => reconnects === 1);
    console.log(`reconnected ${(performance.now() - t0).toFixed(0)} ms after the dbus-daemon was killed`);
    expect(await dbusPid()).not.toBe(before);

    // The job outlived the bus; its JobRemoved came on the new connection.
    expect(await job).toBe('done');
    const mark = seen.length;
    expect(await d().startUnit('steady.service')).toBe('done');
    await until(() => seen.slice(mark).some((s) => s.name === 'steady.service' && s.activeState === 'active'));
    expect(await sh('systemctl', 'is-active', 'slow.service', 'steady.service')).toBe('active\nactive');
  });

  it('survives a clean restart of D-Bus, repeating a call lost with the connection', async () => {
    const restarted = await n().exec(['systemctl', 'restart', 'dbus.service']);
    expect(restarted.code, restarted.stderr).toBe(0);
    // Made at once: it may go out on the dying connection and be made again.
    expect(await d().stopUnit('steady.service')).toBe('done');
    await until(() => reconnects === 2);
    expect(await sh('systemctl', 'is-active', 'steady.service')).toBe('inactive');
  });

  it('catches up on what changed while D-Bus was down, and settles a job that ended meanwhile', async () => {
    // Runs 1 s, so it ends while the bus is down: its JobRemoved is lost.
    const job = d().startUnit('brief.service');
    await until(() => seen.some((s) => s.name === 'brief.service' && s.activeState === 'activating'));
    await new Promise((r) => setTimeout(r, 100)); // the StartUnit reply, behind the signal
    const mark = seen.length;
    // Bus down (socket too, so nothing activates it) for a while; systemd
    // itself is still reachable through its private socket.
    expect((await n().exec(['systemctl', 'stop', 'dbus.socket', 'dbus.service'])).code).toBe(0);
    expect((await n().exec(['systemctl', 'start', 'late.service'])).code).toBe(0);
    expect((await n().exec(['systemctl', 'stop', 'slow.service'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await sh('systemctl', 'is-active', 'brief.service')).toBe('active');
    expect(reconnects).toBe(2);
    expect(seen.length).toBe(mark);

    expect((await n().exec(['systemctl', 'start', 'dbus.socket'])).code).toBe(0);
    await until(() => reconnects === 3, 15_000);
    // Both changes came from the catch-up listing; no signal carried them.
    const caught = seen.slice(mark);
    expect(caught).toContainEqual({ name: 'late.service', loadState: 'loaded', activeState: 'active', subState: 'running' });
    expect(caught).toContainEqual({ name: 'slow.service', loadState: 'loaded', activeState: 'inactive', subState: 'dead' });
    // Its result read from the unit's state, the only record left of it.
    expect(await job).toBe('done');
    expect(await d().stopUnit('late.service')).toBe('done');
  });

  it('subscribes again when systemd re-joins the bus on the same connection (daemon-reexec)', async () => {
    const reexec = await n().exec(['systemctl', 'daemon-reexec']);
    expect(reexec.code, reexec.stderr).toBe(0);
    await until(() => reconnects === 4);
    const mark = seen.length;
    expect(await d().startUnit('steady.service')).toBe('done');
    await until(() => seen.slice(mark).some((s) => s.name === 'steady.service' && s.activeState === 'active'));
  });

  it('after close(), calls fail at once and nothing reconnects', async () => {
    await d().close();
    await expect(d().startUnit('steady.service')).rejects.toThrow(BusClosedError);
    await expect(d().listUnitsByNames(['steady.service'])).rejects.toThrow(BusClosedError);
    expect((await n().exec(['systemctl', 'restart', 'dbus.service'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(reconnects).toBe(4);
  });
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
