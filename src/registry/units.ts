// The units key space: unit files (`units/<name>`), desired states
// (`desired/<name>`) and the index of global units (`global/<name>`), kept
// in step by writing each unit's keys in one transaction.
import type { IOperation } from 'etcd3';
import { CAS_ATTEMPTS, WRITE_CONCURRENCY, chunkBy, inParallel } from './batch.js';
import { RegistryConflictError, UnitExistsError, UnitNotFoundError } from './errors.js';
import { decodeAll, listDecoded, listPrefix, toRaw, tryDecode, txn, type RawKV, type RegistryCtx } from './kv.js';
import { decode, encode, type DesiredState, type GlobalRecord, type UnitRecord } from './records.js';

/** A unit with its desired state, as users see it. */
export interface UnitWithState extends UnitRecord {
  desiredState: DesiredState;
}

export type CreateResult = 'created' | 'replaced' | 'unchanged';

export interface CreateOptions {
  /** Replace an existing unit's file (its desired state is kept unless desiredState is given). */
  replace?: boolean | undefined;
  /** Desired state to set with the file. */
  desiredState?: DesiredState | undefined;
}

interface RawUnit {
  unit: UnitRecord | undefined;
  desiredState: DesiredState;
  modRevision: string;
}

/**
 * Creates (or replaces) many units in a few transactions. Every unit is
 * checked before anything is written: one refused unit refuses them all.
 */
export async function createUnits(ctx: RegistryCtx, units: readonly UnitRecord[], opts: CreateOptions = {}): Promise<Map<string, CreateResult>> {
  const { client, keys } = ctx;
  const results = new Map<string, CreateResult>();
  let todo = [...new Map(units.map((u) => [u.name, u])).values()];
  // Most creates are of new units: when the batch fits one transaction,
  // first try it as all-new (one request), and read only if that fails.
  const optimistic = !opts.replace && todo.length * 3 <= ctx.maxTxnOps;
  for (let attempt = 0; attempt < CAS_ATTEMPTS && todo.length > 0; attempt++) {
    const existing = attempt === 0 && optimistic ? new Map<string, RawUnit>() : await getUnitsRaw(ctx, todo.map((u) => u.name));
    const refused = todo.filter((u) => {
      const e = existing.get(u.name);
      return e && !opts.replace && e.unit?.hash !== u.hash;
    });
    if (refused.length > 0) throw new UnitExistsError(refused[0]!.name);
    const writes: { unit: UnitRecord; ops: IOperation[]; modRevision: string | number }[] = [];
    for (const unit of todo) {
      const e = existing.get(unit.name);
      const sameFile = e?.unit?.hash === unit.hash && e.unit.global === unit.global;
      if (sameFile && (!opts.desiredState || opts.desiredState === e.desiredState)) {
        results.set(unit.name, 'unchanged');
        continue;
      }
      const state = opts.desiredState ?? e?.desiredState ?? 'inactive';
      const ops: IOperation[] = [
        client.put(keys.unit(unit.name)).value(encode(unit)),
        client.put(keys.desired(unit.name)).value(encode({ state })),
      ];
      if (unit.global) {
        ops.push(client.put(keys.global(unit.name)).value(encode<GlobalRecord>({ name: unit.name, hash: unit.hash, state })));
      } else if (e?.unit?.global) {
        ops.push(client.delete().key(keys.global(unit.name)));
      }
      writes.push({ unit, ops, modRevision: e ? e.modRevision : 0 });
    }
    const failed = new Set<string>();
    // Chunks touch disjoint units, so they can be in flight together.
    await inParallel(chunkBy(writes, (w) => w.ops.length, ctx.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
      const first = chunk[0]!;
      const cmp = client.if(keys.unit(first.unit.name), 'Mod', '==', first.modRevision);
      for (const w of chunk.slice(1)) cmp.and(keys.unit(w.unit.name), 'Mod', '==', w.modRevision);
      const res = await ctx.conn.call('create units', () => cmp.then(...chunk.flatMap((w) => w.ops)).commit());
      for (const w of chunk) {
        if (res.succeeded) results.set(w.unit.name, existing.has(w.unit.name) ? 'replaced' : 'created');
        else failed.add(w.unit.name);
      }
    });
    todo = todo.filter((u) => failed.has(u.name));
  }
  if (todo.length > 0) {
    throw new RegistryConflictError(`unit ${todo[0]!.name} kept changing while being written; try again`);
  }
  return results;
}

/** The named units that exist, with their desired states, many per request. */
export async function getUnits(ctx: RegistryCtx, names: readonly string[]): Promise<Map<string, UnitWithState>> {
  const out = new Map<string, UnitWithState>();
  for (const [name, raw] of await getUnitsRaw(ctx, [...new Set(names)])) {
    if (raw.unit) out.set(name, { ...raw.unit, desiredState: raw.desiredState });
  }
  return out;
}

export async function listUnits(ctx: RegistryCtx): Promise<UnitWithState[]> {
  const { keys, log } = ctx;
  // Both ranges at one revision, so a unit and its desired state agree.
  const units = await listPrefix(ctx, keys.unitsPrefix);
  const desired = await listPrefix(ctx, keys.desiredPrefix, units.revision);
  const states = new Map<string, DesiredState>();
  for (const kv of desired.items) {
    const d = tryDecode(log, decode.desired, kv.key, kv.value);
    if (d) states.set(kv.key.slice(keys.desiredPrefix.length), d.state);
  }
  const out: UnitWithState[] = [];
  for (const u of decodeAll(log, units.items, decode.unit)) out.push({ ...u, desiredState: states.get(u.name) ?? 'inactive' });
  return out;
}

/**
 * Sets the desired state of units. Unknown units are refused before
 * anything is written; many units go in a few transactions. Only desired
 * states (and the global index) are read and written, never unit files.
 */
export async function setDesiredState(ctx: RegistryCtx, names: readonly string[], state: DesiredState): Promise<void> {
  const { client, keys } = ctx;
  const unique = [...new Set(names)];
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    // A unit's desired key is created and deleted with it, so it proves the unit exists.
    const [current, globals] = await Promise.all([getDesiredRaw(ctx, unique), listGlobalUnits(ctx)]);
    const missing = unique.filter((n) => !current.has(n));
    if (missing.length > 0) throw new UnitNotFoundError(missing);
    const globalHash = new Map(globals.map((g) => [g.name, g.hash]));
    // Units already in that state need no write (and wake no watcher).
    const changing = unique.filter((n) => current.get(n)!.state !== state);
    let conflicted = false;
    // Each unit's compare and its writes stay in one transaction; chunks
    // touch disjoint units, so several are in flight together.
    const writes = changing.map((n) => {
      const ops: IOperation[] = [client.put(keys.desired(n)).value(encode({ state }))];
      const hash = globalHash.get(n);
      if (hash !== undefined) ops.push(client.put(keys.global(n)).value(encode<GlobalRecord>({ name: n, hash, state })));
      return { name: n, ops, modRevision: current.get(n)!.modRevision };
    });
    await inParallel(chunkBy(writes, (w) => w.ops.length, ctx.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
      const cmp = client.if(keys.desired(chunk[0]!.name), 'Mod', '==', chunk[0]!.modRevision);
      for (const w of chunk.slice(1)) cmp.and(keys.desired(w.name), 'Mod', '==', w.modRevision);
      const res = await ctx.conn.call('set desired state', () => cmp.then(...chunk.flatMap((w) => w.ops)).commit());
      if (!res.succeeded) conflicted = true;
    });
    if (!conflicted) return;
  }
  throw new RegistryConflictError(`units kept changing while their desired state was set; try again`);
}

/** Desired states with their mod revisions: per key for a few units, one listing for many. */
async function getDesiredRaw(ctx: RegistryCtx, names: readonly string[]): Promise<Map<string, { state: DesiredState; modRevision: string }>> {
  const { client, keys } = ctx;
  const out = new Map<string, { state: DesiredState; modRevision: string }>();
  const put = (name: string, kv: RawKV): void => {
    const d = tryDecode(ctx.log, decode.desired, kv.key, kv.value);
    out.set(name, { state: d?.state ?? 'inactive', modRevision: kv.modRevision });
  };
  if (names.length > ctx.maxTxnOps) {
    const wanted = new Set(names);
    const page = await listPrefix(ctx, keys.desiredPrefix);
    for (const kv of page.items) {
      const name = kv.key.slice(keys.desiredPrefix.length);
      if (wanted.has(name)) put(name, kv);
    }
    return out;
  }
  const res = await ctx.conn.call('read desired states', () => txn(client, names.map((n) => client.get(keys.desired(n)))));
  names.forEach((name, i) => {
    const kv = res.responses[i]?.response_range?.kvs[0];
    if (kv) put(name, toRaw(kv));
  });
  return out;
}

/**
 * Destroys many units: each unit's file, desired state, global index entry,
 * pending reason and published states in one transaction, several
 * transactions sent in parallel. Units that do not exist are refused with
 * UnitNotFoundError, after the others are destroyed.
 */
export async function destroyUnits(ctx: RegistryCtx, names: readonly string[]): Promise<void> {
  const { client, keys: k } = ctx;
  const unique = [...new Set(names)];
  const opsOf = (name: string): IOperation[] => [
    client.delete().key(k.unit(name)),
    client.delete().key(k.desired(name)),
    client.delete().key(k.global(name)),
    client.delete().key(k.pending(name)),
    client.delete().prefix(k.statesOf(name)),
  ];
  const missing: string[] = [];
  const commit = async (chunk: readonly string[]): Promise<boolean> => {
    const cmp = client.if(k.unit(chunk[0]!), 'Create', '>', 0);
    for (const n of chunk.slice(1)) cmp.and(k.unit(n), 'Create', '>', 0);
    const what = chunk.length === 1 ? `destroy unit ${chunk[0]}` : `destroy ${chunk.length} units`;
    const res = await ctx.conn.call(what, () => cmp.then(...chunk.flatMap(opsOf)).commit());
    return res.succeeded;
  };
  await inParallel(chunkBy(unique, () => 5, ctx.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
    if (await commit(chunk)) return;
    // One of them is gone already: each on its own, so the others still go.
    for (const n of chunk) if (chunk.length === 1 || !(await commit([n]))) missing.push(n);
  });
  if (missing.length > 0) throw new UnitNotFoundError(unique.filter((n) => missing.includes(n)));
}

export async function listGlobalUnits(ctx: RegistryCtx): Promise<GlobalRecord[]> {
  return await listDecoded(ctx, ctx.keys.globalPrefix, decode.global);
}

/** Reads units with their desired states, many per request. */
async function getUnitsRaw(ctx: RegistryCtx, names: readonly string[]): Promise<Map<string, RawUnit>> {
  const { client, keys: k } = ctx;
  const out = new Map<string, RawUnit>();
  const perTxn = Math.max(1, Math.floor(ctx.maxTxnOps / 2));
  const chunks: string[][] = [];
  for (let i = 0; i < names.length; i += perTxn) chunks.push(names.slice(i, i + perTxn));
  await inParallel(chunks, WRITE_CONCURRENCY, async (chunk) => {
    const res = await ctx.conn.call('read units', () => txn(client, chunk.flatMap((n) => [client.get(k.unit(n)), client.get(k.desired(n))])));
    chunk.forEach((name, i) => {
      const unitKv = res.responses[2 * i]?.response_range?.kvs[0];
      if (!unitKv) return;
      const desiredKv = res.responses[2 * i + 1]?.response_range?.kvs[0];
      const unit = tryDecode(ctx.log, decode.unit, unitKv.key.toString(), unitKv.value.toString());
      const desired = desiredKv ? tryDecode(ctx.log, decode.desired, desiredKv.key.toString(), desiredKv.value.toString()) : undefined;
      out.set(name, { unit, desiredState: desired?.state ?? 'inactive', modRevision: unitKv.mod_revision });
    });
  });
  return out;
}
