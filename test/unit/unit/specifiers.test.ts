import { describe, expect, it } from 'vitest';
import { expandSpecifiers } from '../../../src/unit/specifiers.js';

describe('expandSpecifiers', () => {
  it.each<[string, string, string]>([
    ['%n', 'web@3.service', 'web@3.service'],
    ['%N', 'web@3.service', 'web@3'],
    ['%p', 'web@3.service', 'web'],
    ['%i', 'web@3.service', '3'],
    ['%n', 'web.service', 'web.service'],
    ['%N', 'web.service', 'web'],
    ['%p', 'web.service', 'web'],
    ['%i', 'web.service', ''],
    ['%N', 'web@.service', 'web@'],
    ['%p', 'web@.service', 'web'],
    ['%i', 'web@.service', ''],
    ['%p', 'a.b@c.d.socket', 'a.b'],
    ['%i', 'a.b@c.d.socket', 'c.d'],
    ['%i', 'x@a@b.service', 'a@b'],
    ['%p-sidekick@%i.service', 'web@3.service', 'web-sidekick@3.service'],
    ['%p@*.service', 'web@3.service', 'web@*.service'],
    ['100%%', 'web.service', '100%'],
    ['%%n', 'web.service', '%n'],
    ['%%%n', 'web.service', '%web.service'],
    ['%x %u %H', 'web.service', '%x %u %H'],
    ['trailing %', 'web.service', 'trailing %'],
    ['no specifiers', 'web.service', 'no specifiers'],
    ['', 'web.service', ''],
    ['%n', 'weird', 'weird'],
  ])('%j for %s → %j', (value, unit, expected) => {
    expect(expandSpecifiers(value, unit)).toBe(expected);
  });

  it('does not expand what an expansion produced', () => {
    expect(expandSpecifiers('%i', 'web@%n.service')).toBe('%n');
  });
});
