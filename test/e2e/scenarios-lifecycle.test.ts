// fleet's functional suite, unit actions: a unit through submit, load,
// start, stop, unload and destroy with flotctl, --replace for submit, load
// and start, cat, and list-unit-files' order, on a 3-node lab. Every step is
// checked in systemd inside the nodes, not only in the registry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNodes } from '../../src/lab/nodes.js';
import { eventually, LabCluster } from '../helpers/lab-cluster.js';

const SLEEP = (n: number): string => `[Unit]\nDescription=scenario unit ${n}\n\n[Service]\nExecStart=/bin/sleep ${n}\n`;

describe.skipIf(skipWithoutNodes('lifecycle scenarios (test/e2e/scenarios-lifecycle.test.ts)'))('scenarios: unit lifecycle with flotctl', () => {
  let c: LabCluster;

  beforeAll(async () => {
    c = await LabCluster.start({ nodes: 3 });
  });
  afterAll(async () => {
    await c?.close();
  });
  afterEach(async () => {
    await c?.destroyAll();
  });

  it('submit, load, start, stop, unload, destroy: each state as systemd has it on exactly one node', async () => {
    const file = c.writeUnit('hello.service', SLEEP(1001));

    // submit: in the registry only; no node's systemd knows the unit
    expect(await c.ctl('submit', file)).toBe('Unit hello.service inactive\n');
    expect(await c.ctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state')).toMatch(/^hello\.service\s+inactive\s+inactive\s*\n$/);
    expect(await c.loadedOn('hello.service')).toEqual([]);
    // submitting the same file again is a no-op
    expect(await c.flotctl('submit', file)).toMatchObject({ code: 0, stdout: '' });

    // load: loaded (and not running) on the one node the engine chose
    const loaded = await c.ctl('load', 'hello.service');
    const node = await c.scheduledOn('hello.service');
    expect(node).toBeDefined();
    const { ip } = c.record(node!);
    expect(loaded).toBe(`Unit hello.service loaded on ${c.machineId(node!).slice(0, 8)}.../${ip}\n`);
    expect(await c.loadedOn('hello.service')).toEqual([node]);
    expect(await c.isActive(node!, 'hello.service')).toBe('inactive');

    // start: active there, and nowhere else
    expect(await c.ctl('start', 'hello.service')).toBe(`Unit hello.service launched on ${c.machineId(node!).slice(0, 8)}.../${ip}\n`);
    expect(await c.activeOn('hello.service')).toEqual([node]);
    expect(await c.show(node!, 'hello.service', 'ExecStart')).toContain('/bin/sleep 1001');
    expect(await c.ctl('list-units', '--no-legend', '--fields', 'unit,active,sub')).toMatch(/^hello\.service\s+active\s+running\s*\n$/);

    // stop: loaded, stopped
    expect(await c.ctl('stop', 'hello.service')).toContain('Unit hello.service loaded on');
    expect(await c.isActive(node!, 'hello.service')).toBe('inactive');
    expect(await c.loadedOn('hello.service')).toEqual([node]);

    // unload: gone from systemd, still in the registry
    expect(await c.ctl('unload', 'hello.service')).toBe('Unit hello.service inactive\n');
    expect(await c.loadedOn('hello.service')).toEqual([]);
    expect((await c.exec(node!, ['test', '-e', '/run/flotilla/units/hello.service'])).code).not.toBe(0);
    expect(await c.unitNames()).toEqual(['hello.service']);

    // start from inactive, then destroy: gone everywhere
    await c.ctl('start', 'hello.service');
    expect((await c.activeOn('hello.service')).length).toBe(1);
    expect(await c.ctl('destroy', 'hello.service')).toBe('Destroyed hello.service\n');
    expect(await c.activeOn('hello.service')).toEqual([]);
    await eventually(async () => (await c.loadedOn('hello.service')).length === 0, 'hello.service unloaded after destroy');
    expect(await c.unitNames()).toEqual([]);
    const gone = await c.flotctl('cat', 'hello.service');
    expect(gone.code).toBe(1);
  });

  it('submit --replace: the registry keeps its file without it, takes the new one with it; a running unit is not touched by submit', async () => {
    const file = c.writeUnit('rep-submit.service', SLEEP(1101));
    await c.ctl('start', file);
    const node = await c.activeOnOne('rep-submit.service');
    const pid = await c.show(node, 'rep-submit.service', 'MainPID');

    c.writeUnit('rep-submit.service', SLEEP(1102));
    const kept = await c.flotctl('submit', file);
    expect(kept.code).toBe(0);
    expect(kept.stderr).toMatch(/warning: .*rep-submit\.service.*differs/);
    expect(await c.ctl('cat', 'rep-submit.service')).toBe(SLEEP(1101));

    expect(await c.ctl('submit', '--replace', file)).toBe('Unit rep-submit.service replaced\n');
    expect(await c.ctl('cat', 'rep-submit.service')).toBe(SLEEP(1102));
    // the unit was launched: the agent replaces it with the new file and starts it again
    await eventually(async () => (await c.show(node, 'rep-submit.service', 'ExecStart')).includes('/bin/sleep 1102'), 'new file loaded');
    await eventually(async () => (await c.isActive(node, 'rep-submit.service')) === 'active', 'replaced unit active');
    expect(await c.show(node, 'rep-submit.service', 'MainPID')).not.toBe(pid);
    expect(await c.activeOn('rep-submit.service')).toEqual([node]);
  });

  it('load --replace: the loaded unit takes the new file and stays stopped', async () => {
    const file = c.writeUnit('rep-load.service', SLEEP(1201));
    await c.ctl('load', file);
    const node = (await c.loadedOn('rep-load.service'))[0]!;
    expect(node).toBeDefined();
    expect(await c.show(node, 'rep-load.service', 'ExecStart')).toContain('/bin/sleep 1201');

    c.writeUnit('rep-load.service', SLEEP(1202));
    const out = await c.ctl('load', '--replace', file);
    expect(out).toContain('Unit rep-load.service replaced');
    expect(out).toContain('Unit rep-load.service loaded on');
    expect(await c.show(node, 'rep-load.service', 'ExecStart')).toContain('/bin/sleep 1202');
    expect(await c.isActive(node, 'rep-load.service')).toBe('inactive');
    expect(await c.loadedOn('rep-load.service')).toEqual([node]);
  });

  it('start --replace: the running unit is restarted with the new file, on one node', async () => {
    const file = c.writeUnit('rep-start.service', SLEEP(1301));
    await c.ctl('start', file);
    const node = await c.activeOnOne('rep-start.service');
    const pid = await c.show(node, 'rep-start.service', 'MainPID');

    c.writeUnit('rep-start.service', SLEEP(1302));
    const out = await c.ctl('start', '--replace', file);
    expect(out).toContain('Unit rep-start.service replaced');
    expect(out).toContain('Unit rep-start.service launched on');
    // start waits for the report of the new file's hash: systemd runs the new command
    expect(await c.show(node, 'rep-start.service', 'ExecStart')).toContain('/bin/sleep 1302');
    expect(await c.isActive(node, 'rep-start.service')).toBe('active');
    expect(await c.show(node, 'rep-start.service', 'MainPID')).not.toBe(pid);
    expect(await c.activeOn('rep-start.service')).toEqual([node]);
  });

  it('restart runs a new process; start of a unit that fails fails, naming it and its machine', async () => {
    await c.ctl('start', c.writeUnit('again.service', SLEEP(1801)));
    const node = await c.activeOnOne('again.service');
    const pid = await c.show(node, 'again.service', 'MainPID');
    expect(await c.ctl('restart', 'again.service')).toContain('Unit again.service launched on');
    expect(await c.isActive(node, 'again.service')).toBe('active');
    expect(await c.show(node, 'again.service', 'MainPID')).not.toBe(pid);

    c.writeUnit('broken.service', '[Service]\nType=oneshot\nExecStart=/bin/false\n');
    const r = await c.flotctl('start', 'broken.service');
    expect(r.code).toBe(1);
    const where = await c.scheduledOn('broken.service');
    expect(where).toBeDefined();
    expect(r.stderr).toContain(`broken.service failed on ${c.machineId(where!).slice(0, 8)}`);
    expect(await c.isActive(where!, 'broken.service')).toBe('failed');
  });

  it('cat prints the unit file as stored (canonical form), and -o json its text and hash', async () => {
    const canonical = '[Unit]\nDescription=cat me\nAfter=network.target\n\n[Service]\nExecStart=/bin/sleep 1401\nRestart=no\n\n[X-Fleet]\nConflicts=other.service\n';
    c.writeUnit('cat-me.service', canonical);
    await c.ctl('submit', 'cat-me.service');
    expect(await c.ctl('cat', 'cat-me.service')).toBe(canonical);
    // comments and spacing are not part of the stored file
    c.writeUnit('cat-me2.service', `# a comment\n[Unit]\nDescription = cat me\nAfter=network.target\n\n\n[Service]\n; another\nExecStart=/bin/sleep 1401\nRestart=no\n[X-Fleet]\nConflicts=other.service\n`);
    await c.ctl('submit', 'cat-me2.service');
    expect(await c.ctl('cat', 'cat-me2')).toBe(canonical);
    const json = JSON.parse(await c.ctl('cat', '-o', 'json', 'cat-me.service')) as { text: string; hash: string; desiredState: string };
    expect(json).toMatchObject({ text: canonical, desiredState: 'inactive' });
    expect(json.hash).toMatch(/^[0-9a-f]{40}$/);
    // an instance made from a template shows the template's file
    c.writeUnit('tmpl@.service', '[Service]\nExecStart=/bin/sleep 15%i\n');
    await c.ctl('start', 'tmpl@01.service');
    expect(await c.ctl('cat', 'tmpl@01.service')).toBe('[Service]\nExecStart=/bin/sleep 15%i\n');
    const node = await c.activeOnOne('tmpl@01.service');
    expect(await c.show(node, 'tmpl@01.service', 'ExecStart')).toContain('/bin/sleep 1501');
  });

  it('units destroyed and submitted again with other files run the new files on every node', async () => {
    // Regression: systemd may keep a destroyed unit's definition in memory;
    // a new file of the same name must not run the old one.
    const files = (n: number): string[] => [
      c.writeUnit('again-1.service', SLEEP(1700 + n)),
      c.writeUnit('again-2.service', SLEEP(1710 + n)),
      c.writeUnit('again-g.service', `${SLEEP(1720 + n)}\n[X-Fleet]\nGlobal=true\n`),
    ];
    const units = ['again-1.service', 'again-2.service', 'again-g.service'];
    for (const round of [1, 2, 3]) {
      await c.ctl('start', ...files(round));
      await eventually(async () => (await c.activeOn('again-g.service')).length === 3, `round ${round}: the global unit on every node`);
      for (const u of units) {
        for (const n of await c.activeOn(u)) {
          const want = `/bin/sleep ${u === 'again-1.service' ? 1700 + round : u === 'again-2.service' ? 1710 + round : 1720 + round}`;
          expect(await c.show(n, u, 'ExecStart'), `${u} on ${n}, round ${round}`).toContain(want);
        }
      }
      await c.destroyAll();
    }
  });

  it('list-unit-files lists units in name order whatever the order of submission', async () => {
    const names = ['zeta', 'alpha', 'mid@3', 'mid@10', 'beta', 'mid@2', 'Alpha', 'a-b', 'a.b', 'a_b'];
    c.writeUnit('mid@.service', SLEEP(1601));
    for (const n of names.filter((x) => !x.includes('@'))) c.writeUnit(`${n}.service`, SLEEP(1600));
    // one by one, in this order, and then a batch
    for (const n of names.slice(0, 5)) await c.ctl('submit', n);
    await c.ctl('submit', ...names.slice(5));
    const expected = names.map((n) => `${n}.service`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(await c.unitNames()).toEqual(expected);
    const json = JSON.parse(await c.ctl('list-unit-files', '-o', 'json')) as { unitFiles: { unit: string }[] };
    expect(json.unitFiles.map((u) => u.unit)).toEqual(expected);
    expect(await c.loadedOn('alpha.service')).toEqual([]);
  });
});
