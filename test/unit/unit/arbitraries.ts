/** fast-check generators for unit files, shared by the property tests. */
import fc from 'fast-check';
import type { UnitEntry, UnitFile, UnitSection } from '../../../src/unit/file.js';

const BLANK = /^[ \t]|[ \t]$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Characters that stress the reader: blanks, comment and escape characters, quotes, non-ASCII. */
const tricky = fc.constantFrom(' ', '\t', '\\', '#', ';', '=', '"', "'", '[', ']', '%', '\u000b', '\u000c', '\u001b', 'é', '☺', '😀', '\u00a0', '\uFEFF');

function text(maxLength: number, extra: fc.Arbitrary<string> = tricky): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 4, unit: 'grapheme-ascii' }) }, { weight: 2, arbitrary: extra }, { weight: 1, arbitrary: fc.string({ maxLength: 2, unit: 'binary' }) }), { maxLength })
    .map((parts) => parts.join(''))
    .filter((s) => !/[\r\n\0]/.test(s) && !LONE_SURROGATE.test(s));
}

/** A value as the parser can produce it: one line, no blanks at the edges (may be empty). */
export const valueArb: fc.Arbitrary<string> = text(12).filter((s) => !BLANK.test(s));

/** A key as the parser can produce it. */
export const keyArb: fc.Arbitrary<string> = text(5)
  .filter((s) => s !== '' && !s.includes('=') && !BLANK.test(s) && !/^[[#;]/.test(s));

/** A section name systemd accepts. */
// eslint-disable-next-line no-control-regex
export const sectionNameArb: fc.Arbitrary<string> = text(4).filter((s) => s !== '' && !/[\u0000-\u001f\u007f"'\\]/.test(s) && !s.startsWith(' ') && !s.endsWith(' '));

const entryArb: fc.Arbitrary<UnitEntry> = fc.record({
  key: fc.oneof(keyArb, fc.constantFrom('Description', 'ExecStart', 'Conflicts', 'MachineOf', 'Environment')),
  value: valueArb,
});

const sectionArb: fc.Arbitrary<UnitSection> = fc.record({
  name: fc.oneof(sectionNameArb, fc.constantFrom('Unit', 'Service', 'Install', 'X-Fleet')),
  entries: fc.array(entryArb, { minLength: 1, maxLength: 6 }),
});

/** A unit file in the shape parseUnitFile returns: unique, non-empty sections. */
export const unitFileArb: fc.Arbitrary<UnitFile> = fc
  .uniqueArray(sectionArb, { selector: (s) => s.name, maxLength: 5 })
  .map((sections) => ({ sections }));

/** Tokens that look like pieces of unit files, for fuzzing the reader with near-misses. */
export const unitishTextArb: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom('[Unit]', '[X-Fleet]', '[', ']', '=', 'Key', 'Value', '\\', '\\\\', '#', ';', ' ', '\t', '\n', '\r\n', '\r', '\0', '\uFEFF', '%i', '"', 'é', '\ud800'),
      fc.string({ maxLength: 6, unit: 'binary' }),
    ),
    { maxLength: 80 },
  )
  .map((parts) => parts.join(''));

/** Fast pseudo-random bytes (large inputs without fast-check generating each byte). */
export function pseudoRandomBytes(seed: number, length: number, alphabet: Uint8Array | undefined): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0;
    out[i] = alphabet === undefined ? r & 0xff : (alphabet[r % alphabet.length] as number);
  }
  return out;
}

/** Line by line, mostly well-formed: headers, assignments, comments, continuations, junk. */
export const unitLinesArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(
      fc.oneof(
        { weight: 2, arbitrary: fc.tuple(fc.constantFrom('', ' ', '\t'), fc.string({ maxLength: 6 })).map(([b, n]) => `${b}[${n}]`) },
        { weight: 6, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom('=', ' = ', '=\t'), fc.string({ maxLength: 10 }), fc.constantFrom('', '\\', '\\\\', ' \\', '\\ ')).map((p) => p.join('')) },
        { weight: 2, arbitrary: fc.tuple(fc.constantFrom('#', ';', ' #', '\t;'), fc.string({ maxLength: 8 })).map((p) => p.join('')) },
        { weight: 1, arbitrary: fc.constantFrom('', ' ', '\\', '[', ']', '=', '\uFEFF', '\0', '\ud800') },
      ),
      { maxLength: 30 },
    ),
    fc.constantFrom('\n', '\r\n', '\r'),
    fc.boolean(),
  )
  .map(([lines, eol, header]) => (header ? ['[Unit]', ...lines] : lines).join(eol));
