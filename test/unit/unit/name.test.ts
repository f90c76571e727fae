import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import {
  TEMPLATE_TYPES,
  UNIT_TYPES,
  instanceOf,
  isValidUnitName,
  normalizeUnitName,
  parseUnitName,
  templateOf,
  validateUnitName,
} from '../../../src/unit/name.js';

function ruleOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof UnitError) return e.rule;
    throw e;
  }
  return 'accepted';
}

describe('unit types', () => {
  it('lists the types systemd and fleet know, and the template types', () => {
    expect([...UNIT_TYPES].sort()).toEqual(
      ['automount', 'busname', 'device', 'mount', 'path', 'scope', 'service', 'slice', 'snapshot', 'socket', 'swap', 'target', 'timer'].sort(),
    );
    expect([...TEMPLATE_TYPES].sort()).toEqual(['path', 'service', 'socket', 'target', 'timer']);
  });

  it.each(UNIT_TYPES.map((t) => [t]))('accepts a plain %s unit', (t) => {
    expect(isValidUnitName(`x.${t}`)).toBe(true);
  });

  it.each(UNIT_TYPES.map((t) => [t, (TEMPLATE_TYPES as readonly string[]).includes(t)]))('templates of type %s allowed: %s', (t, ok) => {
    expect(isValidUnitName(`x@.${t}`)).toBe(ok);
    expect(isValidUnitName(`x@1.${t}`)).toBe(ok);
  });
});

describe('validateUnitName', () => {
  it.each<[string, string]>([
    ['web.service', 'accepted'],
    ['web@.service', 'accepted'],
    ['web@3.service', 'accepted'],
    ['a:b_c.d-e.service', 'accepted'],
    ['-.slice', 'accepted'],
    ['x@a@b.service', 'accepted'],
    ['x@a.b.c.service', 'accepted'],
    ['A'.repeat(247) + '.service', 'accepted'],
    ['x\\x2dy.service', 'accepted'],
    ['home-user-a\\x20b.mount', 'accepted'],
    ['getty@tty\\x2d1.service', 'accepted'],
    ['\\x2dlead.service', 'accepted'],
    ['', 'name.empty'],
    ['A'.repeat(248) + '.service', 'name.too-long'],
    ['web\0.service', 'name.control-character'],
    ['web\n.service', 'name.control-character'],
    ['web\t.service', 'name.control-character'],
    ['web\x7f.service', 'name.control-character'],
    ['units/web.service', 'name.path-separator'],
    ['/etc/systemd/system/web.service', 'name.path-separator'],
    ['../web.service', 'name.path-separator'],
    ['..service', 'name.dot-dot'],
    ['web..service', 'name.dot-dot'],
    ['we b.service', 'name.characters'],
    ['web!.service', 'name.characters'],
    ['wéb.service', 'name.characters'],
    ['web*.service', 'name.characters'],
    ['@web.service', 'name.leading-at'],
    ['@.service', 'name.leading-at'],
    ['web', 'name.no-type'],
    ['web.', 'name.type'],
    ['web.txt', 'name.type'],
    ['web.Service', 'name.type'],
    ['.service', 'name.empty-prefix'],
    ['web@.mount', 'name.template-type'],
    ['web@1.device', 'name.template-type'],
  ])('%j: %s', (name, rule) => {
    expect(ruleOf(() => validateUnitName(name))).toBe(rule);
    expect(isValidUnitName(name)).toBe(rule === 'accepted');
  });

  it('says what is wrong and what to do', () => {
    expect(() => validateUnitName('web!.service')).toThrow(
      'web!.service: "!" is not allowed in a unit name; use only letters, digits and : _ . @ - \\ (systemd-escape writes other characters as \\xNN)',
    );
    // Shown as written: one backslash, not JSON's two.
    expect(() => validateUnitName('a\\x2d"b.service')).toThrow(/^a\\x2d"b\.service: """ is not allowed/);
    expect(() => normalizeUnitName('a\\b c')).toThrow('a\\b c.service: " " is not allowed');
    expect(() => validateUnitName('web.txt')).toThrow(/"txt" is not a unit type; use one of automount, .*timer/);
    expect(() => validateUnitName('')).toThrow(/^a unit name must not be empty$/);
  });

  it('escapes control characters in the unit named by the message', () => {
    try {
      validateUnitName('a\nb.service');
    } catch (e) {
      expect((e as UnitError).unit).toBe('"a\\nb.service"');
      expect((e as UnitError).message).not.toContain('\n');
    }
  });
});

describe('parseUnitName', () => {
  it.each<[string, { prefix: string; instance: string | undefined; type: string; isTemplate: boolean; isInstance: boolean }]>([
    ['web.service', { prefix: 'web', instance: undefined, type: 'service', isTemplate: false, isInstance: false }],
    ['web@.service', { prefix: 'web', instance: undefined, type: 'service', isTemplate: true, isInstance: false }],
    ['web@3.service', { prefix: 'web', instance: '3', type: 'service', isTemplate: false, isInstance: true }],
    ['a.b@c.d.socket', { prefix: 'a.b', instance: 'c.d', type: 'socket', isTemplate: false, isInstance: true }],
    ['x@a@b.timer', { prefix: 'x', instance: 'a@b', type: 'timer', isTemplate: false, isInstance: true }],
    ['dev-hugepages.mount', { prefix: 'dev-hugepages', instance: undefined, type: 'mount', isTemplate: false, isInstance: false }],
  ])('%s', (name, parts) => {
    expect(parseUnitName(name)).toEqual({ name, ...parts });
  });

  it('throws for invalid names', () => {
    expect(() => parseUnitName('web')).toThrow(UnitError);
  });
});

describe('templates and instances', () => {
  it.each<[string, string | undefined]>([
    ['web@3.service', 'web@.service'],
    ['web@a.b.socket', 'web@.socket'],
    ['web@.service', undefined],
    ['web.service', undefined],
  ])('templateOf(%s) = %s', (name, template) => {
    expect(templateOf(name)).toBe(template);
  });

  it('makes instances from templates', () => {
    expect(instanceOf('web@.service', '3')).toBe('web@3.service');
    expect(instanceOf('tick@.timer', 'hourly')).toBe('tick@hourly.timer');
  });

  it.each<[string, string, string]>([
    ['web.service', '3', 'name.not-template'],
    ['web@1.service', '3', 'name.not-template'],
    ['web@.service', '', 'name.instance-empty'],
    ['web@.service', 'a/b', 'name.path-separator'],
    ['web@.service', 'a b', 'name.characters'],
    ['web@.service', 'x'.repeat(300), 'name.too-long'],
    ['web', '3', 'name.no-type'],
  ])('instanceOf(%j, %j) refused: %s', (template, instance, rule) => {
    expect(ruleOf(() => instanceOf(template, instance))).toBe(rule);
  });

  it('round-trips: the template of an instance made from a template is that template', () => {
    for (const t of ['a@.service', 'b.c@.path', 'd@.target']) {
      expect(templateOf(instanceOf(t, 'i-1'))).toBe(t);
    }
  });
});

describe('normalizeUnitName (fleetctl arguments)', () => {
  it.each<[string, string]>([
    ['web', 'web.service'],
    ['web.service', 'web.service'],
    ['web.socket', 'web.socket'],
    ['db.target', 'db.target'],
    ['web@3', 'web@3.service'],
    ['web@', 'web@.service'],
    ['units/web.service', 'web.service'],
    ['/home/core/units/web@.service', 'web@.service'],
    ['./web', 'web.service'],
    ['dir/', 'dir.service'],
    ['web.conf', 'web.conf.service'],
    ['foo.bar', 'foo.bar.service'],
  ])('%s → %s', (arg, name) => {
    expect(normalizeUnitName(arg)).toBe(name);
  });

  it.each<[string, string]>([
    ['', 'name.empty'],
    ['/', 'name.empty'],
    ['dir/..', 'name.dot-dot'],
    ['web*', 'name.characters'],
    ['@web', 'name.leading-at'],
    ['web@1.mount', 'name.template-type'],
  ])('refuses %j: %s', (arg, rule) => {
    expect(ruleOf(() => normalizeUnitName(arg))).toBe(rule);
  });
});
