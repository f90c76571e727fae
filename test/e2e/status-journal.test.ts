// flotctl status and journal on a 3-node lab: served by the flotillad on the
// unit's machine (its API on TCP, advertised in its machine record, with the
// lab's token), no SSH. status is systemd's own text; journal shows what the
// unit printed, -n, -f streaming a line printed after it started; a global
// unit's status comes from every machine; an inactive unit's journal is
// refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apiTokenFile } from '../../src/lab/lab-folder.js';
import { labLayout } from '../../src/lab/lab-state.js';
import { skipWithoutNodes } from '../../src/lab/nodes.js';
import { eventually, LabCluster } from '../helpers/lab-cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FLOTCTL = path.join(repo, 'dist', 'cli', 'flotctl.js');

// Prints a marker, then prints LATE-<id> each time /run/<id>.go appears.
const ECHO = (id: string): string =>
  `[Unit]\nDescription=echo ${id}\n\n[Service]\nExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6 7; do echo ${id}-line-$i; done; while true; do if [ -e /run/${id}.go ]; then rm -f /run/${id}.go; echo LATE-${id}; fi; sleep 0.2; done'\n`;

describe.skipIf(skipWithoutNodes('status and journal (test/e2e/status-journal.test.ts)'))('flotctl status and journal through the daemons', () => {
  let c: LabCluster;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    c = await LabCluster.start({ nodes: 3 });
  });
  afterAll(async () => {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await c?.close();
  });
  afterEach(async () => {
    await c?.destroyAll();
  });

  it('the lab makes an API token (0600) and every machine advertises its API', async () => {
    const token = apiTokenFile(labLayout(c.dir));
    expect(statSync(token).mode & 0o777).toBe(0o600);
    expect(readFileSync(token, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(labLayout(c.dir).envFile, 'utf8')).toContain(`export FLOTCTL_API_TOKEN_FILE=${token}\n`);
    const machines = await c.registry.listMachines();
    expect(machines.map((m) => m.apiUrl).sort()).toEqual(c.records().map((r) => `http://${r.ip}:7480`).sort());
  });

  it("status is systemctl status of the unit on its machine; journal -n shows what it printed; -f streams", async () => {
    const file = c.writeUnit('echo.service', ECHO('echo'));
    await c.ctl('start', file);
    const node = await c.activeOnOne('echo.service');

    const status = await c.flotctl('status', 'echo.service');
    expect(status).toMatchObject({ code: 0, stderr: '' });
    expect(status.stdout).toMatch(/echo\.service - echo echo/);
    expect(status.stdout).toMatch(/Active: active \(running\)/);
    expect(status.stdout).toMatch(/Loaded: loaded \(/);
    expect(status.stdout).toMatch(/Main PID: \d+/);

    // The lines reach the journal a moment after the unit printed them.
    let journal = '';
    await eventually(async () => {
      journal = (await c.ctl('journal', '-n', '5', 'echo.service'));
      return journal.includes('echo-line-7');
    }, 'journal -n 5 shows echo-line-7');
    // The last 5 lines: echo-line-4 to 7, and echo-line-3 or systemd's "Started" (journald may order it either side).
    for (const i of [4, 5, 6, 7]) expect(journal).toContain(`echo-line-${i}`);
    expect(journal).not.toContain('echo-line-2');
    expect(journal.trimEnd().split('\n')).toHaveLength(5);
    // --output=cat: the messages only
    const cat = await c.ctl('journal', '--lines', '2', '--output', 'cat', 'echo');
    expect(cat.trimEnd().split('\n')).toHaveLength(2);
    expect(cat).toMatch(/^echo-line-7$/m);
    expect(cat).not.toMatch(/sh\[\d+\]:/);

    // -f, as a user runs it: a separate flotctl, stopped by the test.
    const child = spawn(process.execPath, [FLOTCTL, 'journal', '-f', '-n', '1', 'echo.service'], { env: { ...process.env, ...c.flotctlEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    // The last line: echo-line-7, or systemd's "Started" line when journald put it after.
    await eventually(() => /echo-line-7|Started echo\.service/.test(out), 'journal -f prints the last line');
    expect(out).not.toContain('LATE-echo');
    await c.exec(node, ['touch', '/run/echo.go']);
    await eventually(() => out.includes('LATE-echo'), 'journal -f streams a line printed after it started');
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    // The daemon ended its journalctl once flotctl went.
    await eventually(async () => (await c.exec(node, ['pgrep', '-x', 'journalctl'])).code === 1, 'journalctl -f ended on the node');
  });

  it('status of a global unit shows every machine; journal of an inactive unit fails clearly', async () => {
    const file = c.writeUnit('glob.service', `${ECHO('glob')}\n[X-Fleet]\nGlobal=true\n`);
    await c.ctl('start', file);
    await eventually(async () => (await c.activeOn('glob.service')).length === 3, 'glob.service active on every node');
    await eventually(async () => (await c.registry.listStates('glob.service')).filter((s) => s.activeState === 'active').length === 3, 'every machine reports glob.service');
    const status = await c.flotctl('status', 'glob.service');
    expect(status).toMatchObject({ code: 0, stderr: '' });
    for (const r of c.records()) expect(status.stdout).toContain(`=== glob.service on ${r.machineId.slice(0, 8)}.../${r.ip} ===`);
    expect(status.stdout.match(/Active: active \(running\)/g)).toHaveLength(3);

    const off = c.writeUnit('off.service', ECHO('off'));
    await c.ctl('submit', off);
    const r = await c.flotctl('journal', 'off.service');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/off\.service is inactive/);
  });
});
