// Raw key-value access shared by every key space of the registry: what a
// key-space module needs (the context), unconditional transactions, paged
// listings at one revision, and tolerant decoding.
import type { Etcd3, IOperation } from 'etcd3';
import type * as RPC from 'etcd3/lib/rpc.js';
import type { Logger } from '../log.js';
import type { Connection } from './connection.js';
import { prefixEnd, type Keys } from './keys.js';
import { DecodeError } from './records.js';

/** What the key-space modules (units.ts, machines.ts, schedule.ts, states.ts) work with. */
export interface RegistryCtx {
  readonly conn: Connection;
  readonly client: Etcd3;
  readonly keys: Keys;
  readonly log: Logger;
  /** Most operations etcd accepts in one transaction. */
  readonly maxTxnOps: number;
}

export interface Paged<T> {
  items: T[];
  /** The etcd revision the whole listing was read at. */
  revision: string;
}

/** A key-value read from etcd, undecoded. */
export interface RawKV {
  key: string;
  value: string;
  modRevision: string;
  createRevision: string;
  lease: string;
}

/** Keys per page when listing; fewer when values are too large for one response. */
const LIST_PAGE = 2_000;

export function toRaw(kv: RPC.IKeyValue): RawKV {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: kv.mod_revision,
    createRevision: kv.create_revision,
    lease: kv.lease,
  };
}

/** One unconditional transaction: several operations in one request, applied atomically. */
export async function txn(client: Etcd3, ops: readonly IOperation[]): Promise<RPC.ITxnResponse> {
  const success = await Promise.all(ops.map((o) => o.op()));
  return client.kv.txn({ compare: [], success, failure: [] });
}

export async function getRaw(ctx: RegistryCtx, key: string): Promise<RawKV | undefined> {
  const res = await ctx.conn.call(`read ${key}`, () =>
    ctx.client.kv.range({ key: Buffer.from(key) }, undefined),
  );
  const kv = res.kvs[0];
  return kv ? toRaw(kv) : undefined;
}

/**
 * Reads every key under prefix, page by page at one revision, so a large
 * listing stays within etcd's request limits and is still consistent.
 */
export async function listPrefix(ctx: RegistryCtx, prefix: string, atRevision?: string): Promise<Paged<RawKV>> {
  const end = prefixEnd(prefix);
  const items: RawKV[] = [];
  let start = Buffer.from(prefix);
  let revision = atRevision;
  let limit = LIST_PAGE;
  for (;;) {
    const req: RPC.IRangeRequest = { key: start, range_end: end, limit };
    if (revision !== undefined) req.revision = revision;
    let res: RPC.IRangeResponse;
    try {
      res = await ctx.conn.call(`list ${prefix}`, () => ctx.client.kv.range(req));
    } catch (err) {
      // A page of unusually large values can exceed the message size:
      // ask for smaller pages rather than failing.
      if (limit > 1 && /RESOURCE_EXHAUSTED|larger than max/i.test((err as Error).message)) {
        limit = Math.max(1, Math.floor(limit / 4));
        continue;
      }
      throw err;
    }
    revision ??= res.header.revision;
    for (const kv of res.kvs) items.push(toRaw(kv));
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || !last) break;
    start = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { items, revision: revision ?? '0' };
}

/** Decodes a value; a corrupt or foreign one is logged and skipped, never thrown. */
export function tryDecode<T>(log: Logger, decoder: (raw: string) => T, key: string, raw: string): T | undefined {
  try {
    return decoder(raw);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    log.warn('skipping unreadable value in the registry', { key, error: err.message });
    return undefined;
  }
}

export function decodeAll<T>(log: Logger, items: readonly RawKV[], decoder: (raw: string) => T): T[] {
  const out: T[] = [];
  for (const kv of items) {
    const v = tryDecode(log, decoder, kv.key, kv.value);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** Lists a prefix and decodes every value, skipping unreadable ones. */
export async function listDecoded<T>(ctx: RegistryCtx, prefix: string, decoder: (raw: string) => T): Promise<T[]> {
  const page = await listPrefix(ctx, prefix);
  return decodeAll(ctx.log, page.items, decoder);
}
