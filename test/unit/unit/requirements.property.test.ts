import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import type { UnitFile } from '../../../src/unit/file.js';
import { isValidGlob } from '../../../src/unit/glob.js';
import { isValidUnitName } from '../../../src/unit/name.js';
import { parseRequirements } from '../../../src/unit/requirements.js';
import { XFLEET_KEYS } from '../../../src/unit/xfleet.js';

const key = fc.oneof(fc.constantFrom(...Object.keys(XFLEET_KEYS)), fc.constantFrom('Unknown', 'machineid', 'X-Foo'));
const value = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc
    .array(fc.constantFrom('"', ' ', 'a', 'b.service', '*', '[', ']', '\\', '=', '!=', '%i', '%p', '%%', 'true', 'role'), { maxLength: 8 })
    .map((p) => p.join('')),
);
const xfleet: fc.Arbitrary<UnitFile> = fc
  .array(fc.record({ key, value }), { maxLength: 6 })
  .map((entries) => ({ sections: [{ name: 'X-Fleet', entries }] }));
const unitName = fc.constantFrom('web.service', 'web@.service', 'web@3.service', 'a.b@c.d.socket');

describe('requirements: properties', () => {
  it('throw only UnitError, and what they accept is well formed', () => {
    fc.assert(
      fc.property(unitName, xfleet, (name, file) => {
        let reading;
        try {
          reading = parseRequirements(name, file);
        } catch (e) {
          expect(e).toBeInstanceOf(UnitError);
          expect((e as UnitError).unit).toBe(name);
          return;
        }
        const r = reading.requirements;
        for (const peer of r.machineOf) expect(isValidUnitName(peer)).toBe(true);
        for (const p of [...r.conflicts, ...r.replaces]) expect(isValidGlob(p)).toBe(true);
        for (const m of r.machineMetadata) {
          expect(m.key).not.toBe('');
          expect(m.values.length).toBeGreaterThan(0);
        }
        const pinned = r.machineId !== undefined || r.machineBootId !== undefined;
        expect(pinned && (r.machineOf.length > 0 || r.conflicts.length > 0 || r.global || r.replaces.length > 0)).toBe(false);
        expect(r.global && (r.machineOf.length > 0 || r.replaces.length > 0)).toBe(false);
        expect(r.conflicts.length > 0 && r.replaces.length > 0).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });
});
