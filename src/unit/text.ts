/**
 * Turning input into the text the parser reads: the size cap and UTF-8
 * checks happen here, before any parsing, so an oversized or binary upload is
 * refused cheaply and with a message that says which limit it broke.
 */
import { UnitError } from './errors.js';

/** Unit files larger than this are refused (fleet kept them in etcd too). */
export const DEFAULT_MAX_UNIT_BYTES = 512 * 1024;

export interface DecodeOptions {
  unit?: string | undefined;
  maxBytes?: number | undefined;
}

/** Returns the file's text without a leading byte-order mark. */
export function decodeUnitText(input: string | Uint8Array, opts: DecodeOptions = {}): string {
  const unit = opts.unit;
  const max = opts.maxBytes ?? DEFAULT_MAX_UNIT_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > max) {
    throw new UnitError(
      'file.too-large',
      `the unit file has ${size} bytes, more than the limit of ${max} (${formatKiB(max)}); keep large data outside the unit and reference it`,
      { unit },
    );
  }
  let text: string;
  if (typeof input === 'string') {
    const bad = findLoneSurrogate(input);
    if (bad >= 0) throw invalidUtf8(unit, lineAt(input, bad));
    text = input;
  } else {
    const bad = findInvalidUtf8(input);
    if (bad >= 0) throw invalidUtf8(unit, lineAtByte(input, bad));
    text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(input);
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    throw new UnitError('file.nul', 'the unit file contains a NUL character; unit files are text', { unit, line: lineAt(text, nul) });
  }
  return text;
}

function formatKiB(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

function invalidUtf8(unit: string | undefined, line: number): UnitError {
  return new UnitError('file.encoding', 'the unit file is not valid UTF-8; save it as UTF-8 text', { unit, line });
}

/** Index of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
function findInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const b0 = b[i] as number;
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let size: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) size = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      size = 3;
      if (b0 === 0xe0) lo = 0xa0; // overlong
      if (b0 === 0xed) hi = 0x9f; // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      size = 4;
      if (b0 === 0xf0) lo = 0x90; // overlong
      if (b0 === 0xf4) hi = 0x8f; // beyond U+10FFFF
    } else return i;
    for (let k = 1; k < size; k++) {
      const bk = b[i + k];
      if (bk === undefined || bk < (k === 1 ? lo : 0x80) || bk > (k === 1 ? hi : 0xbf)) return i;
    }
    i += size;
  }
  return -1;
}

function findLoneSurrogate(s: string): number {
  const m = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(s);
  return m ? m.index : -1;
}

/** 1-based line of s[index], counting \n, \r\n and a lone \r as line breaks like the parser. */
function lineAt(s: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) {
    const c = s.charCodeAt(i);
    if (c === 10 || (c === 13 && s.charCodeAt(i + 1) !== 10)) line++;
  }
  return line;
}

function lineAtByte(b: Uint8Array, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) {
    if (b[i] === 10 || (b[i] === 13 && b[i + 1] !== 10)) line++;
  }
  return line;
}
