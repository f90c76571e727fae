import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import type { UnitFile } from '../../../src/unit/file.js';
import { parseUnitFile, serializeUnitFile } from '../../../src/unit/file.js';
import { unitHash } from '../../../src/unit/hash.js';
import { pseudoRandomBytes, unitFileArb, unitishTextArb, unitLinesArb } from './arbitraries.js';

describe('round trip', () => {
  it('parse(serialize(u)) equals u', () => {
    fc.assert(
      fc.property(unitFileArb, (u) => {
        const text = serializeUnitFile(u);
        expect(parseUnitFile(text)).toEqual(u);
        expect(serializeUnitFile(parseUnitFile(text))).toBe(text);
      }),
      { numRuns: 1500 },
    );
  });
});

// Ways of writing the same unit differently: only comments, blanks, line ends,
// continuations and repeated section headers change.
interface Styling {
  eol: fc.Arbitrary<string>;
}

const blanks = fc.constantFrom('', ' ', '\t', '  \t ');
const comment = fc
  .tuple(blanks, fc.constantFrom('#', ';'), fc.string({ maxLength: 12 }))
  .map(([b, c, t]) => `${b}${c}${t.replace(/[\r\n\0]/g, '').replace(/[\uD800-\uDFFF]/g, '')}`);
const style = {
  eol: fc.constantFrom('\n', '\r\n', '\r'),
  filler: fc.array(fc.oneof(comment, blanks), { maxLength: 2 }),
} satisfies Styling & Record<string, unknown>;

interface Messy {
  text: string;
}

/** Renders `u` with random comments, blank lines, spacing, continuations and split sections. */
function messyArb(u: UnitFile): fc.Arbitrary<Messy> {
  const entryCount = u.sections.reduce((n, s) => n + s.entries.length, 0);
  return fc
    .record({
      bom: fc.boolean(),
      eol: style.eol,
      fillers: fc.array(style.filler, { minLength: entryCount + u.sections.length + 1, maxLength: entryCount + u.sections.length + 1 }),
      pads: fc.array(fc.tuple(blanks, blanks, blanks, blanks), { minLength: entryCount + 1, maxLength: entryCount + 1 }),
      splitAt: fc.array(fc.nat(), { minLength: entryCount, maxLength: entryCount }),
      moveTail: fc.array(fc.nat({ max: 6 }), { minLength: u.sections.length, maxLength: u.sections.length }),
    })
    .map(({ bom, eol, fillers, pads, splitAt, moveTail }) => {
      const lines: string[] = [];
      let f = 0;
      let e = 0;
      const filler = (): void => {
        lines.push(...(fillers[f++] ?? []));
      };
      const later: string[][] = [];
      filler();
      u.sections.forEach((section, si) => {
        const [p1 = ''] = pads[e] ?? [];
        lines.push(`${p1}[${section.name}]${p1}`);
        filler();
        // Some sections get their last entries under a repeated header at the end.
        const keep = Math.max(1, section.entries.length - (moveTail[si] ?? 0));
        const tail: string[] = [];
        section.entries.forEach((entry, ei) => {
          const [a = '', b = '', c = '', d = ''] = pads[e] ?? [];
          const value = continued(entry.value, splitAt[e] ?? 0, eol);
          e++;
          const line = `${a}${entry.key}${b}=${c}${value}${value.endsWith('\\') ? ' ' : d}`;
          (ei < keep ? lines : tail).push(line);
          if (ei < keep) filler();
        });
        if (tail.length > 0) later.push([`[${section.name}]`, ...tail]);
      });
      for (const chunk of later) lines.push(...chunk);
      return { text: `${bom ? '\uFEFF' : ''}${lines.join(eol)}${eol}` };
    });
}

/** Writes one space of the value as a continuation (backslash, line end), where that reads back the same. */
function continued(value: string, pick: number, eol: string): string {
  const spots: number[] = [];
  for (let i = 1; i < value.length - 1; i++) {
    if (value[i] !== ' ' || value[i - 1] === '\\') continue;
    if (/^[ \t]*[#;]/.test(value.slice(i + 1))) continue;
    spots.push(i);
  }
  if (spots.length === 0) return value;
  const at = spots[pick % spots.length] as number;
  return `${value.slice(0, at)}\\${eol}${value.slice(at + 1)}`;
}

describe('hash', () => {
  it('is stable under comments, spacing, line ends, continuations and repeated headers', () => {
    fc.assert(
      fc.property(
        unitFileArb.chain((u) => fc.tuple(fc.constant(u), messyArb(u))),
        ([u, messy]) => {
          const parsed = parseUnitFile(messy.text);
          expect(parsed).toEqual(u);
          expect(unitHash(parsed)).toBe(unitHash(u));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

const LETTERS = new TextEncoder().encode('[]=\\#; \t\nabcXYZé\r%@"');

const inputArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 * 1024 }) },
  { weight: 3, arbitrary: unitishTextArb.map((s) => new TextEncoder().encode(s)) },
  { weight: 4, arbitrary: unitLinesArb.map((s) => new TextEncoder().encode(s)) },
  {
    weight: 1,
    arbitrary: fc
      .record({ seed: fc.integer(), length: fc.integer({ min: 0, max: 64 * 1024 }), structured: fc.boolean() })
      .map(({ seed, length, structured }) => pseudoRandomBytes(seed, length, structured ? LETTERS : undefined)),
  },
);

describe('robustness', () => {
  it('never throws anything but UnitError, and what it accepts round-trips', () => {
    fc.assert(
      fc.property(inputArb, (bytes) => {
        let file: UnitFile;
        try {
          file = parseUnitFile(bytes, { unit: 'fuzz.service' });
        } catch (e) {
          if (!(e instanceof UnitError)) throw e;
          expect(e.unit).toBe('fuzz.service');
          return;
        }
        expect(parseUnitFile(serializeUnitFile(file))).toEqual(file);
      }),
      { numRuns: 10_000 },
    );
  });

  it('treats strings like their UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.oneof(unitishTextArb, unitLinesArb), (s) => {
        const outcome = (input: string | Uint8Array): unknown => {
          try {
            return parseUnitFile(input);
          } catch (e) {
            if (!(e instanceof UnitError)) throw e;
            return e.rule;
          }
        };
        const bytes = new TextEncoder().encode(s);
        const fromString = outcome(s);
        // A lone surrogate is invalid in a string but TextEncoder replaces it.
        if (fromString !== 'file.encoding') expect(outcome(bytes)).toEqual(fromString);
      }),
      { numRuns: 2000 },
    );
  });
});
