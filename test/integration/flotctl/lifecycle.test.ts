// load, start, stop, restart, unload, destroy and the listings, against a
// real etcd with a real engine and hollow machines publishing states.
import { describe, expect, it } from 'vitest';
import { reportDuplicate } from '../../../src/registry/index.js';
import { useEtcd } from '../../helpers/etcd.js';
import { SERVICE, cli, cluster, onCleanup, unitDir } from './harness.js';

const etcd = useEtcd();
const LEGEND = /[0-9a-f]{8}\.\.\.\/10\.0\.0\.\d/;

describe('flotctl lifecycle', () => {
  it('start submits, launches and waits, printing where each unit runs; list-units and list-unit-files show it', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 3);
    const files = unitDir({ 'a.service': SERVICE('/bin/a'), 'b.service': SERVICE('/bin/b') });
    const r = await c.run(['start', 'a', 'b.service'], { cwd: files.dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['Unit a.service inactive', 'Unit b.service inactive']);
    expect(lines.slice(2).sort()).toEqual([
      expect.stringMatching(new RegExp(`^Unit a\\.service launched on ${LEGEND.source}$`)),
      expect.stringMatching(new RegExp(`^Unit b\\.service launched on ${LEGEND.source}$`)),
    ]);

    const units = await c.run(['list-units']);
    expect(units.stdout.split('\n')[0]).toBe('UNIT\t\tMACHINE\t\t\tACTIVE\tSUB');
    expect(units.stdout).toMatch(new RegExp(`^a\\.service\\t${LEGEND.source}\\tactive\\trunning$`, 'm'));
    const files2 = await c.run(['list-unit-files', '--no-legend']);
    expect(files2.stdout).toMatch(new RegExp(`^a\\.service\\t[0-9a-f]{7}\\tlaunched\\tlaunched\\t${LEGEND.source}$`, 'm'));
    const json = JSON.parse((await c.run(['list-units', '-o', 'json'])).stdout);
    expect(json.units[0]).toMatchObject({ unit: 'a.service', activeState: 'active', subState: 'running', loadState: 'loaded', pending: null });
    expect(json.units[0].machine).toMatch(/^[0-9a-f]{32}$/);

    // starting again is idempotent and still reports where it runs
    const again = await c.run(['start', 'a'], { cwd: files.dir });
    expect(again.stdout).toMatch(/^Unit a\.service launched on /);
  });

  it('stop, restart, unload and destroy each wait for their state', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 2);
    const files = unitDir({ 'a.service': SERVICE('/bin/a') });
    expect((await c.run(['start', 'a'], { cwd: files.dir })).code).toBe(0);

    const stop = await c.run(['stop', 'a']);
    expect(stop).toMatchObject({ code: 0, stderr: '' });
    expect(stop.stdout).toMatch(new RegExp(`^Unit a\\.service loaded on ${LEGEND.source}\\n$`));
    expect((await c.run(['list-units', '--no-legend'])).stdout).toMatch(/^a\.service\t.*\tinactive\tdead\n$/);

    const restart = await c.run(['restart', 'a']);
    expect(restart.code).toBe(0);
    expect(restart.stdout).toMatch(/^Unit a\.service launched on /);
    const restart2 = await c.run(['restart', 'a']);
    expect(restart2.stdout).toMatch(/^Unit a\.service loaded on .*\nUnit a\.service launched on .*\n$/);

    const unload = await c.run(['unload', 'a']);
    expect(unload).toEqual({ code: 0, stdout: 'Unit a.service inactive\n', stderr: '' });
    expect(await c.registry.listStates('a.service')).toEqual([]);
    expect((await c.run(['list-units', '--no-legend'])).stdout).toBe('');

    const stopInactive = await c.run(['stop', 'a']);
    expect(stopInactive).toEqual({ code: 1, stdout: '', stderr: 'flotctl: unable to stop unit a.service: it is inactive (not loaded on any machine)\n' });

    expect((await c.run(['start', 'a'])).code).toBe(0);
    const destroy = await c.run(['destroy', 'a']);
    expect(destroy).toEqual({ code: 0, stdout: 'Destroyed a.service\n', stderr: '' });
    expect(await c.registry.getUnit('a.service')).toBeUndefined();
    expect(await c.registry.listDecisions()).toEqual([]);
    // fleetctl's habit: destroying what is not there says so and succeeds
    expect(await c.run(['destroy', 'a'])).toEqual({ code: 0, stdout: '', stderr: 'flotctl: warning: unit a.service does not exist; nothing to destroy\n' });
  });

  it('destroy of units that do not exist says so, destroys the others and exits 0, so destroy x@1; start x@1 goes on', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 1);
    const files = unitDir({ 'x@.service': SERVICE('/bin/sleep %i') });
    expect((await c.run(['start', 'x@1'], { cwd: files.dir })).code).toBe(0);
    const mixed = await c.run(['destroy', 'ghost', 'x@1', 'x@2']);
    expect(mixed).toEqual({
      code: 0,
      stdout: 'Destroyed x@1.service\n',
      stderr: 'flotctl: warning: unit ghost.service does not exist; nothing to destroy\nflotctl: warning: unit x@2.service does not exist; nothing to destroy\n',
    });
    expect(await c.registry.getUnit('x@1.service')).toBeUndefined();
    expect((await c.run(['destroy', '--no-block', 'x@1'])).code).toBe(0);
    const again = await c.run(['start', 'x@1'], { cwd: files.dir });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Unit x@1\.service inactive\nUnit x@1\.service launched on /);
  });

  it('load waits for loaded; --no-block only triggers', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 1);
    const files = unitDir({ 'l.service': SERVICE('/bin/l'), 'n.service': SERVICE('/bin/n') });
    const load = await c.run(['load', 'l'], { cwd: files.dir });
    expect(load.stdout).toMatch(/^Unit l\.service inactive\nUnit l\.service loaded on [0-9a-f]{8}\.\.\.\/10\.0\.0\.0\n$/);
    const noBlock = await c.run(['start', '--no-block', 'n'], { cwd: files.dir });
    expect(noBlock).toEqual({ code: 0, stdout: 'Unit n.service inactive\nTriggered unit n.service start\n', stderr: '' });
    // Each command names itself, as fleetctl did ("Triggered unit NAME stop", not the state it sets).
    expect(await c.run(['stop', '--no-block', 'n'])).toEqual({ code: 0, stdout: 'Triggered unit n.service stop\n', stderr: '' });
    expect(await c.run(['unload', '--no-block', 'n'])).toEqual({ code: 0, stdout: 'Triggered unit n.service unload\n', stderr: '' });
    expect(await c.run(['load', '--no-block', 'n'])).toEqual({ code: 0, stdout: 'Triggered unit n.service load\n', stderr: '' });
  });

  it('a unit no machine can take: start times out naming the reason; list-units shows it pending', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 2, () => ({ role: 'web' }));
    const files = unitDir({ 'db.service': SERVICE('/bin/db', '\n[X-Fleet]\nMachineMetadata=role=db\n') });
    const started = Date.now();
    const r = await c.run(['start', '--block-attempts=2', 'db'], { cwd: files.dir });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^flotctl: timed out after 2 attempts \(0\.5s\) waiting for 1 unit: db\.service \((pending: .*role=db|waiting for the engine to schedule it)\)\n$/);
    for (let i = 0; i < 100 && (await c.registry.listPending()).length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    const lu = await c.run(['list-units']);
    expect(lu.stdout).toBe('UNIT\t\tMACHINE\tACTIVE\tSUB\ndb.service\t-\tpending\t-\n');
    expect(lu.stderr).toMatch(/^db\.service is pending: no machine matches MachineMetadata role=db\n$/);
    const json = JSON.parse((await c.run(['list-units', '-o', 'json'])).stdout);
    expect(json.units).toEqual([expect.objectContaining({ unit: 'db.service', machine: null, pending: expect.stringMatching(/role=db/) })]);
  });

  it('global units are triggered, not waited for; list-units has a row per machine reporting one', async () => {
    const c = cli(etcd.endpoints);
    const hollow = await cluster(c, 2);
    const files = unitDir({ 'g.service': SERVICE('/bin/g', '\n[X-Fleet]\nGlobal=true\n') });
    const r = await c.run(['start', 'g'], { cwd: files.dir });
    expect(r).toEqual({ code: 0, stdout: 'Unit g.service inactive\nTriggered global unit g.service start\n', stderr: '' });
    expect(await c.run(['stop', 'g'])).toEqual({ code: 0, stdout: 'Triggered global unit g.service stop\n', stderr: '' });
    expect(await c.run(['start', 'g'])).toEqual({ code: 0, stdout: 'Triggered global unit g.service start\n', stderr: '' });
    const lease = await c.registry.grantLease(30);
    const unit = (await c.registry.getUnit('g.service'))!;
    await c.registry.publishStates(
      hollow.ids.map((machine) => ({ unit: 'g.service', machine, hash: unit.hash, loadState: 'loaded', activeState: 'active', subState: 'running', since: '' })),
      lease,
    );
    const lu = await c.run(['list-units', '--no-legend', '--fields', 'unit,machine,active']);
    expect(lu.stdout).toBe(`g.service\t${hollow.ids[0]!.slice(0, 8)}.../10.0.0.0\tactive\ng.service\t${hollow.ids[1]!.slice(0, 8)}.../10.0.0.1\tactive\n`);
    const luf = await c.run(['list-unit-files', '--no-legend', '--fields', 'unit,state,target']);
    expect(luf.stdout).toBe('g.service\t-\tglobal\n');
    await lease.revoke();
  });

  it('templates cannot be started, only their instances', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'web@.service': SERVICE('/bin/web %i') });
    const r = await c.run(['start', 'web@.service'], { cwd: files.dir });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'flotctl: web@.service is a template and cannot be started; start an instance such as web@1.service\n',
    });
    expect(await c.registry.listUnits()).toEqual([]);
  });

  it('draws a progress line on a terminal while waiting for several units', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 2);
    const files = unitDir({ 'p@.service': SERVICE('/bin/p %i') });
    const r = await c.run(['start', 'p@1', 'p@2', 'p@3'], { cwd: files.dir, tty: true });
    expect(r.code).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(r.stderr).toMatch(/\r\x1b\[K\d\/3 launched, \d+\.\ds/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
    const quiet = await c.run(['restart', 'p@1', 'p@2'], { cwd: files.dir, tty: false });
    expect(quiet.stderr).toBe('');
  });

  it('lists machines with fleetctl columns and JSON', async () => {
    const c = cli(etcd.endpoints);
    const hollow = await cluster(c, 2, (i): Record<string, string> => (i === 0 ? { role: 'web', az: 'a' } : {}));
    const r = await c.run(['list-m']);
    expect(r.stdout).toBe(`MACHINE\t\tIP\t\tMETADATA\n${hollow.ids[0]!.slice(0, 8)}...\t10.0.0.0\taz=a,role=web\n${hollow.ids[1]!.slice(0, 8)}...\t10.0.0.1\t-\n`);
    const full = await c.run(['list-machines', '-l', '--no-legend', '--fields', 'machine,ip']);
    expect(full.stdout).toBe(`${hollow.ids[0]}\t10.0.0.0\n${hollow.ids[1]}\t10.0.0.1\n`);
    const json = JSON.parse((await c.run(['list-machines', '-o', 'json'])).stdout);
    expect(json.machines[0]).toEqual({ id: hollow.ids[0], ip: '10.0.0.0', hostname: 'hollow-0', metadata: { role: 'web', az: 'a' }, version: 'hollow', since: expect.any(String) });
    expect((await c.run(['__complete-machines'])).stdout).toBe(`${hollow.ids[0]}\n${hollow.ids[1]}\n`);
  });

  it('says in list-machines that another host has a machine ID too and does not act on it', async () => {
    const c = cli(etcd.endpoints);
    const hollow = await cluster(c, 2);
    const lease = await c.registry.grantLease(30);
    onCleanup(() => lease.revoke());
    const id = hollow.ids[1]!;
    await reportDuplicate(c.registry, { machine: id, hostname: 'clone', publicIp: '10.9.9.9', since: '2026-12-04T16:00:00.000Z' }, 'boot-clone', lease);
    const r = await c.run(['list-machines']);
    // The table stays as fleetctl prints it; the why is on stderr.
    expect(r.stdout).toBe(`MACHINE\t\tIP\t\tMETADATA\n${hollow.ids[0]!.slice(0, 8)}...\t10.0.0.0\t-\n${id.slice(0, 8)}...\t10.0.0.1\t-\n`);
    expect(r.stderr).toBe(
      `flotctl: warning: machine ${id} is also the machine ID of clone 10.9.9.9, which does not act on its schedule while hollow-1 holds it; give each host its own /etc/machine-id\n`,
    );
    const state = await c.run(['list-machines', '--no-legend', '--fields', 'ip,state']);
    expect(state.stdout).toBe('10.0.0.0\tok\n10.0.0.1\tduplicate ID (clone 10.9.9.9 not acting)\n');
    const json = JSON.parse((await c.run(['list-machines', '-o', 'json'])).stdout);
    expect(json.machines[0].duplicates).toBeUndefined();
    expect(json.machines[1].duplicates).toEqual([{ hostname: 'clone', ip: '10.9.9.9', since: '2026-12-04T16:00:00.000Z' }]);
    await lease.revoke();
    expect((await c.run(['list-machines'])).stderr).toBe('');
  });
});
