import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import { parseUnitFile } from '../../../src/unit/file.js';
import { metadataSatisfied, parseMetadataRequirements } from '../../../src/unit/metadata.js';
import type { Requirements } from '../../../src/unit/requirements.js';
import { EMPTY_REQUIREMENTS, parseRequirements } from '../../../src/unit/requirements.js';
import { splitFields, splitQuoted } from '../../../src/unit/xfleet.js';

function read(xfleet: string, unit = 'web.service'): { requirements: Requirements; warnings: string[] } {
  return parseRequirements(unit, parseUnitFile(`[Unit]\nDescription=x\n\n[X-Fleet]\n${xfleet}\n`));
}

function req(xfleet: string, unit = 'web.service'): Requirements {
  return read(xfleet, unit).requirements;
}

function refusal(xfleet: string, unit = 'web.service'): UnitError {
  try {
    read(xfleet, unit);
  } catch (e) {
    if (e instanceof UnitError) return e;
    throw e;
  }
  throw new Error('expected a UnitError');
}

const none: Requirements = { machineOf: [], machineMetadata: [], conflicts: [], replaces: [], global: false };

describe('splitting values the way fleet did', () => {
  it.each<[string, string[]]>([
    ['plain', ['plain']],
    ['two words', ['two words']],
    ['"quoted"', ['quoted']],
    ['"a=b" "c=d"', ['a=b', 'c=d']],
    ['"a b" "c"', ['a b', 'c']],
    ['"a" b "c"', ['a', 'b', 'c']],
    ['"a"  "b"', ['a', 'b']],
    ['"a" "b', ['"a" "b']],
    ['a "b"', ['a "b"']],
    ['"a"\t"b"', ['a\tb']],
    ['""', []],
    ['"', []],
  ])('splitQuoted(%j)', (value, pieces) => {
    expect(splitQuoted(value)).toEqual(pieces);
  });

  it.each<[string, string[]]>([
    ['a b', ['a', 'b']],
    ['  a\t\tb \n c ', ['a', 'b', 'c']],
    ['a\u00a0b\u3000c', ['a', 'b', 'c']],
    ['', []],
  ])('splitFields(%j) like Go strings.Fields', (value, fields) => {
    expect(splitFields(value)).toEqual(fields);
  });
});

describe('parseRequirements: each option', () => {
  it('gives empty requirements without an [X-Fleet] section', () => {
    expect(parseRequirements('web.service', parseUnitFile('[Service]\nExecStart=/bin/true\n'))).toEqual({ requirements: none, warnings: [] });
    expect(EMPTY_REQUIREMENTS).toEqual(none);
    expect(Object.isFrozen(EMPTY_REQUIREMENTS.machineOf)).toBe(true);
  });

  it.each<[string, string, Partial<Requirements>]>([
    ['MachineID', 'MachineID=0123456789abcdef0123456789abcdef', { machineId: '0123456789abcdef0123456789abcdef' }],
    ['short MachineID', 'MachineID=01234567', { machineId: '01234567' }],
    ['X-ConditionMachineID', 'X-ConditionMachineID=abc', { machineId: 'abc' }],
    ['X-ConditionMachineBootID', 'X-ConditionMachineBootID=boot', { machineBootId: 'boot' }],
    ['MachineOf', 'MachineOf=db.service', { machineOf: ['db.service'] }],
    ['X-ConditionMachineOf', 'X-ConditionMachineOf=db.service', { machineOf: ['db.service'] }],
    ['repeated MachineOf accumulates', 'MachineOf=a.service\nMachineOf=b.service', { machineOf: ['a.service', 'b.service'] }],
    ['quoted MachineOf', 'MachineOf="a.service" "b.service"', { machineOf: ['a.service', 'b.service'] }],
    ['both spellings of MachineOf', 'X-ConditionMachineOf=a.service\nMachineOf=b.service\nMachineOf=a.service', { machineOf: ['a.service', 'b.service'] }],
    ['Conflicts', 'Conflicts=web@*.service', { conflicts: ['web@*.service'] }],
    ['Conflicts split on white space', 'Conflicts=a.service  b*.service', { conflicts: ['a.service', 'b*.service'] }],
    ['quoted Conflicts split on white space too', 'Conflicts="a.service b.service" "c.service"', { conflicts: ['a.service', 'b.service', 'c.service'] }],
    ['X-Conflicts', 'X-Conflicts=a.service\nConflicts=b.service', { conflicts: ['a.service', 'b.service'] }],
    ['Replaces', 'Replaces=old.service', { replaces: ['old.service'] }],
    ['Replaces is not split on white space', 'Replaces=old new', { replaces: ['old new'] }],
    ['Global=true', 'Global=true', { global: true }],
    ['Global=yes', 'Global=yes', { global: true }],
    ['Global=1', 'Global=1', { global: true }],
    ['Global=on', 'Global=on', { global: true }],
    ['Global=t', 'Global=t', { global: true }],
    ['Global=TRUE', 'Global=TRUE', { global: true }],
    ['Global=Yes', 'Global=Yes', { global: true }],
    ['Global=y', 'Global=y', { global: true }],
    ['Global=ON', 'Global=ON', { global: true }],
    ['Global=n', 'Global=n', {}],
    ['Global=off', 'Global=off', {}],
    ['Global=F', 'Global=F', {}],
    ['Global=false', 'Global=false', {}],
    ['Global=0', 'Global=0', {}],
    ['last Global wins', 'Global=true\nGlobal=false', {}],
    ['last Global wins (true)', 'Global=no\nGlobal=on', { global: true }],
    ['empty value resets a list', 'MachineOf=a.service\nMachineOf=\nMachineOf=b.service', { machineOf: ['b.service'] }],
    ['empty value resets across spellings', 'X-Conflicts=a*\nConflicts=', {}],
    ['empty value clears MachineID', 'MachineID=abc\nMachineID=', {}],
  ])('%s', (_label, xfleet, expected) => {
    expect(req(xfleet)).toEqual({ ...none, ...expected });
  });

  it('takes the first MachineID and warns about the rest', () => {
    const { requirements, warnings } = read('MachineID=aaa\nMachineID=bbb');
    expect(requirements.machineId).toBe('aaa');
    expect(warnings).toEqual(['web.service: MachineID= is given more than once; only aaa is used, ignoring bbb']);
  });

  it.each<[string, string]>([
    ['MachineMetdata=role=db', 'unknown [X-Fleet] key MachineMetdata=; did you mean MachineMetadata=?'],
    ['global=true', 'unknown [X-Fleet] key global=; did you mean Global=?'],
    ['MachineOff=db.service', 'unknown [X-Fleet] key MachineOff=; did you mean MachineOf=?'],
    ['Conflict=a.service', 'unknown [X-Fleet] key Conflict=; did you mean Conflicts=?'],
    ['X-ConditionMachineMetdata=a=b', 'unknown [X-Fleet] key X-ConditionMachineMetdata=; did you mean X-ConditionMachineMetadata=?'],
    ['Colour=blue', 'unknown [X-Fleet] key Colour= (known: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces, FenceAfter)'],
    ['MachineIdentity=x', 'unknown [X-Fleet] key MachineIdentity= (known: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces, FenceAfter)'],
  ])('refuses the unknown key in %j, suggesting a close one', (xfleet, detail) => {
    const e = refusal(`MachineOf=db.service\n${xfleet}`);
    expect(e.rule).toBe('xfleet.unknown-key');
    expect(e.message).toBe(`web.service: ${detail}`);
  });

  it('warns about and ignores unknown keys when told to accept them, and for stored units', () => {
    const file = parseUnitFile('[X-Fleet]\nMachineOf=db.service\nMachineIdentity=x\nglobal=true\n');
    for (const opts of [{ allowUnknownKeys: true }, { stored: true }]) {
      const { requirements, warnings } = parseRequirements('web.service', file, opts);
      expect(requirements).toEqual({ ...none, machineOf: ['db.service'] });
      expect(warnings).toEqual([
        'web.service: unknown [X-Fleet] key MachineIdentity= is ignored',
        'web.service: unknown [X-Fleet] key global= is ignored; did you mean Global=?',
      ]);
    }
  });

  it('warns about deprecated spellings', () => {
    expect(read('X-ConditionMachineOf=db.service').warnings).toEqual(['web.service: [X-Fleet] X-ConditionMachineOf= is deprecated; use MachineOf=']);
  });

  it.each(['maybe', 'sure', '2', 'yess', '"true false"x', 'enabled'])('refuses Global=%s, which is not a boolean', (value) => {
    const e = refusal(`Global=true\nGlobal=${value}`);
    expect(e.rule).toBe('xfleet.boolean');
    expect(e.message).toBe(`web.service: Global=${value} is not a boolean; use true or false (also read: 1 yes y true t on 0 no n false f off)`);
  });

  it('reads a Global that is not a boolean as false, with a warning, for a stored unit', () => {
    const { requirements, warnings } = parseRequirements('web.service', parseUnitFile('[X-Fleet]\nGlobal=maybe\n'), { stored: true });
    expect(requirements.global).toBe(false);
    expect(warnings).toEqual(['web.service: Global=maybe is not a boolean and counts as false']);
  });

  it('refuses MachineOf naming a template, which never runs; a stored unit keeps it with a warning', () => {
    const e = refusal('MachineOf=app@.service');
    expect(e.rule).toBe('xfleet.machine-of');
    expect(e.message).toBe('web.service: MachineOf=app@.service: app@.service is a template, which never runs on a machine; name one of its instances, e.g. app@1.service');
    expect(refusal('X-ConditionMachineOf=db@.socket').message).toMatch(/db@\.socket is a template.*e\.g\. db@1\.socket$/);
    const stored = parseRequirements('web.service', parseUnitFile('[X-Fleet]\nMachineOf=app@.service\n'), { stored: true });
    expect(stored.requirements.machineOf).toEqual(['app@.service']);
    expect(stored.warnings).toEqual(['web.service: MachineOf=app@.service names a template, which never runs; the unit waits for it']);
    expect(req('MachineOf=app@%i.service', 'web@3.service').machineOf).toEqual(['app@3.service']);
  });

  it('ignores other sections', () => {
    expect(parseRequirements('web.service', parseUnitFile('[Unit]\nConflicts=a.service\n[X-Fleet2]\nGlobal=true\n'))).toEqual({ requirements: none, warnings: [] });
  });
});

describe('MachineMetadata', () => {
  it.each<[string, Requirements['machineMetadata']]>([
    ['MachineMetadata=region=us-east', [{ key: 'region', values: ['us-east'], negate: false }]],
    ['MachineMetadata="region=us-east" "disk=ssd"', [
      { key: 'region', values: ['us-east'], negate: false },
      { key: 'disk', values: ['ssd'], negate: false },
    ]],
    ['MachineMetadata=role=db\nMachineMetadata=role=web', [{ key: 'role', values: ['db', 'web'], negate: false }]],
    ['MachineMetadata=role=db\nX-ConditionMachineMetadata=role=web\nMachineMetadata=role=db', [{ key: 'role', values: ['db', 'web'], negate: false }]],
    ['MachineMetadata=role!=db\nMachineMetadata=role!=old', [{ key: 'role', values: ['db', 'old'], negate: true }]],
    ['MachineMetadata="role=web" "role!=canary"', [
      { key: 'role', values: ['web'], negate: false },
      { key: 'role', values: ['canary'], negate: true },
    ]],
    ['MachineMetadata=url=http://x/?a=b', [{ key: 'url', values: ['http://x/?a=b'], negate: false }]],
    ['MachineMetadata="region = us "', [{ key: 'region', values: ['us'], negate: false }]],
  ])('%s', (xfleet, metadata) => {
    expect(req(xfleet).machineMetadata).toEqual(metadata);
  });

  it('expands specifiers in metadata', () => {
    expect(req('MachineMetadata=shard=%i', 'db@7.service').machineMetadata).toEqual([{ key: 'shard', values: ['7'], negate: false }]);
  });

  it.each(['MachineMetadata=region', 'MachineMetadata==us', 'MachineMetadata=region=', 'MachineMetadata=!=x', 'MachineMetadata="a=b" "c"', 'MachineMetadata=shard=%i'])(
    'refuses %j',
    (xfleet) => {
      const e = refusal(xfleet);
      expect(e.rule).toBe('xfleet.metadata');
      expect(e.message).toMatch(/^web\.service: MachineMetadata value ".*" must look like key=value or key!=value/);
    },
  );

  it.each<[string, Record<string, string>, boolean]>([
    ['region=us', { region: 'us' }, true],
    ['region=us', { region: 'eu' }, false],
    ['region=us', {}, false],
    ['"region=us" "region=eu"', { region: 'eu' }, true],
    ['"region=us" "disk=ssd"', { region: 'us', disk: 'ssd' }, true],
    ['"region=us" "disk=ssd"', { region: 'us', disk: 'hdd' }, false],
    ['role!=canary', { role: 'web' }, true],
    ['role!=canary', { role: 'canary' }, false],
    ['role!=canary', {}, true],
    ['"role!=canary" "role!=old"', { role: 'old' }, false],
    ['"role=web" "role!=web"', { role: 'web' }, false],
    ['"region=us" "role!=canary"', { region: 'us', role: 'canary' }, false],
    ['toString=x', {}, false],
  ])('MachineMetadata=%s on %j: %s', (value, machine, ok) => {
    expect(metadataSatisfied(req(`MachineMetadata=${value}`).machineMetadata, machine)).toBe(ok);
  });

  it('parses pairs directly', () => {
    expect(parseMetadataRequirements(['a=1', 'b!=2', 'a=3', 'a=1'])).toEqual([
      { key: 'a', values: ['1', '3'], negate: false },
      { key: 'b', values: ['2'], negate: true },
    ]);
    expect(metadataSatisfied([], {})).toBe(true);
  });
});

describe('specifiers in [X-Fleet]', () => {
  it('expands them for the unit being read', () => {
    expect(req('MachineOf=%p-db@%i.service\nConflicts=%p@*.service', 'web@3.service')).toEqual({
      ...none,
      machineOf: ['web-db@3.service'],
      conflicts: ['web@*.service'],
    });
  });

  it('expands every option', () => {
    expect(req('Replaces=old-%N.service\nMachineMetadata=shard=%i', 'web@3.service')).toEqual({
      ...none,
      replaces: ['old-web@3.service'],
      machineMetadata: [{ key: 'shard', values: ['3'], negate: false }],
    });
    expect(req('MachineID=m-%i', 'web@3.service').machineId).toBe('m-3');
    expect(req('Global=%i', 'web@on.service').global).toBe(true);
  });
});

describe('validation', () => {
  it.each<[string, string, RegExp]>([
    ['MachineID=abc\nMachineOf=db.service', 'xfleet.combination', /MachineID cannot be combined with MachineOf/],
    ['MachineID=abc\nConflicts=db*', 'xfleet.combination', /MachineID cannot be combined with Conflicts/],
    ['MachineID=abc\nGlobal=true', 'xfleet.combination', /MachineID cannot be combined with Global/],
    ['MachineID=abc\nReplaces=old.service', 'xfleet.combination', /MachineID cannot be combined with Replaces/],
    ['X-ConditionMachineID=abc\nMachineOf=db.service', 'xfleet.combination', /MachineID cannot be combined with MachineOf/],
    ['X-ConditionMachineBootID=abc\nGlobal=yes', 'xfleet.combination', /X-ConditionMachineBootID cannot be combined with Global/],
    ['Global=true\nMachineOf=db.service', 'xfleet.combination', /Global cannot be combined with MachineOf/],
    ['Global=true\nReplaces=old.service', 'xfleet.combination', /Global cannot be combined with Replaces/],
    ['Conflicts=a*\nReplaces=old.service', 'xfleet.combination', /Conflicts cannot be combined with Replaces/],
    ['MachineOf=db.service\nConflicts=d*', 'xfleet.unresolvable', /MachineOf=db\.service cannot be met: .* Conflicts=d\* matches it/],
    ['MachineOf=db.service\nReplaces=db.service', 'xfleet.unresolvable', /MachineOf=db\.service cannot be met: .* Replaces=db\.service matches it/],
    ['MachineOf=db*.service', 'xfleet.machine-of', /MachineOf takes exact unit names, not patterns/],
    ['MachineOf=db', 'xfleet.machine-of', /"db" is not a valid unit name/],
    ['Conflicts=web@[.service', 'glob.bad-pattern', /Conflicts=web@\[\.service: malformed glob pattern/],
    ['X-Conflicts=b.service a\\ c.service', 'glob.bad-pattern', /X-Conflicts=a\\: malformed glob pattern/],
    ['Replaces=[]', 'glob.bad-pattern', /Replaces=\[\]: malformed/],
  ])('refuses %j', (xfleet, rule, message) => {
    const e = refusal(xfleet);
    expect(e.rule).toBe(rule);
    expect(e.unit).toBe('web.service');
    expect(e.message).toMatch(/^web\.service: /);
    expect(e.message).toMatch(message);
  });

  it.each([
    'Global=true\nConflicts=web*.service',
    'Global=true\nMachineMetadata=role=web',
    'Global=false\nMachineID=abc',
    'MachineID=abc\nMachineMetadata=role=web',
    'MachineOf=db.service\nConflicts=web*.service',
    'MachineOf=db.service\nMachineMetadata=a=b',
    'Replaces=old.service\nMachineOf=db.service\nMachineMetadata=a=b',
    'Conflicts=web.service',
  ])('accepts %j', (xfleet) => {
    expect(() => read(xfleet)).not.toThrow();
  });

  it('lets a template instance conflict with its siblings and itself', () => {
    expect(req('Conflicts=%p@*.service', 'web@1.service').conflicts).toEqual(['web@*.service']);
  });

  it('checks peers against patterns after specifier expansion', () => {
    expect(refusal('MachineOf=db@%i.service\nConflicts=db@*.service', 'web@1.service').rule).toBe('xfleet.unresolvable');
  });
});
