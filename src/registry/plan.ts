// Committing the engine's plans. The rule "a non-global unit is decided onto
// at most one machine" is held by etcd, not by the engine's caches: every
// unit has a placement key naming its machine, written in the same
// transaction as its decision, and every change to a unit's decision
// compares that key with what the plan assumed. A plan made from a stale
// cache is refused whole (per transaction) instead of landing.
import type { Etcd3, IOperation } from 'etcd3';
import { chunkBy, inParallel } from './batch.js';
import type { Connection } from './connection.js';
import { NotLeaderError } from './errors.js';
import { Keys } from './keys.js';
import { encode, type DecisionRecord, type PendingRecord } from './records.js';
import type { RawKV } from './kv.js';
import type { LeaderToken } from './schedule.js';


/**
 * One change in a plan the engine commits.
 *
 * `place` decides `decision.unit` onto `decision.machine`; `from` is the
 * machine the plan believes the unit is decided onto now (undefined: none).
 * `from` equal to the new machine rewrites the decision in place; another
 * machine makes it a move, whose removal and addition are one transaction.
 * `unplace` removes the unit's decision on `machine`, which the plan
 * believes is its only one. Both commit only if the unit's placement key
 * still says `from`/`machine`. `unplace` with `stray` removes an extra
 * decision that is not the unit's placement (left by hand edits): removing
 * one can never break the rule, so it compares nothing.
 */
export type PlanOp =
  | { type: 'place'; decision: DecisionRecord; from?: string | undefined }
  | { type: 'unplace'; machine: string; unit: string; stray?: boolean | undefined }
  | { type: 'pending'; record: PendingRecord }
  | { type: 'clear-pending'; unit: string };

export interface PlanResult {
  /** Transactions used. */
  txns: number;
  /** Highest revision seen: of the last commit, or of a refusal (0 for an empty plan). */
  revision: number;
  /** The revision at which each op of the plan was committed, in plan order (0: not committed). */
  opRevisions: number[];
  /**
   * Transactions refused because a unit's decision was not what the plan
   * assumed. Their ops (and, after a refused removal, every later addition)
   * were not written; the caller re-plans from fresher state.
   */
  stale: number;
}

/** Plan transactions in flight at once (etcd shares one fsync among concurrent ones). */
const PLAN_CONCURRENCY = 8;

/** The placement key's value for a unit on a machine: one canonical byte string, so it can be compared by value. */
export function placementValue(unit: string, machine: string): string {
  return encode({ unit, machine });
}

interface Step {
  index: number;
  compares: [key: string, column: 'Value' | 'Create' | 'Mod', value: string | number][];
  ops: IOperation[];
}

export class PlanCommitter {
  constructor(
    private readonly conn: Connection,
    private readonly client: Etcd3,
    private readonly keys: Keys,
    private readonly maxTxnOps: number,
  ) {}

  /**
   * Commits a plan in as few transactions as etcd allows, each fenced on
   * the leader key and on the placement of every unit it changes. Removals
   * commit first, then moves, then new decisions and rewrites: a unit being
   * replaced leaves its machine before its replacement arrives there.
   * Within a phase, transactions touch disjoint units and go in parallel.
   * Once another engine leads, nothing more commits and NotLeaderError is
   * thrown; a refused removal or move stops the later phases.
   */
  async apply(token: LeaderToken, plan: readonly PlanOp[]): Promise<PlanResult> {
    const opRevisions = new Array<number>(plan.length).fill(0);
    const result: PlanResult = { txns: 0, revision: 0, opRevisions, stale: 0 };
    let deposed = false;
    const phases: Step[][] = [[], [], []];
    plan.forEach((op, index) => {
      const removes = op.type === 'unplace' || op.type === 'clear-pending';
      const moves = op.type === 'place' && op.from !== undefined && op.from !== op.decision.machine;
      phases[removes ? 0 : moves ? 1 : 2]!.push(this.step(op, index));
    });
    for (const steps of phases) {
      // The leader compare is one of etcd's limit on compares; ops and compares are limited separately.
      const weight = (s: Step): number => Math.max(s.ops.length, s.compares.length);
      await inParallel(chunkBy(steps, weight, this.maxTxnOps - 1), PLAN_CONCURRENCY, async (chunk) => {
        if (deposed) return;
        const { outcome, rev } = await this.commit('apply plan', token, chunk);
        result.txns++;
        result.revision = Math.max(result.revision, rev);
        if (outcome === 'deposed') deposed = true;
        else if (outcome === 'stale') result.stale++;
        else for (const s of chunk) opRevisions[s.index] = rev;
      });
      if (deposed) throw new NotLeaderError(`engine ${token.id} is no longer the leader; the rest of its plan was not written`);
      if (result.stale > 0) break;
    }
    return result;
  }

  private step(op: PlanOp, index: number): Step {
    const k = this.keys;
    const c = this.client;
    switch (op.type) {
      case 'place': {
        const { unit, machine } = op.decision;
        const placement = k.placement(unit);
        const step: Step = { index, compares: [], ops: [c.put(k.decision(machine, unit)).value(encode(op.decision))] };
        if (op.from === undefined) step.compares.push([placement, 'Create', 0]);
        else step.compares.push([placement, 'Value', placementValue(unit, op.from)]);
        if (op.from !== machine) {
          step.ops.push(c.put(placement).value(placementValue(unit, machine)));
          if (op.from !== undefined) step.ops.push(c.delete().key(k.decision(op.from, unit)));
        }
        return step;
      }
      case 'unplace': {
        const step: Step = { index, compares: [], ops: [c.delete().key(k.decision(op.machine, op.unit))] };
        if (!op.stray) {
          step.compares.push([k.placement(op.unit), 'Value', placementValue(op.unit, op.machine)]);
          step.ops.push(c.delete().key(k.placement(op.unit)));
        }
        return step;
      }
      case 'pending':
        return { index, compares: [], ops: [c.put(k.pending(op.record.unit)).value(encode(op.record))] };
      case 'clear-pending':
        return { index, compares: [], ops: [c.delete().key(k.pending(op.unit))] };
    }
  }

  /**
   * Makes placement keys agree with the decisions, for data written before
   * placement keys existed (or edited by hand): a unit with decisions and no
   * placement (or one naming none of them) gets the first by machine id; a
   * placement with no decision goes. Each repair is compared against what
   * was read, so one that raced a plan is simply not written. Returns how
   * many were written.
   */
  async repair(token: LeaderToken, schedule: readonly RawKV[], placements: readonly RawKV[]): Promise<number> {
    const k = this.keys;
    const decided = new Map<string, RawKV[]>();
    for (const kv of schedule) {
      const pair = Keys.splitPair(kv.key.slice(k.schedulePrefix.length));
      if (pair) decided.set(pair[1], [...(decided.get(pair[1]) ?? []), kv]);
    }
    const placed = new Map(placements.map((kv) => [kv.key.slice(k.placementPrefix.length), kv]));
    const steps: Step[] = [];
    const machineOf = (kv: RawKV): string => (Keys.splitPair(kv.key.slice(k.schedulePrefix.length)) as [string, string])[0];
    for (const [unit, kvs] of decided) {
      const p = placed.get(unit);
      if (p && kvs.some((kv) => p.value === placementValue(unit, machineOf(kv)))) continue;
      const first = kvs.reduce((a, b) => (machineOf(b) < machineOf(a) ? b : a));
      steps.push({
        index: steps.length,
        compares: [
          p ? [p.key, 'Mod', p.modRevision] : [k.placement(unit), 'Create', 0],
          [first.key, 'Mod', first.modRevision],
        ],
        ops: [this.client.put(k.placement(unit)).value(placementValue(unit, machineOf(first)))],
      });
    }
    for (const [unit, p] of placed) {
      if (decided.has(unit)) continue;
      steps.push({ index: steps.length, compares: [[p.key, 'Mod', p.modRevision]], ops: [this.client.delete().key(p.key)] });
    }
    let written = 0;
    // Two compares per step: chunks by compares, not ops.
    await inParallel(chunkBy(steps, (s) => s.compares.length, this.maxTxnOps - 1), PLAN_CONCURRENCY, async (chunk) => {
      const { outcome } = await this.commit('repair placements', token, chunk);
      if (outcome === 'deposed') throw new NotLeaderError(`engine ${token.id} is no longer the leader`);
      if (outcome === 'ok') written += chunk.length;
    });
    return written;
  }

  /** One fenced transaction of steps: committed, refused by a unit's compare (stale), or refused by the fence. */
  private async commit(
    label: string,
    token: LeaderToken,
    chunk: readonly Step[],
  ): Promise<{ outcome: 'ok' | 'stale' | 'deposed'; rev: number }> {
    const res = await this.conn.call(label, () => {
      let txn = this.client.if(this.keys.leader, 'Create', '==', token.createRevision);
      for (const s of chunk) for (const [key, column, value] of s.compares) txn = txn.and(key, column, '==', value);
      return txn
        .then(...chunk.flatMap((s) => s.ops))
        .else(this.client.get(this.keys.leader))
        .commit();
    });
    const rev = Number(res.header.revision);
    if (res.succeeded) return { outcome: 'ok', rev };
    const leader = res.responses[0]?.response_range?.kvs[0];
    return { outcome: leader?.create_revision === token.createRevision ? 'stale' : 'deposed', rev };
  }
}
