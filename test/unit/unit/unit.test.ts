import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as api from '../../../src/unit/index.js';
import { UnitError } from '../../../src/unit/errors.js';
import { parseUnitFile } from '../../../src/unit/file.js';
import { shortHash, unitHash } from '../../../src/unit/hash.js';
import { instantiate, parseUnit } from '../../../src/unit/unit.js';

const TEMPLATE = `# A web server, one per machine
[Unit]
Description=Web server %i
After=docker.service

[Service]
ExecStart=/usr/bin/web --port 80%i
ExecStop=/usr/bin/web stop

[X-Fleet]
Conflicts=%p@*.service
MachineMetadata=role=web
MachineMetadata=shard=%i
`;

describe('unitHash and shortHash', () => {
  it('is SHA-1 of the canonical text', () => {
    const file = parseUnitFile('[Unit]\nDescription=x\n');
    const expected = createHash('sha1').update('[Unit]\nDescription=x\n').digest('hex');
    expect(unitHash(file)).toBe(expected);
    expect(unitHash(file)).toMatch(/^[0-9a-f]{40}$/);
    expect(shortHash(expected)).toBe(expected.slice(0, 7));
  });

  it('ignores comments, spacing, continuations and repeated headers', () => {
    const a = parseUnitFile('[Unit]\nDescription=web server\n[Service]\nExecStart=/bin/web\n');
    const b = parseUnitFile('# hello\r\n[Unit]\r\n  Description =  web\\\r\nserver\r\n; bye\r\n[Service]\n\n\nExecStart=/bin/web\n[Unit]\n');
    expect(unitHash(b)).toBe(unitHash(a));
  });

  it('changes with content, order and empty assignments', () => {
    const base = unitHash(parseUnitFile('[S]\nA=1\nB=2\n'));
    expect(unitHash(parseUnitFile('[S]\nA=1\nB=3\n'))).not.toBe(base);
    expect(unitHash(parseUnitFile('[S]\nB=2\nA=1\n'))).not.toBe(base);
    expect(unitHash(parseUnitFile('[S]\nA=1\nB=2\nB=\n'))).not.toBe(base);
    expect(unitHash(parseUnitFile('[T]\nA=1\nB=2\n'))).not.toBe(base);
  });

  it('hashes an empty file as SHA-1 of nothing', () => {
    expect(unitHash({ sections: [] })).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
  });
});

describe('parseUnit', () => {
  it('does everything at once for a plain unit', () => {
    const u = parseUnit('db.service', '[Unit]\nDescription=db\n[X-Fleet]\nMachineMetadata=disk=ssd\nColour=blue\n', { allowUnknownKeys: true });
    expect(u.name).toEqual({ name: 'db.service', prefix: 'db', instance: undefined, type: 'service', isTemplate: false, isInstance: false });
    expect(u.text).toBe('[Unit]\nDescription=db\n\n[X-Fleet]\nMachineMetadata=disk=ssd\nColour=blue\n');
    expect(u.hash).toBe(createHash('sha1').update(u.text).digest('hex'));
    expect(u.hash).toBe(unitHash(u.file));
    expect(u.requirements).toEqual({ machineOf: [], machineMetadata: [{ key: 'disk', values: ['ssd'], negate: false }], conflicts: [], replaces: [], global: false });
    expect(u.warnings).toHaveLength(1);
  });

  it('reads a template\'s requirements against the template name', () => {
    const t = parseUnit('web@.service', TEMPLATE);
    expect(t.name.isTemplate).toBe(true);
    expect(t.requirements.conflicts).toEqual(['web@*.service']);
    // shard=%i has no value until there is an instance: left for instantiate()
    expect(t.requirements.machineMetadata).toEqual([{ key: 'role', values: ['web'], negate: false }]);
  });

  it('leaves checks that need the instance to instantiate()', () => {
    const t = parseUnit('sidekick@.service', '[X-Fleet]\nMachineOf=%i.service\nMachineMetadata=%i=yes\n');
    expect(t.requirements).toEqual({ machineOf: [], machineMetadata: [], conflicts: [], replaces: [], global: false });
    expect(instantiate(t, 'sidekick@web.service').requirements).toEqual({
      machineOf: ['web.service'],
      machineMetadata: [{ key: 'web', values: ['yes'], negate: false }],
      conflicts: [],
      replaces: [],
      global: false,
    });
  });

  it('still refuses a template for what no instance could fix', () => {
    expect(() => parseUnit('web@.service', '[X-Fleet]\nMachineMetadata=shard\n')).toThrow(expect.objectContaining({ rule: 'xfleet.metadata' }) as unknown as Error);
    expect(() => parseUnit('web@.service', '[X-Fleet]\nMachineOf=db\n')).toThrow(expect.objectContaining({ rule: 'xfleet.machine-of' }) as unknown as Error);
    expect(() => parseUnit('web@.service', '[X-Fleet]\nMachineOf=db.service\nConflicts=db*.service\n')).toThrow(
      expect.objectContaining({ rule: 'xfleet.unresolvable' }) as unknown as Error,
    );
    // with a specifier in the peer, the instance is refused instead
    const t = parseUnit('web@.service', '[X-Fleet]\nMachineOf=db@%i.service\nConflicts=db@*.service\n');
    expect(() => instantiate(t, 'web@1.service')).toThrow(expect.objectContaining({ rule: 'xfleet.unresolvable' }) as unknown as Error);
  });

  it('refuses a plain unit whose specifiers leave a bad value', () => {
    expect(() => parseUnit('web.service', '[X-Fleet]\nMachineOf=%i.service\n')).toThrow(expect.objectContaining({ rule: 'xfleet.machine-of' }) as unknown as Error);
    expect(() => parseUnit('web.service', '[X-Fleet]\nMachineMetadata=shard=%i\n')).toThrow(expect.objectContaining({ rule: 'xfleet.metadata' }) as unknown as Error);
  });

  it('refuses a bad name before reading the file', () => {
    expect(() => parseUnit('web', 'not a unit file')).toThrow(expect.objectContaining({ rule: 'name.no-type' }) as unknown as Error);
  });

  it('names the unit in file errors', () => {
    try {
      parseUnit('web.service', '[Unit]\nDescription\n');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UnitError);
      expect((e as UnitError).message).toBe('web.service line 2: expected Key=Value but found "Description"');
    }
  });

  it('names the unit in requirement errors', () => {
    expect(() => parseUnit('web.service', '[X-Fleet]\nMachineID=a\nGlobal=true\n')).toThrow(/^web\.service: MachineID cannot be combined with Global/);
  });

  it('passes the size cap through', () => {
    expect(() => parseUnit('web.service', '[Unit]\nDescription=x\n', { maxBytes: 8 })).toThrow(expect.objectContaining({ rule: 'file.too-large', unit: 'web.service' }) as unknown as Error);
  });
});

describe('instantiate', () => {
  const template = parseUnit('web@.service', TEMPLATE);

  it('re-derives requirements with the instance\'s specifiers, keeping file and hash', () => {
    const full = parseUnit('web@.service', '[X-Fleet]\nMachineOf=db@%i.service\nMachineMetadata=shard=%i\n');
    const i = instantiate(full, 'web@3.service');
    expect(i.name).toEqual({ name: 'web@3.service', prefix: 'web', instance: '3', type: 'service', isTemplate: false, isInstance: true });
    expect(i.requirements.machineOf).toEqual(['db@3.service']);
    expect(i.requirements.machineMetadata).toEqual([{ key: 'shard', values: ['3'], negate: false }]);
    expect(i.hash).toBe(full.hash);
    expect(i.text).toBe(full.text);
    expect(i.file).toBe(full.file);
    // For the template itself %i is empty, so db@.service (a template) waits for an instance.
    expect(full.requirements.machineOf).toEqual([]);
  });

  it('refuses an unknown key unless told to accept it, for the instance as for the template', () => {
    expect(() => parseUnit('db.service', '[X-Fleet]\nColour=blue\n')).toThrow('db.service: unknown [X-Fleet] key Colour=');
    const t = parseUnit('web@.service', '[X-Fleet]\nColour=blue\n', { allowUnknownKeys: true });
    expect(() => instantiate(t, 'web@1.service')).toThrow(expect.objectContaining({ rule: 'xfleet.unknown-key' }) as unknown as Error);
    expect(instantiate(t, 'web@1.service', { allowUnknownKeys: true }).warnings).toEqual(['web@1.service: unknown [X-Fleet] key Colour= is ignored']);
  });

  it('gives the same result as parsing the instance directly', () => {
    const direct = parseUnit('web@7.service', TEMPLATE);
    expect(instantiate(template, 'web@7.service')).toEqual(direct);
  });

  it.each<[string, string]>([
    ['web@.service', 'name.not-instance-of'],
    ['api@3.service', 'name.not-instance-of'],
    ['web@3.socket', 'name.not-instance-of'],
    ['web.service', 'name.not-instance-of'],
    ['3', 'name.no-type'],
  ])('refuses %j', (instance, rule) => {
    expect(() => instantiate(template, instance)).toThrow(expect.objectContaining({ rule }) as unknown as Error);
  });

  it('refuses to instantiate a non-template', () => {
    const plain = parseUnit('web.service', '[Unit]\nDescription=x\n');
    expect(() => instantiate(plain, 'web@1.service')).toThrow(expect.objectContaining({ rule: 'name.not-template' }) as unknown as Error);
  });

  it('can fail for one instance and not another', () => {
    const t = parseUnit('web@.service', '[X-Fleet]\nMachineOf=db@%i.service\nConflicts=db@1.service\n');
    expect(() => instantiate(t, 'web@2.service')).not.toThrow();
    expect(() => instantiate(t, 'web@1.service')).toThrow(expect.objectContaining({ rule: 'xfleet.unresolvable' }) as unknown as Error);
  });
});

describe('the public API', () => {
  it('is re-exported from index', () => {
    for (const name of [
      'UnitError',
      'parseUnitFile',
      'serializeUnitFile',
      'DEFAULT_MAX_UNIT_BYTES',
      'getValues',
      'hasSection',
      'unitHash',
      'shortHash',
      'UNIT_TYPES',
      'TEMPLATE_TYPES',
      'parseUnitName',
      'validateUnitName',
      'isValidUnitName',
      'templateOf',
      'instanceOf',
      'normalizeUnitName',
      'expandSpecifiers',
      'globMatch',
      'validateGlob',
      'parseRequirements',
      'EMPTY_REQUIREMENTS',
      'parseUnit',
      'instantiate',
    ]) {
      expect(api, name).toHaveProperty(name);
    }
  });
});
