import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import { TEMPLATE_TYPES, UNIT_TYPES, instanceOf, isValidUnitName, normalizeUnitName, parseUnitName, templateOf } from '../../../src/unit/name.js';
import { expandSpecifiers } from '../../../src/unit/specifiers.js';

const nameChars = fc.constantFrom(...'abcXYZ019:_.-\\'.split(''));
const part = fc.array(nameChars, { minLength: 1, maxLength: 12 }).map((cs) => cs.join('')).filter((s) => !s.includes('..') && !s.endsWith('.') && !s.startsWith('.'));
const templateType = fc.constantFrom(...TEMPLATE_TYPES);
const anyType = fc.constantFrom(...UNIT_TYPES);
const looseName = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(fc.constantFrom('a', '@', '.', '/', '..', 'service', 'mount', '%', '\0', ' ', '\\'), { maxLength: 12 }).map((p) => p.join('')),
);

function onlyUnitErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UnitError);
  }
}

describe('names: properties', () => {
  it('refuses bad input only with UnitError', () => {
    fc.assert(
      fc.property(looseName, (s) => {
        onlyUnitErrors(() => parseUnitName(s));
        onlyUnitErrors(() => normalizeUnitName(s));
        onlyUnitErrors(() => templateOf(s));
        onlyUnitErrors(() => instanceOf('web@.service', s));
      }),
      { numRuns: 3000 },
    );
  });

  it('splits valid names into parts that rebuild them', () => {
    fc.assert(
      fc.property(looseName, (s) => {
        if (!isValidUnitName(s)) return;
        const n = parseUnitName(s);
        const stem = n.isTemplate ? `${n.prefix}@` : n.isInstance ? `${n.prefix}@${n.instance}` : n.prefix;
        expect(`${stem}.${n.type}`).toBe(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts generated plain names and template/instance pairs, which round-trip', () => {
    fc.assert(
      fc.property(part, part, templateType, anyType, (prefix, instance, tType, type) => {
        expect(isValidUnitName(`${prefix}.${type}`)).toBe(true);
        const template = `${prefix}@.${tType}`;
        const inst = instanceOf(template, instance);
        expect(inst).toBe(`${prefix}@${instance}.${tType}`);
        expect(templateOf(inst)).toBe(template);
        expect(parseUnitName(inst)).toMatchObject({ prefix, instance, type: tType, isInstance: true });
        expect(normalizeUnitName(`/some/dir/${inst}`)).toBe(inst);
        expect(expandSpecifiers('%p|%i|%N|%n', inst)).toBe(`${prefix}|${instance}|${prefix}@${instance}|${inst}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('normalizes a name without a type to a service', () => {
    fc.assert(
      fc.property(part, (p) => {
        const hasType = (UNIT_TYPES as readonly string[]).includes(p.slice(p.lastIndexOf('.') + 1)) && p.includes('.');
        if (!hasType) expect(normalizeUnitName(p)).toBe(`${p}.service`);
      }),
      { numRuns: 500 },
    );
  });
});
