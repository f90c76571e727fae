/**
 * Strict UTF-8, shared by every edge where user text enters (unit files,
 * API bodies, flotctl's arguments, flotillad's config file, discovery
 * announcements). Node's own decoding ('utf8' in readFileSync, process.argv)
 * replaces bad bytes with U+FFFD, which would store text the user never
 * wrote; these functions find the first fault and say where it is instead.
 *
 * A JavaScript string can hold what no UTF-8 can encode: a lone surrogate
 * (`"\uD800"` in JSON). It is refused as invalid UTF-8 too, because storing
 * it would later be written out as U+FFFD.
 */

/** Where text stopped being valid UTF-8, and a short phrase that says so. */
export interface Utf8Fault {
  /** Byte offset (for bytes) or UTF-16 index (for strings) of the fault. */
  offset: number;
  /** `not valid UTF-8 (byte 0xff at offset 23)` */
  message: string;
}

export class InvalidUtf8Error extends Error {
  override readonly name = 'InvalidUtf8Error';
  constructor(readonly fault: Utf8Fault) {
    super(fault.message);
  }
}

/** Index of the first byte that does not start or continue a well-formed UTF-8 sequence, or -1. */
export function findInvalidUtf8(b: Uint8Array): number {
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

/** Index of the first surrogate code unit not part of a pair, or -1. */
export function findLoneSurrogate(s: string): number {
  const m = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(s);
  return m ? m.index : -1;
}

/** The first fault of bytes, or undefined when they are valid UTF-8. */
export function utf8FaultOf(bytes: Uint8Array): Utf8Fault | undefined {
  const offset = findInvalidUtf8(bytes);
  if (offset < 0) return undefined;
  const byte = (bytes[offset] as number).toString(16).padStart(2, '0');
  return { offset, message: `not valid UTF-8 (byte 0x${byte} at offset ${offset})` };
}

/** The first lone surrogate of a string, or undefined when every character can be written as UTF-8. */
export function surrogateFaultOf(s: string): Utf8Fault | undefined {
  const offset = findLoneSurrogate(s);
  if (offset < 0) return undefined;
  const unit = s.charCodeAt(offset).toString(16).toUpperCase();
  return { offset, message: `not valid UTF-8 (lone surrogate \\u${unit} at character ${offset})` };
}

/** Decodes bytes that must be UTF-8; InvalidUtf8Error names the first bad byte. A byte-order mark is kept. */
export function decodeUtf8(bytes: Uint8Array): string {
  const fault = utf8FaultOf(bytes);
  if (fault) throw new InvalidUtf8Error(fault);
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

/** Refuses a string that holds a lone surrogate; InvalidUtf8Error names where. */
export function checkWellFormed(s: string): string {
  const fault = surrogateFaultOf(s);
  if (fault) throw new InvalidUtf8Error(fault);
  return s;
}

/** Bytes as text for a message: valid runs decoded, each bad byte written as `\xff`. */
export function showBytes(bytes: Uint8Array): string {
  let out = '';
  let rest = bytes;
  for (;;) {
    const bad = findInvalidUtf8(rest);
    if (bad < 0) return out + Buffer.from(rest).toString('utf8');
    out += `${Buffer.from(rest.subarray(0, bad)).toString('utf8')}\\x${(rest[bad] as number).toString(16).padStart(2, '0')}`;
    rest = rest.subarray(bad + 1);
  }
}
