/**
 * Glob matching for [X-Fleet] Conflicts= and Replaces=, with the semantics of
 * Go's path.Match, which fleet used. Any other glob library (minimatch,
 * picomatch, fnmatch) differs in corner cases (`**`, braces, `!`, `[!...]`,
 * leading dots), and a difference here would silently change where units run.
 *
 * The rules:
 *   `*`        any run of bytes without `/`
 *   `?`        one character that is not `/`
 *   `[...]`    one character in the class; `[^...]` negates; `a-z` ranges;
 *              the class must not be empty; `-` and `]` only escaped inside
 *   `\c`       the character c itself
 * A malformed pattern is an error whatever the name (as in Go since 1.16).
 *
 * Go compares UTF-8 bytes and decodes runes only for `?` and classes, so this
 * works on UTF-8 bytes too; that keeps even the odd corners (a `*` skipping
 * into the middle of a multi-byte character) identical.
 */
import { UnitError, quote } from './errors.js';

/** True when the whole of `name` matches `pattern`; throws UnitError 'glob.bad-pattern'. */
export function globMatch(pattern: string, name: string): boolean {
  const result = match(utf8(pattern), utf8(name));
  if (result === BAD) throw badPattern(pattern);
  return result;
}

/** Throws UnitError 'glob.bad-pattern' when `pattern` is malformed. */
export function validateGlob(pattern: string): void {
  globMatch(pattern, '');
}

/** True when `pattern` is a well-formed glob. */
export function isValidGlob(pattern: string): boolean {
  return match(utf8(pattern), utf8('')) !== BAD;
}

const BAD = 'bad';
type Outcome = boolean | typeof BAD;
const SLASH = 0x2f;
const STAR = 0x2a;
const encoder = new TextEncoder();

function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

function badPattern(pattern: string): UnitError {
  return new UnitError(
    'glob.bad-pattern',
    `malformed glob pattern ${quote(pattern)}: check for an unterminated or empty [class], a range with a missing end, or a trailing backslash`,
  );
}

function match(pattern: Uint8Array, name: Uint8Array): Outcome {
  let p = 0;
  let n = 0;
  outer: while (p < pattern.length) {
    const { star, chunkStart, chunkEnd } = scanChunk(pattern, p);
    p = chunkEnd;
    const chunk = pattern.subarray(chunkStart, chunkEnd);
    if (star && chunk.length === 0) {
      // A trailing star matches the rest of the name unless it holds a slash.
      return name.indexOf(SLASH, n) < 0;
    }
    const here = matchChunk(chunk, name, n);
    if (here === BAD) return BAD;
    // The last chunk must use up the whole name; otherwise keep looking via the star.
    if (here >= 0 && (here === name.length || p < pattern.length)) {
      n = here;
      continue;
    }
    if (star) {
      // Let the star swallow one more byte each time; it never crosses '/'.
      for (let i = n; i < name.length && name[i] !== SLASH; i++) {
        const there = matchChunk(chunk, name, i + 1);
        if (there === BAD) return BAD;
        if (there >= 0) {
          if (p === pattern.length && there < name.length) continue;
          n = there;
          continue outer;
        }
      }
    }
    // No match; still report a malformed remainder of the pattern.
    while (p < pattern.length) {
      const next = scanChunk(pattern, p);
      p = next.chunkEnd;
      if (matchChunk(pattern.subarray(next.chunkStart, next.chunkEnd), name, name.length) === BAD) return BAD;
    }
    return false;
  }
  return n === name.length;
}

/** Skips leading stars, then finds the chunk up to the next star outside a class. */
function scanChunk(pattern: Uint8Array, from: number): { star: boolean; chunkStart: number; chunkEnd: number } {
  let i = from;
  let star = false;
  while (i < pattern.length && pattern[i] === STAR) {
    i++;
    star = true;
  }
  const chunkStart = i;
  let inClass = false;
  for (; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === 0x5c /* \ */) {
      if (i + 1 < pattern.length) i++;
    } else if (c === 0x5b /* [ */) {
      inClass = true;
    } else if (c === 0x5d /* ] */) {
      inClass = false;
    } else if (c === STAR && !inClass) {
      break;
    }
  }
  return { star, chunkStart, chunkEnd: i };
}

/**
 * Matches `chunk` (no unescaped stars) at name[at...]. Returns the index just
 * after the match, -1 for no match, or BAD. After a mismatch it keeps going
 * through the chunk only to check that the chunk is well formed.
 */
function matchChunk(chunk: Uint8Array, name: Uint8Array, at: number): number | typeof BAD {
  let c = 0;
  let s = at;
  let failed = false;
  while (c < chunk.length) {
    if (!failed && s >= name.length) failed = true;
    const ch = chunk[c];
    if (ch === 0x5b /* [ */) {
      let r = -1;
      if (!failed) {
        const d = decodeRune(name, s);
        r = d.rune;
        s += d.size;
      }
      c++;
      let negated = false;
      if (c < chunk.length && chunk[c] === 0x5e /* ^ */) {
        negated = true;
        c++;
      }
      let matched = false;
      let ranges = 0;
      for (;;) {
        if (c < chunk.length && chunk[c] === 0x5d /* ] */ && ranges > 0) {
          c++;
          break;
        }
        const lo = classChar(chunk, c);
        if (lo === BAD) return BAD;
        c = lo.next;
        let hi = lo.rune;
        if (chunk[c] === 0x2d /* - */) {
          const h = classChar(chunk, c + 1);
          if (h === BAD) return BAD;
          c = h.next;
          hi = h.rune;
        }
        if (lo.rune <= r && r <= hi) matched = true;
        ranges++;
      }
      if (matched === negated) failed = true;
    } else if (ch === 0x3f /* ? */) {
      if (!failed) {
        if (name[s] === SLASH) failed = true;
        s += decodeRune(name, s).size;
      }
      c++;
    } else {
      if (ch === 0x5c /* \ */) {
        c++;
        if (c >= chunk.length) return BAD;
      }
      if (!failed) {
        if (chunk[c] !== name[s]) failed = true;
        s++;
      }
      c++;
    }
  }
  return failed ? -1 : s;
}

/** One (possibly escaped) character of a class; Go's getEsc. */
function classChar(chunk: Uint8Array, at: number): { rune: number; next: number } | typeof BAD {
  let i = at;
  if (i >= chunk.length || chunk[i] === 0x2d /* - */ || chunk[i] === 0x5d /* ] */) return BAD;
  if (chunk[i] === 0x5c /* \ */) {
    i++;
    if (i >= chunk.length) return BAD;
  }
  const { rune, size } = decodeRune(chunk, i);
  if (rune === RUNE_ERROR && size === 1) return BAD;
  const next = i + size;
  // A class must be closed: running out of pattern here is malformed.
  if (next >= chunk.length) return BAD;
  return { rune, next };
}

const RUNE_ERROR = 0xfffd;

/** Decodes one UTF-8 sequence like Go's utf8.DecodeRune: invalid input is (U+FFFD, 1). */
function decodeRune(b: Uint8Array, at: number): { rune: number; size: number } {
  const b0 = b[at];
  if (b0 === undefined) return { rune: RUNE_ERROR, size: 0 };
  if (b0 < 0x80) return { rune: b0, size: 1 };
  let size: number;
  let rune: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    size = 2;
    rune = b0 & 0x1f;
    min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    size = 3;
    rune = b0 & 0x0f;
    min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    size = 4;
    rune = b0 & 0x07;
    min = 0x10000;
  } else {
    return { rune: RUNE_ERROR, size: 1 };
  }
  for (let k = 1; k < size; k++) {
    const bk = b[at + k];
    if (bk === undefined || (bk & 0xc0) !== 0x80) return { rune: RUNE_ERROR, size: 1 };
    rune = (rune << 6) | (bk & 0x3f);
  }
  if (rune < min || rune > 0x10ffff || (rune >= 0xd800 && rune <= 0xdfff)) return { rune: RUNE_ERROR, size: 1 };
  return { rune, size };
}
