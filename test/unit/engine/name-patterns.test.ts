import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NamePatternIndex, compileGlob, literalPrefix } from '../../../src/engine/name-patterns.js';
import { globMatch, isValidGlob } from '../../../src/unit/glob.js';

/** Patterns and names over a small alphabet rich in glob syntax, so corners come up often. */
const patternArb = fc
  .array(
    fc.oneof(
      fc.constantFrom('a', 'b', '.', '/', '-', '@', '*', '?', '[', ']', '^', '\\', 'é'),
      fc.constantFrom('[^a]', '[a-b]', '[/]', '[^/a]', '[b-a]', '[\\]]', '\\*', '*', '**'),
    ),
    { maxLength: 8 },
  )
  .map((cs) => cs.join(''));
const nameArb = fc.array(fc.constantFrom('a', 'b', '.', '/', '-', '@', '*', '[', ']', '^', '\\', 'é'), { maxLength: 8 }).map((cs) => cs.join(''));

describe('compileGlob', () => {
  it('agrees with globMatch (Go path.Match) on every well-formed pattern', () => {
    fc.assert(
      fc.property(patternArb, nameArb, (pattern, name) => {
        fc.pre(isValidGlob(pattern));
        expect(compileGlob(pattern)(name)).toBe(globMatch(pattern, name));
      }),
      { numRuns: 20_000 },
    );
  });

  it('agrees with globMatch where a class can match a slash (short and dense)', () => {
    const shortPattern = fc.array(fc.constantFrom('*', '[^a]', '[/]', 'a', '/', '?'), { maxLength: 4 }).map((cs) => cs.join(''));
    const shortName = fc.array(fc.constantFrom('a', '@', '/'), { maxLength: 4 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(shortPattern, shortName, (pattern, name) => {
        expect(compileGlob(pattern)(name)).toBe(globMatch(pattern, name));
      }),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['web@*.service', 'web@1.service', true],
    ['web@*.service', 'web@.service', true],
    ['web@*', 'web@a/b', false],
    ['[a-c].service', 'b.service', true],
    ['[^a-c].service', 'd.service', true],
    ['[^a-c].service', '/.service', true],
    ['[b-a]x', 'ax', false],
    ['[^b-a]x', 'ax', true],
    ['\\*x', '*x', true],
    ['\\*x', 'ax', false],
    ['?.service', 'é.service', true],
    // Go's first-fit quirk: the class takes '@', and the last '*' may not cross '/'.
    ['*[^a]*', '@/', false],
    ['*[^a]', '@/', true],
  ])('%s ~ %s is %s', (pattern, name, expected) => {
    expect(compileGlob(pattern)(name)).toBe(expected);
    expect(globMatch(pattern, name)).toBe(expected);
  });
});

describe('NamePatternIndex', () => {
  it.each([
    ['web@*.service', 'web@'],
    ['exact.service', 'exact.service'],
    ['*x', ''],
    ['a\\*b', 'a'],
    ['ab[c]', 'ab'],
  ])('literal prefix of %s is %j', (pattern, prefix) => {
    expect(literalPrefix(pattern)).toBe(prefix);
  });

  it('finds exactly the names globMatch accepts', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nameArb, { maxLength: 12 }), patternArb, (names, pattern) => {
        const sorted = [...names].sort();
        const index = new NamePatternIndex(sorted, new Map(sorted.map((n, i) => [n, i])));
        const expected = isValidGlob(pattern) ? sorted.flatMap((n, i) => (globMatch(pattern, n) ? [i] : [])) : [];
        expect(index.matches(pattern)).toEqual(expected);
        expect(index.matches(pattern)).toBe(index.matches(pattern)); // cached
      }),
      { numRuns: 5_000 },
    );
  });

  it('a malformed pattern matches nothing', () => {
    const index = new NamePatternIndex(['[a', 'a'], new Map([['[a', 0], ['a', 1]]));
    expect(index.matches('[a')).toEqual([]);
  });
});
