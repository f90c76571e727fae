// The strict UTF-8 checks every edge shares (src/utf8.ts), with real bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidUtf8Error, checkWellFormed, decodeUtf8, surrogateFaultOf, utf8FaultOf } from '../../src/utf8.js';

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('decodeUtf8', () => {
  it('names the first bad byte and its offset', () => {
    const input = bytes('Description=caf', [0xff, 0xfe], '\n');
    expect(() => decodeUtf8(input)).toThrow(new InvalidUtf8Error({ offset: 15, message: 'not valid UTF-8 (byte 0xff at offset 15)' }));
    expect(utf8FaultOf(input)).toEqual({ offset: 15, message: 'not valid UTF-8 (byte 0xff at offset 15)' });
  });

  it.each<[string, number[], number]>([
    ['a stray continuation byte', [0x80], 0],
    ['a truncated sequence at the end', [0xc3], 0],
    ['a truncated sequence before ASCII', [0xe2, 0x82, 0x41], 0],
    ['an overlong encoding', [0xc0, 0xaf], 0],
    ['an overlong three-byte encoding', [0xe0, 0x80, 0xaf], 0],
    ['a UTF-8-encoded surrogate', [0xed, 0xa0, 0x80], 0],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['an invalid lead byte', [0xfe], 0],
  ])('refuses %s', (_label, bad) => {
    const input = bytes('é=', bad);
    expect(utf8FaultOf(input)?.offset).toBe(3);
    expect(() => decodeUtf8(input)).toThrow(InvalidUtf8Error);
  });

  it('keeps valid text as it is, byte-order mark included', () => {
    expect(decodeUtf8(bytes([0xef, 0xbb, 0xbf], 'x=é😀'))).toBe('\uFEFFx=é😀');
    expect(decodeUtf8(new Uint8Array())).toBe('');
  });

  it('agrees with the fatal WHATWG decoder on arbitrary bytes', () => {
    const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        let expected: string | undefined;
        try {
          expected = fatal.decode(b);
        } catch {
          expected = undefined;
        }
        if (expected === undefined) expect(() => decodeUtf8(b)).toThrow(InvalidUtf8Error);
        else expect(decodeUtf8(b)).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('checkWellFormed', () => {
  it('refuses lone surrogates, naming the code unit and where it is', () => {
    expect(surrogateFaultOf('ab\uD800c')).toEqual({ offset: 2, message: 'not valid UTF-8 (lone surrogate \\uD800 at character 2)' });
    expect(surrogateFaultOf('\uDC00')?.offset).toBe(0);
    expect(surrogateFaultOf('x\uD83D')?.offset).toBe(1);
    expect(() => checkWellFormed('\uDFFFx')).toThrow(InvalidUtf8Error);
  });

  it('takes pairs and ordinary text', () => {
    expect(checkWellFormed('😀 café')).toBe('😀 café');
    expect(surrogateFaultOf('')).toBeUndefined();
  });
});
