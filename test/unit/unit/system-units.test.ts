/**
 * Every unit file the machine's systemd ships must parse and round-trip:
 * real files are the best sample of what users will submit.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseUnitFile, serializeUnitFile } from '../../../src/unit/file.js';
import { isValidUnitName, UNIT_TYPES } from '../../../src/unit/name.js';
import { parseUnit } from '../../../src/unit/unit.js';

const DIR = '/lib/systemd/system';

function unitFiles(): string[] {
  if (!existsSync(DIR)) return [];
  const types = new Set<string>(UNIT_TYPES);
  return readdirSync(DIR)
    .filter((f) => types.has(f.slice(f.lastIndexOf('.') + 1)))
    .filter((f) => statSync(join(DIR, f)).isFile())
    .sort();
}

const files = unitFiles();

describe.skipIf(files.length === 0)(`unit files in ${DIR}`, () => {
  it('are there to read', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s parses and round-trips', (f) => {
    const bytes = readFileSync(join(DIR, f));
    const file = parseUnitFile(bytes, { unit: f });
    const text = serializeUnitFile(file);
    expect(parseUnitFile(text)).toEqual(file);
    expect(serializeUnitFile(parseUnitFile(text))).toBe(text);
    // Nothing is lost: every assignment line that is not a continuation is an entry.
    const raw = bytes.toString('utf8');
    if (!/\\\r?\n/.test(raw)) {
      const assignments = raw.split(/\r?\n/).filter((l) => /^\s*[^\s#;[][^=]*=/.test(l)).length;
      expect(file.sections.reduce((n, s) => n + s.entries.length, 0)).toBe(assignments);
    }
    if (isValidUnitName(f)) {
      expect(parseUnit(f, bytes).hash).toMatch(/^[0-9a-f]{40}$/);
    }
  });
});
