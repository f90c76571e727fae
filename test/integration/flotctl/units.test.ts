// submit, cat, list-unit-files and the refusals around them, against a real etcd.
import { describe, expect, it } from 'vitest';
import { useEtcd } from '../../helpers/etcd.js';
import { SERVICE, cli, storedKeys, unitDir } from './harness.js';

const etcd = useEtcd();

describe('flotctl submit and cat', () => {
  it('submits local files idempotently, warns about a differing file, replaces with --replace', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'hello.service': SERVICE('/bin/hello'), 'other.service': SERVICE('/bin/other') });
    const first = await c.run(['submit', 'hello', 'other.service'], { cwd: files.dir });
    expect(first).toEqual({ code: 0, stdout: 'Unit hello.service inactive\nUnit other.service inactive\n', stderr: '' });
    expect(await c.run(['submit', 'hello.service'], { cwd: files.dir })).toEqual({ code: 0, stdout: '', stderr: '' });

    files.write('hello.service', SERVICE('/bin/hello --v2'));
    const differs = await c.run(['submit', 'hello.service'], { cwd: files.dir });
    expect(differs.code).toBe(0);
    expect(differs.stderr).toBe(
      'flotctl: warning: unit hello.service in the registry differs from the local unit file hello.service; add --replace to replace it\n',
    );
    expect((await c.run(['cat', 'hello'])).stdout).toContain('ExecStart=/bin/hello\n');

    const replaced = await c.run(['submit', '--replace', 'hello.service'], { cwd: files.dir });
    expect(replaced).toMatchObject({ code: 0, stdout: 'Unit hello.service replaced\n' });
    const cat = await c.run(['cat', 'hello.service']);
    expect(cat).toEqual({ code: 0, stdout: '[Unit]\nDescription=test unit\n\n[Service]\nExecStart=/bin/hello --v2\n', stderr: '' });
    const json = JSON.parse((await c.run(['cat', '-o', 'json', 'hello'])).stdout);
    expect(json).toMatchObject({ unit: 'hello.service', global: false, desiredState: 'inactive', text: cat.stdout });
    expect(json.hash).toMatch(/^[0-9a-f]{40}$/);
  });

  it('makes instances from the registry template first, then from a local one', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'web@.service': SERVICE('/bin/web %i'), 'sub/api@.service': SERVICE('/bin/api %i') });
    expect((await c.run(['submit', 'web@.service'], { cwd: files.dir })).code).toBe(0);
    files.write('web@.service', SERVICE('/bin/web-local %i'));
    const r = await c.run(['submit', 'web@1', 'sub/api@2.service'], { cwd: files.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Unit web@1.service inactive\nUnit api@2.service inactive\n');
    expect(r.stderr).toMatch(/template web@\.service in the registry differs from the local file web@\.service/);
    expect((await c.run(['cat', 'web@1'])).stdout).toContain('ExecStart=/bin/web %i');
    expect((await c.run(['cat', 'api@2'])).stdout).toContain('ExecStart=/bin/api %i');
  });

  it('submits nothing when one file is invalid, and names its line', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'good.service': SERVICE(), 'bad.service': '[Service]\nExecStart=/bin/x\nthis is not a setting\n' });
    const r = await c.run(['submit', 'good.service', 'bad.service'], { cwd: files.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('flotctl: bad.service line 3: expected Key=Value but found "this is not a setting"\n');
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(await c.registry.listUnits()).toEqual([]);
  });

  it('refuses a unit file that is not valid UTF-8, naming the file and the byte, and writes nothing', async () => {
    const c = cli(etcd.endpoints);
    // `Description=caf` then the bytes ff fe (not UTF-8: Latin-1 "ÿþ", or a UTF-16 mark), on line 2 at byte 22.
    const bad = Buffer.concat([Buffer.from('[Unit]\nDescription=caf'), Buffer.from([0xff, 0xfe]), Buffer.from('\n\n[Service]\nExecStart=/bin/x\n')]);
    const files = unitDir({ 'good.service': SERVICE(), 'bad.service': bad, 'tpl@.service': bad });
    const message = (file: string): string => `flotctl: ${file} line 2: not valid UTF-8 (byte 0xff at offset 22); save the unit file as UTF-8 text\n`;
    for (const args of [
      ['submit', 'good.service', 'bad.service'],
      ['load', 'bad.service', 'good.service'],
      ['start', 'good.service', 'bad.service'],
    ]) {
      expect(await c.run(args, { cwd: files.dir }), args.join(' ')).toEqual({ code: 1, stdout: '', stderr: message('bad.service') });
    }
    expect(await c.run(['start', 'good.service', 'tpl@1.service'], { cwd: files.dir })).toEqual({ code: 1, stdout: '', stderr: message('tpl@.service') });
    expect(await storedKeys(c)).toEqual([]);

    // --replace keeps the stored file when the new one is not UTF-8.
    expect((await c.run(['submit', 'good.service'], { cwd: files.dir })).code).toBe(0);
    const before = await c.registry.listUnits();
    files.write('good.service', bad);
    expect(await c.run(['submit', '--replace', 'good.service'], { cwd: files.dir })).toEqual({ code: 1, stdout: '', stderr: message('good.service') });
    expect(await c.registry.listUnits()).toEqual(before);
  });

  it('refuses [X-Fleet] combinations fleet refused, with the parser message', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'x.service': SERVICE('/bin/x', '\n[X-Fleet]\nMachineID=abc\nGlobal=true\n') });
    const r = await c.run(['submit', 'x.service'], { cwd: files.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^flotctl: x\.service: .*(MachineID|Global)/);
  });

  it('reports a unit that exists nowhere, and cat of an unknown unit', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir();
    expect(await c.run(['submit', 'nope'], { cwd: files.dir })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'flotctl: unit nope.service not found: not in the registry and no file nope.service\n',
    });
    expect(await c.run(['cat', 'nope'])).toEqual({ code: 1, stdout: '', stderr: 'flotctl: unit nope.service does not exist\n' });
  });

  it('lists unit files with fleetctl columns, --fields, -l, --no-legend and JSON', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'a.service': SERVICE('/bin/a'), 'g.service': SERVICE('/bin/g', '\n[X-Fleet]\nGlobal=true\n') });
    await c.run(['submit', 'a', 'g'], { cwd: files.dir });
    const table = await c.run(['list-unit-files']);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe('UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET');
    expect(lines[1]).toMatch(/^a\.service\t[0-9a-f]{7}\tinactive\tinactive\t-$/);
    expect(lines[2]).toMatch(/^g\.service\t[0-9a-f]{7}\tinactive\t-\t\tglobal$/);
    const custom = await c.run(['list-unit-f', '--fields', 'unit,global,desc', '--no-legend', '-l']);
    expect(custom.stdout).toBe('a.service\tfalse\ttest unit\ng.service\ttrue\ttest unit\n');
    const json = JSON.parse((await c.run(['list-unit-files', '-o', 'json'])).stdout);
    expect(json.unitFiles.map((u: { unit: string; global: boolean }) => [u.unit, u.global])).toEqual([
      ['a.service', false],
      ['g.service', true],
    ]);
    expect((await c.run(['__complete-units'])).stdout).toBe('a.service\ng.service\n');
    const bad = await c.run(['list-unit-files', '--fields', 'unit,nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid field "nope"/);
  });
});
