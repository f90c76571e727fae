// The D-Bus systemd driver against a real systemd: one lab node, driven from
// the test process through the node's own system bus
// (/proc/<init>/root/run/dbus/system_bus_socket) with unit files written
// into the node's /run (rootDir /proc/<init>/root).
import { readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
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
import { unitNameOfPath, unitObjectPath } from '../../src/systemd/object-paths.js';
import type { UnitStatus } from '../../src/systemd/types.js';
import { hashText } from '../../src/unit/hash.js';

const UNIT_DIR = '/run/flotilla/units';

describe.skipIf(skipWithoutNodes('systemd driver tests (test/e2e/systemd-driver.test.ts)'))('systemd D-Bus driver', () => {
  let runDir = '';
  let node: LabNode | undefined;
  let driver: DbusSystemd | undefined;
  const statuses = new StatusLog();

  // The node and driver, once beforeAll has made them.
  const n = (): LabNode => node ?? expect.fail('no node');
  const d = (): DbusSystemd => driver ?? expect.fail('no driver');

  beforeAll(async () => {
    runDir = makeRunDir();
    process.once('exit', killLiveNodesSync);
    node = await bootNode({ stateDir: runDir, name: 'sd1', ip: '127.0.0.61' });
    driver = await connectSystemd({
      busAddress: node.busAddress,
      rootDir: node.hostRoot,
      // No safety-net resync during the run: every state change seen here came by signal.
      resyncMs: 3_600_000,
    });
    driver.onStatus((s) => statuses.add(s));
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
  // The node's / as its own processes see it: with the /run that nspawn
  // mounted in the node's mount namespace (the overlay at n().root lacks it).
  const inNode = (file: string): string => path.join(`/proc/${n().initPid}/root`, file);
  const ls = (dir: string): string[] => {
    try {
      return readdirSync(inNode(dir));
    } catch {
      return [];
    }
  };

  it('writes, links and starts a new unit without a reload, and stops it', async () => {
    const name = 'hello.service';
    // Asked about before its file exists, systemd caches it as not-found...
    expect(await d().listUnitsByNames([name])).toEqual([status(name, 'not-found', 'inactive', 'dead')]);
    expect(await d().writeUnitFile(name, sleeper())).toEqual({ changed: true });
    expect(await d().writeUnitFile(name, sleeper())).toEqual({ changed: false });
    await d().linkUnitFiles([name]);
    expect(readlinkSync(inNode(`/run/systemd/system/${name}`))).toBe(`${UNIT_DIR}/${name}`);
    // ...and still starts it once linked: no daemon-reload in between.
    expect(await d().startUnit(name)).toBe('done');
    expect(await sh('systemctl', 'is-active', name)).toBe('active');
    expect(await d().listUnitsByNames([name])).toEqual([status(name, 'loaded', 'active', 'running')]);
    expect(await d().listUnitFiles()).toEqual(new Map([[name, hashText(sleeper())]]));

    expect(await d().stopUnit(name)).toBe('done');
    expect(await sh('systemctl', 'is-active', name)).toBe('inactive');

    // One unit's start latency: write, link, StartUnit until JobRemoved.
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const one = `latency-${i}.service`;
      const t0 = performance.now();
      await d().writeUnitFile(one, sleeper());
      await d().linkUnitFiles([one]);
      expect(await d().startUnit(one)).toBe('done');
      times.push(performance.now() - t0);
    }
    console.log(`one unit write+link+start until done: median ${ms(median(times))} (${times.map(ms).join(', ')})`);
    await unload(d(), [name, ...times.map((_, i) => `latency-${i}.service`)]);
  });

  it('enables a unit with [Install] at runtime', async () => {
    const name = 'installed.service';
    await d().writeUnitFile(name, sleeper('\n[Install]\nWantedBy=multi-user.target\n'));
    await d().linkUnitFiles([name]);
    await d().enableUnitFiles([name]);
    expect(await sh('systemctl', 'is-enabled', name)).toBe('enabled-runtime');
    expect(ls('/run/systemd/system/multi-user.target.wants')).toContain(name);
    expect(await d().startUnit(name)).toBe('done');
    expect(await sh('systemctl', 'is-active', name)).toBe('active');
    await unload(d(), [name]);
  });

  it('reports a start that fails as failed, while another unit starts', async () => {
    const bad = 'fails.service';
    const good = 'works.service';
    await d().writeUnitFile(bad, '[Service]\nType=oneshot\nExecStart=/bin/false\n');
    await d().writeUnitFile(good, sleeper());
    await d().linkUnitFiles([bad, good]);
    await d().watch([bad, good]);
    const [badResult, goodResult] = await Promise.all([d().startUnit(bad), d().startUnit(good)]);
    expect(badResult).toBe('failed');
    expect(goodResult).toBe('done');
    expect(await d().listUnitsByNames([bad, good])).toEqual([
      status(bad, 'loaded', 'failed', 'failed'),
      status(good, 'loaded', 'active', 'running'),
    ]);
    expect(await sh('systemctl', 'is-failed', bad)).toBe('failed');
    await statuses.until(bad, 'failed');

    // A missing program: Type=exec waits for the exec, so the job fails.
    const missing = 'missing-program.service';
    await d().writeUnitFile(missing, '[Service]\nType=exec\nExecStart=/nonexistent/program\n');
    await d().linkUnitFiles([missing]);
    expect(await d().startUnit(missing)).toBe('failed');

    // Type=simple (the default) does not wait: its job is done as soon as the
    // process is forked, and the failure shows only in the unit's state.
    const simple = 'simple-false.service';
    await d().writeUnitFile(simple, '[Service]\nExecStart=/bin/false\n');
    await d().linkUnitFiles([simple]);
    await d().watch([simple]);
    expect(await d().startUnit(simple)).toBe('done');
    await statuses.until(simple, 'failed');

    await unload(d(), [bad, good, missing, simple]);
    d().unwatch([bad, good, simple]);
    expect(await sh('systemctl', 'list-units', '--failed', '--plain', '--no-legend')).toBe('');
  });

  it('notices a changed file of a loaded unit, and one reload makes a restart use it', async () => {
    const names = ['changed-0.service', 'changed-1.service', 'changed-2.service'];
    for (const name of names) await d().writeUnitFile(name, '[Service]\nExecStart=/bin/sleep 1001\n');
    await d().linkUnitFiles(names);
    for (const name of names) expect(await d().startUnit(name)).toBe('done');
    expect(await d().needsReload(names[0] ?? '')).toBe(false);
    expect(await d().needsReload('never-loaded.service')).toBe(false);

    // The same content is not rewritten and needs nothing.
    expect(await d().writeUnitFile(names[0] ?? '', '[Service]\nExecStart=/bin/sleep 1001\n')).toEqual({ changed: false });
    expect(await d().needsReload(names[0] ?? '')).toBe(false);

    for (const name of names) expect(await d().writeUnitFile(name, '[Service]\nExecStart=/bin/sleep 1002\n')).toEqual({ changed: true });
    expect(await Promise.all(names.map((name) => d().needsReload(name)))).toEqual([true, true, true]);
    // One reload for the whole batch.
    const t0 = performance.now();
    await d().reload();
    console.log(`daemon-reload: ${ms(performance.now() - t0)}`);
    expect(await Promise.all(names.map((name) => d().needsReload(name)))).toEqual([false, false, false]);

    // Still running the old definition until restarted.
    expect(await mainCommand(names[0] ?? '')).toBe('/bin/sleep 1001');
    for (const name of names) {
      expect(await d().stopUnit(name)).toBe('done');
      expect(await d().startUnit(name)).toBe('done');
      expect(await mainCommand(name)).toBe('/bin/sleep 1002');
    }
    await unload(d(), names);
  });

  it('unloads a unit (stop, disable, reset-failed, remove) so that systemd no longer knows it', async () => {
    const name = 'unload-me.service';
    const failed = 'unload-failed.service';
    await d().writeUnitFile(name, sleeper('\n[Install]\nWantedBy=multi-user.target\n'));
    await d().writeUnitFile(failed, '[Service]\nType=oneshot\nExecStart=/bin/false\n');
    await d().linkUnitFiles([name, failed]);
    await d().enableUnitFiles([name]);
    expect(await d().startUnit(name)).toBe('done');
    expect(await d().startUnit(failed)).toBe('failed');

    await unload(d(), [name, failed]);

    for (const unit of [name, failed]) {
      const st = await n().exec(['systemctl', 'status', '--no-pager', unit]);
      expect(st.code).toBe(4);
      expect(st.stderr).toMatch(/could not be found/);
      expect(ls('/run/systemd/system')).not.toContain(unit);
      expect(ls('/run/systemd/system/multi-user.target.wants')).not.toContain(unit);
      expect(ls(UNIT_DIR)).not.toContain(unit);
    }
    expect(await d().listUnitsByNames([name, failed])).toEqual([
      status(name, 'not-found', 'inactive', 'dead'),
      status(failed, 'not-found', 'inactive', 'dead'),
    ]);
    expect([...(await d().listUnitFiles()).keys()]).toEqual([]);
    // Removing what is gone already is fine.
    await d().removeUnitFile(name);
    await d().resetFailedUnit(name);
  });

  it('delivers state changes of watched units as signals, without polling', async () => {
    const name = 'watched.service';
    const other = 'not-watched.service';
    // Watched before its file exists (as the agent may).
    await d().watch([name]);
    await d().writeUnitFile(name, sleeper());
    await d().writeUnitFile(other, sleeper());
    await d().linkUnitFiles([name, other]);
    const from = statuses.mark();

    expect(await d().startUnit(name)).toBe('done');
    expect(await d().startUnit(other)).toBe('done');
    const active = await statuses.until(name, 'active', from);
    expect(await d().stopUnit(name)).toBe('done');
    // JobRemoved and the last PropertiesChanged come in either order.
    await statuses.until(name, 'inactive', active + 1);

    const seen = statuses.since(from);
    expect(seen.filter((s) => s.name === other)).toEqual([]);
    const mine = seen.filter((s) => s.name === name);
    const states = mine.map((s) => s.activeState);
    expect(states.indexOf('active')).toBeGreaterThanOrEqual(0);
    expect(states.lastIndexOf('inactive')).toBeGreaterThan(states.indexOf('active'));
    expect(seen.find((s) => s.name === name && s.activeState === 'active')).toEqual(status(name, 'loaded', 'active', 'running'));
    // No repeats: each reported status differs from the one before.
    for (let i = 1; i < mine.length; i++) expect(mine[i]).not.toEqual(mine[i - 1]);

    // Unwatched: silence.
    d().unwatch([name]);
    const after = statuses.mark();
    expect(await d().startUnit(name)).toBe('done');
    expect(await d().stopUnit(name)).toBe('done');
    expect(statuses.since(after)).toEqual([]);
    await unload(d(), [name, other]);
  });

  it('maps unit names to the object paths systemd uses, so odd and escaped names get their signals too', async () => {
    // with the escapes systemd-escape writes, too (a backslash is _5c in the path)
    const names = ['web@1.service', '9lives.service', 'a_b-c:d.service', 'x\\x2dy.service', 'backup@-srv-a\\x2db.service'];
    for (const name of names) await d().writeUnitFile(name, sleeper());
    await d().linkUnitFiles(names);
    await d().watch(names);
    const from = statuses.mark();
    for (const name of names) {
      expect(await d().startUnit(name)).toBe('done');
      const reply = await sh('busctl', 'call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'GetUnit', 's', name);
      expect(reply).toBe(`o "${unitObjectPath(name)}"`);
      expect(unitNameOfPath(unitObjectPath(name))).toBe(name);
    }
    await Promise.all(names.map((name) => statuses.until(name, 'active', from)));
    d().unwatch(names);
    await unload(d(), names);
  });

  it('starts 100 new units in parallel', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `bulk-${String(i).padStart(3, '0')}.service`);
    const t0 = performance.now();
    await Promise.all(names.map((name) => d().writeUnitFile(name, sleeper())));
    const tWritten = performance.now();
    await d().linkUnitFiles(names);
    const tLinked = performance.now();
    await d().watch(names);
    const tWatched = performance.now();
    const from = statuses.mark();
    const allActive = Promise.all(names.map((name) => statuses.until(name, 'active', from)));
    const results = await Promise.all(names.map((name) => d().startUnit(name)));
    const tDone = performance.now();
    await allActive;
    const tActive = performance.now();
    expect(results.every((r) => r === 'done')).toBe(true);
    const listed = await d().listUnitsByNames(names);
    expect(listed.filter((s) => s.activeState === 'active')).toHaveLength(100);
    expect(Number(await sh('sh', '-c', 'systemctl list-units --plain --no-legend "bulk-*" | grep -c " active running "'))).toBe(100);

    const s0 = performance.now();
    const stopped = await Promise.all(names.map((name) => d().stopUnit(name)));
    const tStopped = performance.now() - s0;
    expect(stopped.every((r) => r === 'done')).toBe(true);
    d().unwatch(names);
    const u0 = performance.now();
    await d().disableUnitFiles(names);
    await Promise.all(names.map((name) => d().removeUnitFile(name)));
    const tUnloaded = performance.now() - u0;
    expect((await d().listUnitsByNames(names)).every((s) => s.loadState === 'not-found')).toBe(true);

    console.log(
      JSON.stringify({
        bench: 'systemd-100-units',
        writeMs: round(tWritten - t0),
        linkMs: round(tLinked - tWritten),
        watchMs: round(tWatched - tLinked),
        startAllDoneMs: round(tDone - tWatched),
        allActiveSignalledMs: round(tActive - tWatched),
        totalToAllActiveMs: round(tActive - t0),
        stopAllMs: round(tStopped),
        disableAndRemoveMs: round(tUnloaded),
      }),
    );
    expect(tActive - t0).toBeLessThan(15_000);
  });

  // What the agent does to let go of units: stop, disable, reset-failed, remove.
  async function unload(drv: DbusSystemd, names: readonly string[]): Promise<void> {
    await Promise.all(names.map((name) => drv.stopUnit(name)));
    await drv.disableUnitFiles(names);
    for (const name of names) await drv.resetFailedUnit(name);
    for (const name of names) await drv.removeUnitFile(name);
  }

  // The command line of a unit's main process, read inside the node.
  async function mainCommand(name: string): Promise<string> {
    const pid = await sh('systemctl', 'show', '-p', 'MainPID', '--value', name);
    return (await sh('cat', `/proc/${pid}/cmdline`)).replaceAll('\0', ' ').trim();
  }
});

function sleeper(extra = ''): string {
  return `[Unit]\nDescription=flotilla e2e\n\n[Service]\nExecStart=/bin/sleep infinity\n${extra}`;
}

function status(name: string, loadState: string, activeState: string, subState: string): UnitStatus {
  return { name, loadState, activeState, subState };
}

/** Every status onStatus delivered, with waits for one to come. */
class StatusLog {
  private readonly seen: UnitStatus[] = [];
  private readonly waiters = new Set<() => void>();

  add(s: UnitStatus): void {
    this.seen.push(s);
    for (const w of this.waiters) w();
  }

  mark(): number {
    return this.seen.length;
  }

  since(mark: number): UnitStatus[] {
    return this.seen.slice(mark);
  }

  /** Resolves with its index once a status of `name` with `activeState` has come (at or after `from`). */
  until(name: string, activeState: string, from = 0, timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.seen.findIndex((s, i) => i >= from && s.name === name && s.activeState === activeState);
        if (hit < 0) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const got = this.seen.slice(from).filter((s) => s.name === name).map((s) => s.activeState);
        reject(new Error(`no ${activeState} status of ${name} within ${timeoutMs} ms (got: ${got.join(', ') || 'nothing'})`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
