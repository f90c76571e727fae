// Request bodies: JSON only (415 otherwise), at most maxBytes (413), UTF-8
// text only (400 naming the field), parsed into plain values; and strict shapes, so an unknown field is refused
// instead of silently ignored.
import type { IncomingMessage } from 'node:http';
import { utf8FaultOf } from '../utf8.js';
import { ApiError, badRequest } from './errors.js';
import { fieldAtEnd, illFormedField } from './json-field.js';

export const MAX_BODY_BYTES = 1024 * 1024;
/** A body declared far beyond the cap is refused without being read (the connection is closed). */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES;

/** application/json, with at most a UTF-8 charset parameter. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => p === '' || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

/**
 * Reads the whole body as JSON. A body over the cap is read to its end
 * without being kept (so the client, still sending, sees the answer; the
 * server's request timeout bounds a slow one) and refused with 413.
 */
export async function readJson(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new ApiError(415, 'request body must be JSON (Content-Type: application/json)');
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > DRAIN_LIMIT_BYTES) {
    throw new ApiError(413, `request body is larger than ${maxBytes} bytes`, { Connection: 'close' });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  }
  if (size > maxBytes) throw new ApiError(413, `request body is larger than ${maxBytes} bytes`, { Connection: 'close' });
  const buf = Buffer.concat(chunks);
  const fault = utf8FaultOf(buf);
  if (fault) {
    const field = fieldAtEnd(buf.subarray(0, fault.offset).toString('utf8'));
    throw badRequest(field ? `in the request body, ${field} is ${fault.message}` : `request body is ${fault.message}`);
  }
  const text = new TextDecoder().decode(buf); // valid now; a leading byte-order mark is dropped
  if (text.trim() === '') throw badRequest('request body is empty; a JSON document is required');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`);
  }
  // JSON can spell what UTF-8 cannot ("\uD800"): text that turns into U+FFFD wherever it is written out.
  const bad = illFormedField(value);
  if (bad) throw badRequest(`in the request body, ${bad.field} is ${bad.fault.message}`);
  return value;
}

/** Reads and discards a body a request should not have; refuses one that is there. */
export async function refuseBody(req: IncomingMessage): Promise<void> {
  const len = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((len !== undefined && len !== '0') || chunked) {
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
    }
    if (size > 0) throw badRequest('this request must not have a body');
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Refuses fields other than the allowed ones. */
export function onlyFields(obj: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw badRequest(`unknown field ${JSON.stringify(key)} in ${what}; allowed: ${allowed.join(', ')}`);
  }
}
