// Golden tests of flotctl's tables and JSON: the bytes fleetctl printed for
// the same cells (Go tabwriter, tab padding), and flotctl's stable JSON.
import { describe, expect, it } from 'vitest';
import type { MachineInfo, UnitInfo, UnitStateInfo } from '../../../src/ctl/driver.js';
import {
  catJson,
  formatMachines,
  formatMetadata,
  formatUnitFiles,
  formatUnits,
  machineLegend,
  machinesJson,
  pendingNote,
  toJson,
  unitDescription,
  unitFileRows,
  unitFilesJson,
  unitRows,
  unitsJson,
} from '../../../src/ctl/format.js';
import { UsageError } from '../../../src/ctl/errors.js';
import { formatTable } from '../../../src/ctl/table.js';

const M1 = '113f16a7f5ce4b2a9a0a3c1f1e1d1c1b';
const M2 = 'e4a25b7c00000000000000000000beef';

const machines: MachineInfo[] = [
  { id: M1, publicIp: '172.17.8.101', hostname: 'core-01', metadata: { role: 'web', az: 'b' }, version: '0.1.0', since: '2024-01-01T00:00:00.000Z' },
  { id: M2, publicIp: '', hostname: 'core-02', metadata: {}, version: '0.1.0', since: '2024-01-01T00:00:01.000Z' },
];

const HASH_A = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const HASH_G = 'ffeeddccbbaa99887766554433221100ffeeddcc';

function unit(name: string, extra: Partial<UnitInfo> = {}): UnitInfo {
  return {
    name,
    text: `[Unit]\nDescription=The ${name.split('.')[0]} unit\n\n[Service]\nExecStart=/bin/true\n`,
    hash: HASH_A,
    global: false,
    desiredState: 'launched',
    currentState: 'launched',
    ...extra,
  };
}

const units: UnitInfo[] = [
  unit('hello.service', { machine: M1 }),
  unit('db.service', { desiredState: 'launched', currentState: 'inactive', pending: { unit: 'db.service', reason: 'no machine matches MachineMetadata role=db', since: 'x' } }),
  unit('ping.service', { desiredState: 'loaded', currentState: 'inactive', machine: M2, text: '[Service]\nExecStart=/bin/true\n' }),
  unit('metrics.service', { global: true, hash: HASH_G, currentState: 'inactive' }),
  unit('idle.service', { desiredState: 'inactive', currentState: 'inactive' }),
];

const states: UnitStateInfo[] = [
  { unit: 'hello.service', machine: M1, hash: HASH_A, loadState: 'loaded', activeState: 'active', subState: 'running', since: 's1' },
  { unit: 'metrics.service', machine: M2, hash: HASH_G, loadState: 'loaded', activeState: 'active', subState: 'running', since: 's2' },
  { unit: 'metrics.service', machine: M1, hash: HASH_G, loadState: 'loaded', activeState: 'failed', subState: 'failed', since: 's3' },
];

describe('formatTable (Go tabwriter: minwidth 0, tabwidth 8, padding 1, tabs)', () => {
  it('pads each column to its widest cell plus one, rounded up to 8, with tabs; the last column is not padded', () => {
    expect(formatTable([['UNIT', 'STATE'], ['a.service', 'x'], ['abcdefghijklmnop.service', 'y']])).toBe(
      'UNIT\t\t\t\tSTATE\n' + 'a.service\t\t\tx\n' + 'abcdefghijklmnop.service\ty\n',
    );
  });

  it('counts a cell of exactly 7 and 8 characters as Go does', () => {
    expect(formatTable([['1234567', 'b']])).toBe('1234567\tb\n');
    expect(formatTable([['12345678', 'b'], ['x', 'c']])).toBe('12345678\tb\nx\t\tc\n');
  });

  it('counts code points, not UTF-16 units, and never lets a tab or newline into a cell', () => {
    // 7 code points (8 UTF-16 units): the column is 8 wide, so one tab after 'x'
    expect(formatTable([['𝄞234567', 'b'], ['x', 'c']])).toBe('𝄞234567\tb\nx\tc\n');
    expect(formatTable([['a\tb', 'c\nd']])).toBe('a b\tc d\n');
  });

  it('prints nothing for no rows', () => {
    expect(formatTable([])).toBe('');
  });
});

describe('list-machines', () => {
  it('prints fleetctl columns with short IDs', () => {
    expect(formatMachines(machines)).toBe(
      'MACHINE\t\tIP\t\tMETADATA\n' + '113f16a7...\t172.17.8.101\taz=b,role=web\n' + 'e4a25b7c...\t-\t\t-\n',
    );
  });

  it('prints full IDs with --full, no header with --no-legend, chosen --fields', () => {
    expect(formatMachines(machines, { full: true, noLegend: true, fields: 'machine,hostname' })).toBe(
      `${M1}\tcore-01\n${M2}\tcore-02\n`,
    );
  });

  it('refuses an unknown field naming the valid ones', () => {
    expect(() => formatMachines(machines, { fields: 'machine,nope' })).toThrow(UsageError);
    expect(() => formatMachines(machines, { fields: 'nope' })).toThrow(/valid fields are hostname,ip,machine,metadata/);
    expect(() => formatMachines(machines, { fields: '' })).toThrow(/at least one field/);
  });

  it('JSON has stable names and whole IDs', () => {
    expect(JSON.parse(toJson(machinesJson(machines)))).toEqual({
      machines: [
        { id: M1, ip: '172.17.8.101', hostname: 'core-01', metadata: { role: 'web', az: 'b' }, version: '0.1.0', since: '2024-01-01T00:00:00.000Z' },
        { id: M2, ip: '', hostname: 'core-02', metadata: {}, version: '0.1.0', since: '2024-01-01T00:00:01.000Z' },
      ],
    });
  });

  it('formats metadata sorted, - for none', () => {
    expect(formatMetadata({ z: '1', a: '2' })).toBe('a=2,z=1');
    expect(formatMetadata({})).toBe('-');
  });
});

describe('list-unit-files', () => {
  const rows = unitFileRows(units, machines);

  it('prints fleetctl columns: short hash, global target, - state for global units', () => {
    expect(formatUnitFiles(rows)).toBe(
      [
        'UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET',
        'hello.service\ta1b2c3d\tlaunched\tlaunched\t113f16a7.../172.17.8.101',
        'db.service\ta1b2c3d\tlaunched\tinactive\t-',
        'ping.service\ta1b2c3d\tloaded\t\tinactive\te4a25b7c...',
        'metrics.service\tffeeddc\tlaunched\t-\t\tglobal',
        'idle.service\ta1b2c3d\tinactive\tinactive\t-',
        '',
      ].join('\n'),
    );
  });

  it('has global and desc fields, and whole hashes and IDs with --full', () => {
    expect(formatUnitFiles(rows.slice(0, 3), { fields: 'unit,global,desc,hash,target', full: true, noLegend: true })).toBe(
      [
        `hello.service\tfalse\tThe hello unit\t${HASH_A}\t${M1}/172.17.8.101`,
        `db.service\tfalse\tThe db unit\t${HASH_A}\t-`,
        `ping.service\tfalse\t-\t\t${HASH_A}\t${M2}`,
        '',
      ].join('\n'),
    );
  });

  it('warns about the deprecated tmachine field', () => {
    const warnings: string[] = [];
    formatUnitFiles(rows, { fields: 'unit,tmachine' }, (m) => warnings.push(m));
    expect(warnings).toEqual(['the "tmachine" field is deprecated; use "target" instead']);
  });

  it('JSON', () => {
    const json = unitFilesJson(rows);
    expect(json.unitFiles[0]).toEqual({
      unit: 'hello.service',
      hash: HASH_A,
      desiredState: 'launched',
      currentState: 'launched',
      global: false,
      machine: M1,
      ip: '172.17.8.101',
      description: 'The hello unit',
      pending: null,
    });
    expect(json.unitFiles[1]).toMatchObject({ unit: 'db.service', machine: null, ip: null, pending: 'no machine matches MachineMetadata role=db' });
    expect(json.unitFiles[3]).toMatchObject({ unit: 'metrics.service', global: true, currentState: null, machine: null });
  });

  it('reads the description from [Unit]', () => {
    expect(unitDescription('[Unit]\nDescription=a b\n')).toBe('a b');
    expect(unitDescription('[Service]\nExecStart=/bin/true\n')).toBeUndefined();
  });
});

describe('list-units', () => {
  const rows = unitRows(units, states, machines);

  it('lists reported states (one row per machine of a global unit), units without reports, and pending units', () => {
    expect(formatUnits(rows)).toBe(
      [
        'UNIT\t\tMACHINE\t\t\t\tACTIVE\tSUB',
        'db.service\t-\t\t\t\tpending\t-',
        'hello.service\t113f16a7.../172.17.8.101\tactive\trunning',
        'metrics.service\t113f16a7.../172.17.8.101\tfailed\tfailed',
        'metrics.service\te4a25b7c...\t\t\tactive\trunning',
        'ping.service\te4a25b7c...\t\t\t-\t-',
        '',
      ].join('\n'),
    );
  });

  it('has load, hash and reason fields', () => {
    expect(formatUnits(rows, { fields: 'unit,load,hash,reason', noLegend: true })).toBe(
      [
        'db.service\t-\t-\tno machine matches MachineMetadata role=db',
        'hello.service\tloaded\ta1b2c3d\t-',
        'metrics.service\tloaded\tffeeddc\t-',
        'metrics.service\tloaded\tffeeddc\t-',
        'ping.service\t-\t-\t-',
        '',
      ].join('\n'),
    );
  });

  it('notes pending reasons unless the reason column shows them', () => {
    expect(pendingNote(rows, undefined)).toBe('db.service is pending: no machine matches MachineMetadata role=db\n');
    expect(pendingNote(rows, 'unit,reason')).toBe('');
  });

  it('JSON', () => {
    const json = unitsJson(rows);
    expect(json.units.map((u) => u.unit)).toEqual(['db.service', 'hello.service', 'metrics.service', 'metrics.service', 'ping.service']);
    expect(json.units[0]).toEqual({
      unit: 'db.service',
      machine: null,
      ip: null,
      hash: null,
      loadState: null,
      activeState: null,
      subState: null,
      since: null,
      pending: 'no machine matches MachineMetadata role=db',
    });
    expect(json.units[1]).toEqual({
      unit: 'hello.service',
      machine: M1,
      ip: '172.17.8.101',
      hash: HASH_A,
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      since: 's1',
      pending: null,
    });
  });
});

describe('cat and legends', () => {
  it('cat JSON', () => {
    expect(catJson(units[0]!)).toEqual({ unit: 'hello.service', hash: HASH_A, global: false, desiredState: 'launched', text: units[0]!.text });
  });

  it('machine legends as fleetctl printed them', () => {
    expect(machineLegend(M1, '10.0.0.1', false)).toBe('113f16a7.../10.0.0.1');
    expect(machineLegend(M1, undefined, false)).toBe('113f16a7...');
    expect(machineLegend(M1, '10.0.0.1', true)).toBe(`${M1}/10.0.0.1`);
  });
});
