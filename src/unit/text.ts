/**
 * Turning input into the text the parser reads: the size cap and UTF-8
 * checks happen here, before any parsing, so an oversized or binary upload is
 * refused cheaply and with a message that says which limit it broke.
 */
import { surrogateFaultOf, utf8FaultOf } from '../utf8.js';
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
  const fault = typeof input === 'string' ? surrogateFaultOf(input) : utf8FaultOf(input);
  if (fault) {
    const line = typeof input === 'string' ? lineAt(input, fault.offset) : lineAtByte(input, fault.offset);
    throw new UnitError('file.encoding', `${fault.message}; save the unit file as UTF-8 text`, { unit, line });
  }
  let text = typeof input === 'string' ? input : new TextDecoder('utf-8', { ignoreBOM: true }).decode(input);
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
