// How strictly submitted units are checked (docs/units.md), against a real
// etcd: refusals write nothing, names systemd writes with escapes round
// trip, `--` ends the options, and units stored by an earlier, more lenient
// version keep being scheduled.
import { describe, expect, it } from 'vitest';
import { hashText } from '../../../src/unit/hash.js';
import { useEtcd } from '../../helpers/etcd.js';
import { SERVICE, cli, cluster, unitDir } from './harness.js';

const etcd = useEtcd();

describe('flotctl: unit checks', () => {
  it('refuses an unknown [X-Fleet] key with a suggestion and writes nothing; --allow-unknown-keys accepts it with a warning', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'good.service': SERVICE(), 'db.service': SERVICE('/bin/db', '\n[X-Fleet]\nMachineMetdata=role=db\n') });
    const r = await c.run(['submit', 'good.service', 'db.service'], { cwd: files.dir });
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'flotctl: db.service: unknown [X-Fleet] key MachineMetdata=; did you mean MachineMetadata=?\n' });
    expect(await c.registry.listUnits()).toEqual([]);

    const allowed = await c.run(['submit', '--allow-unknown-keys', 'db.service'], { cwd: files.dir });
    expect(allowed).toEqual({
      code: 0,
      stdout: 'Unit db.service inactive\n',
      stderr: 'flotctl: warning: db.service: unknown [X-Fleet] key MachineMetdata= is ignored; did you mean MachineMetadata=?\n',
    });
    expect((await c.registry.getUnit('db.service'))?.text).toContain('MachineMetdata=role=db');
  });

  it('refuses a Global that is not a boolean and MachineOf naming a template, with the reason', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({
      'g.service': SERVICE('/bin/g', '\n[X-Fleet]\nGlobal=maybe\n'),
      'f.service': SERVICE('/bin/f', '\n[X-Fleet]\nMachineOf=app@.service\n'),
    });
    expect(await c.run(['start', 'g.service'], { cwd: files.dir })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'flotctl: g.service: Global=maybe is not a boolean; use true or false (also read: 1 yes y true t on 0 no n false f off)\n',
    });
    expect(await c.run(['load', 'f.service'], { cwd: files.dir })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'flotctl: f.service: MachineOf=app@.service: app@.service is a template, which never runs on a machine; name one of its instances, e.g. app@1.service\n',
    });
    expect(await c.registry.listUnits()).toEqual([]);
  });

  it('round-trips names systemd-escape writes, and takes unit names after --', async () => {
    const c = cli(etcd.endpoints);
    const escaped = 'x\\x2dy.service';
    const files = unitDir({ [escaped]: SERVICE('/bin/x'), '-lead.service': SERVICE('/bin/lead') });
    expect(await c.run(['submit', escaped], { cwd: files.dir })).toEqual({ code: 0, stdout: `Unit ${escaped} inactive\n`, stderr: '' });
    expect(await c.run(['submit', '--', '-lead.service'], { cwd: files.dir })).toEqual({ code: 0, stdout: 'Unit -lead.service inactive\n', stderr: '' });
    expect((await c.registry.listUnits()).map((u) => u.name).sort()).toEqual(['-lead.service', escaped]);
    const list = await c.run(['list-unit-files', '--no-legend', '--fields', 'unit']);
    expect(list.stdout).toBe(`-lead.service\n${escaped}\n`);
    expect((await c.run(['cat', escaped])).stdout).toContain('ExecStart=/bin/x\n');
    expect(await c.run(['destroy', escaped, '--', '-lead.service'])).toEqual({
      code: 0,
      stdout: `Destroyed ${escaped}\nDestroyed -lead.service\n`,
      stderr: '',
    });
    expect(await c.registry.listUnits()).toEqual([]);
  });

  it('keeps scheduling a unit an earlier version stored with a key now refused', async () => {
    const c = cli(etcd.endpoints);
    await cluster(c, 2, () => ({ role: 'web' }));
    // As a version before the check wrote it: the typo was only a warning then.
    const text = '[Service]\nExecStart=/bin/old\n\n[X-Fleet]\nMachineMetdata=role=db\nGlobal=maybe\n';
    await c.registry.createUnits([{ name: 'old.service', text, hash: hashText(text), global: false }]);
    const r = await c.run(['start', '--block-attempts=40', 'old.service']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit old\.service launched on /);
  });
});
