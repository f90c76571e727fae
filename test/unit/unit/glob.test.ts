import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitError } from '../../../src/unit/errors.js';
import { globMatch, isValidGlob, validateGlob } from '../../../src/unit/glob.js';

const BAD = 'bad pattern';

/** Outcomes of Go's path.Match (Go 1.16 and later, which checks the whole pattern). */
const GO_CASES: [pattern: string, name: string, outcome: boolean | typeof BAD][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', BAD],
  ['[-]', '-', BAD],
  ['[x-]', 'x', BAD],
  ['[x-]', '-', BAD],
  ['[x-]', 'z', BAD],
  ['[-x]', 'x', BAD],
  ['[-x]', '-', BAD],
  ['[-x]', 'a', BAD],
  ['\\', 'a', BAD],
  ['[a-b-c]', 'a', BAD],
  ['[', 'a', BAD],
  ['[^', 'a', BAD],
  ['[^bc', 'a', BAD],
  ['a[', 'a', BAD],
  ['a[', 'ab', BAD],
  ['a[', 'x', BAD],
  ['a/b[', 'x', BAD],
  ['*x', 'xxx', true],
  // and the shapes Conflicts= and Replaces= take in practice
  ['web@*.service', 'web@1.service', true],
  ['web@*.service', 'web@.service', true],
  ['web@*.service', 'web.service', false],
  ['*.service', 'a.socket', false],
  ['*', '', true],
  ['', '', true],
  ['', 'a', false],
  ['**', 'a/b', false],
  ['*/*', 'a/b', true],
  ['?', '', false],
  ['[!a]', '!', true],
  ['[!a]', 'b', false],
  ['{a,b}', 'a', false],
  ['{a,b}', '{a,b}', true],
  ['.*', '.hidden', true],
  ['*', '.hidden', true],
  ['x*', 'x*\\', true],
  ['a\\', 'a', BAD],
  ['*[', 'abc', BAD],
  ['a*[', 'b', BAD],
  ['abc[', 'abc', BAD],
  ['[[]', '[', true],
  ['[a-]]', 'a', BAD],
  ['[^]]', 'a', BAD],
  ['[\\^]', '^', true],
  ['[^\\]]', 'a', true],
  ['[z-a]', 'm', false],
  ['\\[', '[', true],
  ['\\?', '?', true],
  ['\\?', 'a', false],
  ['*a*', 'bab', true],
  ['*a*', 'b/a', false],
  // Go quirks kept on purpose: a class may match '/', and a chunk that matched
  // is not retried when only a later '*' would then have to cross a '/'.
  ['[^a]', '/', true],
  ['a[/]b', 'a/b', true],
  ['*[^a]*', '@/', false],
  ['*[^a]', '@/', true],
];

describe('globMatch: Go path.Match semantics', () => {
  it.each(GO_CASES)('Match(%j, %j) = %s', (pattern, name, outcome) => {
    if (outcome === BAD) {
      expect(() => globMatch(pattern, name)).toThrow(expect.objectContaining({ rule: 'glob.bad-pattern' }) as unknown as Error);
      expect(isValidGlob(pattern)).toBe(false);
      expect(() => validateGlob(pattern)).toThrow(UnitError);
    } else {
      expect(globMatch(pattern, name)).toBe(outcome);
      expect(isValidGlob(pattern)).toBe(true);
    }
  });

  it('explains a malformed pattern', () => {
    expect(() => globMatch('web@[.service', 'x')).toThrow(/malformed glob pattern "web@\[\.service"/);
  });
});

const nameChar = fc.constantFrom(...'ab/.@-xyz☺'.split(''));
const nameArb = fc.array(nameChar, { maxLength: 12 }).map((cs) => cs.join(''));
const patternArb = fc
  .array(fc.constantFrom('a', 'b', '/', '.', '*', '?', '[a-b]', '[^a]', '\\*', '☺', '@'), { maxLength: 8 })
  .map((ps) => ps.join(''));

/**
 * An independent reference: the pattern as a regular expression over code
 * points. It backtracks fully, which Go does not, so it only applies where
 * no class can match '/' (see the quirks in the table).
 */
function referenceMatch(pattern: string, name: string): boolean {
  const source = pattern
    .replace(/\\\*|\[\^a\]|\[a-b\]|[*?]|[^*?[\]\\]/gu, (tok) => {
      switch (tok) {
        case '\\*':
          return '\\*';
        case '[^a]':
          return '[^a]';
        case '[a-b]':
          return '[a-b]';
        case '*':
          return '[^/]*';
        case '?':
          return '[^/]';
        default:
          return tok.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
    });
  return new RegExp(`^${source}$`, 'u').test(name);
}

describe('globMatch: properties', () => {
  it('agrees with a regular-expression reading of simple patterns', () => {
    fc.assert(
      fc.property(patternArb, nameArb, (pattern, name) => {
        fc.pre(!(pattern.includes('[^a]') && name.includes('/')));
        expect(globMatch(pattern, name)).toBe(referenceMatch(pattern, name));
      }),
      { numRuns: 2000 },
    );
  });

  it('a name with its special characters escaped matches itself only', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (name, other) => {
        const escaped = name.replace(/[*?[\\]/g, '\\$&');
        expect(globMatch(escaped, name)).toBe(true);
        expect(globMatch(escaped, other)).toBe(other === name);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but UnitError, whatever the pattern', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: 'grapheme' }), fc.string({ maxLength: 30 }), (pattern, name) => {
        try {
          globMatch(pattern, name);
        } catch (e) {
          expect(e).toBeInstanceOf(UnitError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
