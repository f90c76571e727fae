// The schedule key space and what guards it: engine leadership (`leader`),
// the engine's decisions (`schedule/<machine>/<unit>`, committed by plan.ts
// with their `placement/<unit>` keys) and pending reasons (`pending/<unit>`).
import { getRaw, listDecoded, listPrefix, tryDecode, type RegistryCtx } from './kv.js';
import type { RegistryLease } from './lease.js';
import type { PlanCommitter } from './plan.js';
import { decode, encode, type DecisionRecord, type LeaderRecord, type PendingRecord } from './records.js';

/** Proof of leadership: decisions commit only while the leader key still has this create revision. */
export interface LeaderToken {
  readonly id: string;
  readonly createRevision: string;
  readonly lease: RegistryLease;
}

/** Takes the leader key if it is free. Returns the token, or undefined when someone else leads. */
export async function tryLead(ctx: RegistryCtx, id: string, lease: RegistryLease): Promise<LeaderToken | undefined> {
  const { client } = ctx;
  const key = ctx.keys.leader;
  const record: LeaderRecord = { id, since: new Date().toISOString() };
  const res = await ctx.conn.call('campaign for engine leadership', () =>
    client
      .if(key, 'Create', '==', 0)
      .then(client.put(key).value(encode(record)).lease(lease.id), client.get(key))
      .else(client.get(key))
      .commit(),
  );
  const kv = res.responses[res.succeeded ? 1 : 0]?.response_range?.kvs[0];
  if (!kv) return undefined;
  if (kv.lease !== lease.id) return undefined;
  return { id, createRevision: kv.create_revision, lease };
}

/** Gives up leadership if the token still holds it. */
export async function resign(ctx: RegistryCtx, token: LeaderToken): Promise<void> {
  const { client } = ctx;
  const key = ctx.keys.leader;
  await ctx.conn.call('resign engine leadership', () =>
    client.if(key, 'Create', '==', token.createRevision).then(client.delete().key(key)).commit(),
  );
}

export async function getLeader(ctx: RegistryCtx): Promise<(LeaderRecord & { createRevision: string }) | undefined> {
  const kv = await getRaw(ctx, ctx.keys.leader);
  if (!kv) return undefined;
  const rec = tryDecode(ctx.log, decode.leader, kv.key, kv.value);
  return rec ? { ...rec, createRevision: kv.createRevision } : undefined;
}

/** Makes placement keys agree with the decisions (older data, hand edits); see PlanCommitter.repair. */
export async function repairPlacements(ctx: RegistryCtx, plans: PlanCommitter, token: LeaderToken): Promise<number> {
  const schedule = await listPrefix(ctx, ctx.keys.schedulePrefix);
  const placements = await listPrefix(ctx, ctx.keys.placementPrefix, schedule.revision);
  return plans.repair(token, schedule.items, placements.items);
}

export async function listDecisions(ctx: RegistryCtx, machine?: string): Promise<DecisionRecord[]> {
  return await listDecoded(ctx, machine ? ctx.keys.scheduleOf(machine) : ctx.keys.schedulePrefix, decode.decision);
}

export async function listPending(ctx: RegistryCtx): Promise<PendingRecord[]> {
  return await listDecoded(ctx, ctx.keys.pendingPrefix, decode.pending);
}
