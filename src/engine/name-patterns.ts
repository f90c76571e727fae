/**
 * Which unit names a Conflicts=/Replaces= glob matches, answered fast.
 *
 * The scheduler asks this for every distinct pattern in the cluster against
 * every unit name, so a naive `globMatch` per pair (about 1.5 µs each) would
 * cost seconds at 100,000 units. Three things keep it cheap:
 *   - each distinct pattern is resolved once and cached (instances of one
 *     template usually share their patterns);
 *   - a pattern's literal prefix narrows the search to a range of the sorted
 *     names (a pattern without any glob character is a plain lookup);
 *   - an ASCII pattern is compiled to an equivalent RegExp, with
 *     `globMatch` (the Go path.Match port) kept for anything else.
 */
import { globMatch, isValidGlob } from '../unit/glob.js';

export class NamePatternIndex {
  private readonly names: readonly string[];
  private readonly byName: ReadonlyMap<string, number>;
  private readonly cache = new Map<string, readonly number[]>();

  /** `names` must be sorted (plain `<` order) and unique; results are indices into it. */
  constructor(names: readonly string[], byName: ReadonlyMap<string, number>) {
    this.names = names;
    this.byName = byName;
  }

  /** Indices (ascending) of the names `pattern` matches; a malformed pattern matches none. */
  matches(pattern: string): readonly number[] {
    let found = this.cache.get(pattern);
    if (found === undefined) {
      found = this.resolve(pattern);
      this.cache.set(pattern, found);
    }
    return found;
  }

  private resolve(pattern: string): readonly number[] {
    const prefix = literalPrefix(pattern);
    if (prefix.length === pattern.length) {
      const exact = this.byName.get(pattern);
      return exact === undefined ? [] : [exact];
    }
    if (!isValidGlob(pattern)) return [];
    const test = compileGlob(pattern);
    const out: number[] = [];
    for (let i = lowerBound(this.names, prefix); i < this.names.length; i++) {
      const name = this.names[i] as string;
      if (!name.startsWith(prefix)) break;
      if (test(name)) out.push(i);
    }
    return out;
  }
}

/** The characters before the first glob metacharacter (`*`, `?`, `[`, `\`). */
export function literalPrefix(pattern: string): string {
  const at = pattern.search(/[*?[\\]/);
  return at < 0 ? pattern : pattern.slice(0, at);
}

const NON_ASCII = /[^\x20-\x7e]/;
const isAscii = (s: string): boolean => !NON_ASCII.test(s);
/** Printable ASCII without '/': where a backtracking RegExp and Go's first-fit matching agree. */
const PLAIN_NAME = /^[\x20-\x2e\x30-\x7e]*$/;

/**
 * A predicate equivalent to `globMatch(pattern, name)` for a well-formed
 * pattern. A printable-ASCII pattern becomes a RegExp, used for names of
 * printable ASCII without '/' (every valid unit name); other names still go
 * through globMatch. Go matches each chunk at its first fit and never
 * retries, which differs from a RegExp only when a '/' stops a later '*',
 * and compares UTF-8 bytes, which differs for non-ASCII text. A property
 * test checks the two agree.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  if (!isAscii(pattern)) return (name) => globMatch(pattern, name);
  const re = new RegExp(`^${globToRegExpSource(pattern)}$`, 'u');
  return (name) => (PLAIN_NAME.test(name) ? re.test(name) : globMatch(pattern, name));
}

function globToRegExpSource(pattern: string): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '*') {
      out += '[^/]*';
      i++;
    } else if (c === '?') {
      out += '[^/]';
      i++;
    } else if (c === '\\') {
      out += hex(pattern[i + 1] as string);
      i += 2;
    } else if (c === '[') {
      i++;
      let cls = '[';
      if (pattern[i] === '^') {
        cls += '^';
        i++;
      }
      let first = true;
      while (first || pattern[i] !== ']') {
        first = false;
        const lo = classChar(pattern, i);
        i = lo.next;
        let hi = lo.char;
        if (pattern[i] === '-') {
          const h = classChar(pattern, i + 1);
          i = h.next;
          hi = h.char;
        }
        // Go lets a reversed range match nothing; a RegExp would refuse it.
        if (lo.char <= hi) cls += lo.char === hi ? hex(lo.char) : `${hex(lo.char)}-${hex(hi)}`;
      }
      i++;
      out += `${cls}]`;
    } else {
      out += hex(c);
      i++;
    }
  }
  return out;
}

function classChar(pattern: string, at: number): { char: string; next: number } {
  if (pattern[at] === '\\') return { char: pattern[at + 1] as string, next: at + 2 };
  return { char: pattern[at] as string, next: at + 1 };
}

function hex(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
