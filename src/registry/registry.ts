// Typed reads and writes of the registry: every operation the daemons and
// the CLI need, each in as few etcd requests as it can be done in.
import type { Etcd3, IOperation } from 'etcd3';
import type * as RPC from 'etcd3/lib/rpc.js';
import { silentLogger, type Logger } from '../log.js';
import { chunkBy, inParallel } from './batch.js';
import { connect, type Connection, type ConnectionOptions } from './connection.js';
import {
  DuplicateMachineError,
  RegistryConflictError,
  SchemaTooNewError,
  UnitExistsError,
  UnitNotFoundError,
} from './errors.js';
import { Keys, LAYOUT_VERSION, prefixEnd } from './keys.js';
import { grantLease, type RegistryLease } from './lease.js';
import { PlanCommitter, type PlanOp, type PlanResult } from './plan.js';
import {
  DecodeError,
  decode,
  encode,
  type DecisionRecord,
  type DesiredState,
  type EndpointRecord,
  type GlobalRecord,
  type LeaderRecord,
  type MachineRecord,
  type PendingRecord,
  type StateRecord,
  type UnitRecord,
} from './records.js';

export interface RegistryOptions extends ConnectionOptions {
  /** Key prefix, default /flotilla/. */
  prefix?: string | undefined;
  logger?: Logger | undefined;
  /** Most operations etcd accepts in one transaction (its --max-txn-ops, default 128). */
  maxTxnOps?: number | undefined;
}

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

/** Proof of leadership: decisions commit only while the leader key still has this create revision. */
export interface LeaderToken {
  readonly id: string;
  readonly createRevision: string;
  readonly lease: RegistryLease;
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
const CAS_ATTEMPTS = 8;
/** Requests of one batch operation in flight at once. */
const WRITE_CONCURRENCY = 8;

export class Registry {
  readonly keys: Keys;
  readonly log: Logger;
  private readonly maxTxnOps: number;
  private readonly plans: PlanCommitter;

  constructor(
    readonly conn: Connection,
    opts: { prefix?: string | undefined; logger?: Logger | undefined; maxTxnOps?: number | undefined } = {},
  ) {
    this.keys = new Keys(opts.prefix);
    this.log = opts.logger ?? silentLogger;
    this.maxTxnOps = opts.maxTxnOps ?? 128;
    this.plans = new PlanCommitter(conn, conn.client, this.keys, this.maxTxnOps);
  }

  static connect(opts: RegistryOptions): Registry {
    return new Registry(connect(opts), opts);
  }

  get client(): Etcd3 {
    return this.conn.client;
  }

  close(): void {
    this.conn.close();
  }

  // ---- schema ----------------------------------------------------------

  /** Writes the schema key at first start; refuses a layout newer than ours. */
  async ensureSchema(writtenBy: string): Promise<number> {
    const key = this.keys.schema;
    const value = encode({ layout: LAYOUT_VERSION, writtenBy });
    const res = await this.conn.call('write schema', () =>
      this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value)).else(this.client.get(key)).commit(),
    );
    if (res.succeeded) return LAYOUT_VERSION;
    const kv = res.responses[0]?.response_range?.kvs[0];
    const found = kv ? this.tryDecode(decode.schema, key, kv.value.toString())?.layout : undefined;
    if (found === undefined) return LAYOUT_VERSION;
    if (found > LAYOUT_VERSION) throw new SchemaTooNewError(found, LAYOUT_VERSION, this.keys.prefix);
    return found;
  }

  // ---- units -----------------------------------------------------------

  /**
   * Creates a unit, or with `replace` replaces its file keeping its desired
   * state. Submitting the same file again is 'unchanged', not an error.
   */
  async createUnit(unit: UnitRecord, opts: CreateOptions = {}): Promise<CreateResult> {
    const results = await this.createUnits([unit], opts);
    return results.get(unit.name) ?? 'unchanged';
  }

  /**
   * Creates (or replaces) many units in a few transactions. Every unit is
   * checked before anything is written: one refused unit refuses them all.
   */
  async createUnits(units: readonly UnitRecord[], opts: CreateOptions = {}): Promise<Map<string, CreateResult>> {
    const results = new Map<string, CreateResult>();
    let todo = [...new Map(units.map((u) => [u.name, u])).values()];
    // Most creates are of new units: when the batch fits one transaction,
    // first try it as all-new (one request), and read only if that fails.
    const optimistic = !opts.replace && todo.length * 3 <= this.maxTxnOps;
    for (let attempt = 0; attempt < CAS_ATTEMPTS && todo.length > 0; attempt++) {
      const existing = attempt === 0 && optimistic ? new Map<string, RawUnit>() : await this.getUnitsRaw(todo.map((u) => u.name));
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
          this.client.put(this.keys.unit(unit.name)).value(encode(unit)),
          this.client.put(this.keys.desired(unit.name)).value(encode({ state })),
        ];
        if (unit.global) {
          ops.push(this.client.put(this.keys.global(unit.name)).value(encode<GlobalRecord>({ name: unit.name, hash: unit.hash, state })));
        } else if (e?.unit?.global) {
          ops.push(this.client.delete().key(this.keys.global(unit.name)));
        }
        writes.push({ unit, ops, modRevision: e ? e.modRevision : 0 });
      }
      const failed = new Set<string>();
      // Chunks touch disjoint units, so they can be in flight together.
      await inParallel(chunkBy(writes, (w) => w.ops.length, this.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
        const first = chunk[0]!;
        const cmp = this.client.if(this.keys.unit(first.unit.name), 'Mod', '==', first.modRevision);
        for (const w of chunk.slice(1)) cmp.and(this.keys.unit(w.unit.name), 'Mod', '==', w.modRevision);
        const res = await this.conn.call('create units', () => cmp.then(...chunk.flatMap((w) => w.ops)).commit());
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

  async getUnit(name: string): Promise<UnitWithState | undefined> {
    const raw = await this.getUnitRaw(name);
    return raw?.unit ? { ...raw.unit, desiredState: raw.desiredState } : undefined;
  }

  /** The named units that exist, with their desired states, many per request. */
  async getUnits(names: readonly string[]): Promise<Map<string, UnitWithState>> {
    const out = new Map<string, UnitWithState>();
    for (const [name, raw] of await this.getUnitsRaw([...new Set(names)])) {
      if (raw.unit) out.set(name, { ...raw.unit, desiredState: raw.desiredState });
    }
    return out;
  }

  async listUnits(): Promise<UnitWithState[]> {
    // Both ranges at one revision, so a unit and its desired state agree.
    const units = await this.listPrefix(this.keys.unitsPrefix);
    const desired = await this.listPrefix(this.keys.desiredPrefix, units.revision);
    const states = new Map<string, DesiredState>();
    for (const kv of desired.items) {
      const d = this.tryDecode(decode.desired, kv.key, kv.value);
      if (d) states.set(kv.key.slice(this.keys.desiredPrefix.length), d.state);
    }
    const out: UnitWithState[] = [];
    for (const kv of units.items) {
      const u = this.tryDecode(decode.unit, kv.key, kv.value);
      if (u) out.push({ ...u, desiredState: states.get(u.name) ?? 'inactive' });
    }
    return out;
  }

  /**
   * Sets the desired state of units. Unknown units are refused before
   * anything is written; many units go in a few transactions. Only desired
   * states (and the global index) are read and written, never unit files.
   */
  async setDesiredState(names: readonly string[], state: DesiredState): Promise<void> {
    const unique = [...new Set(names)];
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      // A unit's desired key is created and deleted with it, so it proves the unit exists.
      const [current, globals] = await Promise.all([this.getDesiredRaw(unique), this.listGlobalUnits()]);
      const missing = unique.filter((n) => !current.has(n));
      if (missing.length > 0) throw new UnitNotFoundError(missing);
      const globalHash = new Map(globals.map((g) => [g.name, g.hash]));
      // Units already in that state need no write (and wake no watcher).
      const changing = unique.filter((n) => current.get(n)!.state !== state);
      let conflicted = false;
      // Each unit's compare and its writes stay in one transaction; chunks
      // touch disjoint units, so several are in flight together.
      const writes = changing.map((n) => {
        const ops: IOperation[] = [this.client.put(this.keys.desired(n)).value(encode({ state }))];
        const hash = globalHash.get(n);
        if (hash !== undefined) ops.push(this.client.put(this.keys.global(n)).value(encode<GlobalRecord>({ name: n, hash, state })));
        return { name: n, ops, modRevision: current.get(n)!.modRevision };
      });
      await inParallel(chunkBy(writes, (w) => w.ops.length, this.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
        const cmp = this.client.if(this.keys.desired(chunk[0]!.name), 'Mod', '==', chunk[0]!.modRevision);
        for (const w of chunk.slice(1)) cmp.and(this.keys.desired(w.name), 'Mod', '==', w.modRevision);
        const res = await this.conn.call('set desired state', () => cmp.then(...chunk.flatMap((w) => w.ops)).commit());
        if (!res.succeeded) conflicted = true;
      });
      if (!conflicted) return;
    }
    throw new RegistryConflictError(`units kept changing while their desired state was set; try again`);
  }

  /** Desired states with their mod revisions: per key for a few units, one listing for many. */
  private async getDesiredRaw(names: readonly string[]): Promise<Map<string, { state: DesiredState; modRevision: string }>> {
    const out = new Map<string, { state: DesiredState; modRevision: string }>();
    const put = (name: string, kv: RawKV): void => {
      const d = this.tryDecode(decode.desired, kv.key, kv.value);
      out.set(name, { state: d?.state ?? 'inactive', modRevision: kv.modRevision });
    };
    if (names.length > this.maxTxnOps) {
      const wanted = new Set(names);
      const page = await this.listPrefix(this.keys.desiredPrefix);
      for (const kv of page.items) {
        const name = kv.key.slice(this.keys.desiredPrefix.length);
        if (wanted.has(name)) put(name, kv);
      }
      return out;
    }
    const res = await this.conn.call('read desired states', () => this.txn(names.map((n) => this.client.get(this.keys.desired(n)))));
    names.forEach((name, i) => {
      const kv = res.responses[i]?.response_range?.kvs[0];
      if (kv) put(name, toRaw(kv));
    });
    return out;
  }

  /**
   * Destroys a unit: its file, desired state, global index entry, pending
   * reason and published states, in one transaction. The engine then removes
   * its decision (fenced) and the agent stops and unloads it.
   */
  async destroyUnit(name: string): Promise<void> {
    await this.destroyUnits([name]);
  }

  /**
   * Destroys many units as destroyUnit does each, in a few transactions
   * (each unit's keys stay in one) sent in parallel. Units that do not exist
   * are refused with UnitNotFoundError, after the others are destroyed.
   */
  async destroyUnits(names: readonly string[]): Promise<void> {
    const k = this.keys;
    const unique = [...new Set(names)];
    const opsOf = (name: string): IOperation[] => [
      this.client.delete().key(k.unit(name)),
      this.client.delete().key(k.desired(name)),
      this.client.delete().key(k.global(name)),
      this.client.delete().key(k.pending(name)),
      this.client.delete().prefix(k.statesOf(name)),
    ];
    const missing: string[] = [];
    const commit = async (chunk: readonly string[]): Promise<boolean> => {
      const cmp = this.client.if(k.unit(chunk[0]!), 'Create', '>', 0);
      for (const n of chunk.slice(1)) cmp.and(k.unit(n), 'Create', '>', 0);
      const what = chunk.length === 1 ? `destroy unit ${chunk[0]}` : `destroy ${chunk.length} units`;
      const res = await this.conn.call(what, () => cmp.then(...chunk.flatMap(opsOf)).commit());
      return res.succeeded;
    };
    await inParallel(chunkBy(unique, () => 5, this.maxTxnOps), WRITE_CONCURRENCY, async (chunk) => {
      if (await commit(chunk)) return;
      // One of them is gone already: each on its own, so the others still go.
      for (const n of chunk) if (chunk.length === 1 || !(await commit([n]))) missing.push(n);
    });
    if (missing.length > 0) throw new UnitNotFoundError(unique.filter((n) => missing.includes(n)));
  }

  // ---- machines --------------------------------------------------------

  /**
   * Registers this machine's presence under its lease. Refuses an ID held by
   * another live host; takes over a record left by this same host's earlier
   * run (same host name and boot ID) in one transaction that swaps the
   * record onto the new lease, so no revision shows the machine absent (a
   * gap in which the engine would move every unit). The old lease is left to
   * expire, not revoked: the states still bound to it stay until the agent
   * republishes them under the new lease. Proven by registry.test.ts "takes
   * over presence ... in one transaction".
   */
  async registerMachine(record: MachineRecord, lease: RegistryLease): Promise<void> {
    const key = this.keys.machine(record.id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const res = await this.conn.call(`register machine ${record.id}`, () =>
        this.client
          .if(key, 'Create', '==', 0)
          .then(this.client.put(key).value(encode(record)).lease(lease.id))
          .else(this.client.get(key))
          .commit(),
      );
      if (res.succeeded) return;
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (!kv) continue;
      if (kv.lease === lease.id) return; // already ours
      const other = this.tryDecode(decode.machine, key, kv.value.toString());
      const sameHost = other && other.bootId === record.bootId && other.hostname === record.hostname;
      if (!sameHost) throw new DuplicateMachineError(record.id, other ?? { publicIp: '', hostname: '' });
      this.log.info('taking over presence left by an earlier run of this machine', { machine: record.id });
      const swapped = await this.conn.call(`take over machine ${record.id}`, () =>
        this.client
          .if(key, 'Mod', '==', kv.mod_revision)
          .then(this.client.put(key).value(encode(record)).lease(lease.id))
          .commit(),
      );
      if (swapped.succeeded) return;
    }
    throw new RegistryConflictError(`machine ${record.id} presence kept changing; try again`);
  }

  /** Updates this machine's presence record (e.g. metadata after SIGHUP), keeping its lease. */
  async updateMachine(record: MachineRecord, lease: RegistryLease): Promise<void> {
    const key = this.keys.machine(record.id);
    const res = await this.conn.call(`update machine ${record.id}`, () =>
      this.client.if(key, 'Lease', '==', lease.id).then(this.client.put(key).value(encode(record)).lease(lease.id)).commit(),
    );
    if (!res.succeeded) throw new DuplicateMachineError(record.id, { publicIp: '', hostname: '' });
  }

  /** Removes this machine's presence (its lease's other keys stay until revoked). */
  async withdrawMachine(id: string, lease: RegistryLease): Promise<void> {
    const key = this.keys.machine(id);
    await this.conn.call(`withdraw machine ${id}`, () =>
      this.client.if(key, 'Lease', '==', lease.id).then(this.client.delete().key(key)).commit(),
    );
  }

  async listMachines(): Promise<MachineRecord[]> {
    const page = await this.listPrefix(this.keys.machinesPrefix);
    return this.decodeAll(page.items, decode.machine);
  }

  /** Sets dynamic metadata of a machine; it outlives the machine's lease. */
  async setMetadata(machine: string, key: string, value: string): Promise<void> {
    await this.conn.call('set metadata', () => this.client.put(this.keys.metadata(machine, key)).value(encode({ value })));
  }

  async deleteMetadata(machine: string, key: string): Promise<void> {
    await this.conn.call('delete metadata', () => this.client.delete().key(this.keys.metadata(machine, key)));
  }

  /** Marks a machine drained (the engine moves its units away and places none there) or clears the mark. */
  async setDraining(machine: string, draining: boolean): Promise<void> {
    const key = this.keys.drain(machine);
    if (draining) await this.conn.call('drain machine', () => this.client.put(key).value(encode({ since: new Date().toISOString() })));
    else await this.conn.call('undrain machine', () => this.client.delete().key(key));
  }

  /** IDs of the machines marked drained (present or not). */
  async listDraining(): Promise<string[]> {
    const page = await this.listPrefix(this.keys.drainPrefix);
    return page.items.filter((kv) => this.tryDecode(decode.drain, kv.key, kv.value)).map((kv) => kv.key.slice(this.keys.drainPrefix.length));
  }

  /** Dynamic metadata of every machine: machine -> key -> value. */
  async listMetadata(): Promise<Map<string, Record<string, string>>> {
    const page = await this.listPrefix(this.keys.metadataPrefix);
    const out = new Map<string, Record<string, string>>();
    for (const kv of page.items) {
      const pair = Keys.splitPair(kv.key.slice(this.keys.metadataPrefix.length));
      const rec = this.tryDecode(decode.metadata, kv.key, kv.value);
      if (!pair || !rec) continue;
      const m = out.get(pair[0]) ?? {};
      m[pair[1]] = rec.value;
      out.set(pair[0], m);
    }
    return out;
  }

  // ---- leadership ------------------------------------------------------

  /** Takes the leader key if it is free. Returns the token, or undefined when someone else leads. */
  async tryLead(id: string, lease: RegistryLease): Promise<LeaderToken | undefined> {
    const key = this.keys.leader;
    const record: LeaderRecord = { id, since: new Date().toISOString() };
    const res = await this.conn.call('campaign for engine leadership', () =>
      this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(encode(record)).lease(lease.id), this.client.get(key))
        .else(this.client.get(key))
        .commit(),
    );
    const kv = res.responses[res.succeeded ? 1 : 0]?.response_range?.kvs[0];
    if (!kv) return undefined;
    if (kv.lease !== lease.id) return undefined;
    return { id, createRevision: kv.create_revision, lease };
  }

  /** Gives up leadership if the token still holds it. */
  async resign(token: LeaderToken): Promise<void> {
    const key = this.keys.leader;
    await this.conn.call('resign engine leadership', () =>
      this.client.if(key, 'Create', '==', token.createRevision).then(this.client.delete().key(key)).commit(),
    );
  }

  async getLeader(): Promise<(LeaderRecord & { createRevision: string }) | undefined> {
    const kv = await this.getRaw(this.keys.leader);
    if (!kv) return undefined;
    const rec = this.tryDecode(decode.leader, kv.key, kv.value);
    return rec ? { ...rec, createRevision: kv.createRevision } : undefined;
  }

  /** Commits a plan; see PlanCommitter.apply (plan.ts) for what is compared and in which order. */
  applyPlan(token: LeaderToken, plan: readonly PlanOp[]): Promise<PlanResult> {
    return this.plans.apply(token, plan);
  }

  /** Makes placement keys agree with the decisions (older data, hand edits); see PlanCommitter.repair. */
  async repairPlacements(token: LeaderToken): Promise<number> {
    const schedule = await this.listPrefix(this.keys.schedulePrefix);
    const placements = await this.listPrefix(this.keys.placementPrefix, schedule.revision);
    return this.plans.repair(token, schedule.items, placements.items);
  }

  async listDecisions(machine?: string): Promise<DecisionRecord[]> {
    const page = await this.listPrefix(machine ? this.keys.scheduleOf(machine) : this.keys.schedulePrefix);
    return this.decodeAll(page.items, decode.decision);
  }

  async listPending(): Promise<PendingRecord[]> {
    const page = await this.listPrefix(this.keys.pendingPrefix);
    return this.decodeAll(page.items, decode.pending);
  }

  // ---- states ----------------------------------------------------------

  /** Publishes what systemd says about units on this machine, bound to the agent's lease. */
  async publishStates(states: readonly StateRecord[], lease: RegistryLease): Promise<void> {
    await this.publishStatesUnder(states.map((state) => ({ state, leaseId: lease.id })));
  }

  /** Publishes states each under its own lease, many per transaction. */
  async publishStatesUnder(entries: readonly { state: StateRecord; leaseId: string }[]): Promise<void> {
    const chunks: (typeof entries)[] = [];
    for (let i = 0; i < entries.length; i += this.maxTxnOps) chunks.push(entries.slice(i, i + this.maxTxnOps));
    await inParallel(chunks, WRITE_CONCURRENCY, async (chunk) => {
      const ops = chunk.map(({ state: s, leaseId }) => this.client.put(this.keys.state(s.unit, s.machine)).value(encode(s)).lease(leaseId));
      await this.conn.call('publish states', () => this.txn(ops));
    });
  }

  async deleteStates(entries: readonly { unit: string; machine: string }[]): Promise<void> {
    for (let i = 0; i < entries.length; i += this.maxTxnOps) {
      const ops = entries.slice(i, i + this.maxTxnOps).map((e) => this.client.delete().key(this.keys.state(e.unit, e.machine)));
      await this.conn.call('delete states', () => this.txn(ops));
    }
  }

  async listStates(unit?: string): Promise<StateRecord[]> {
    const page = await this.listPrefix(unit ? this.keys.statesOf(unit) : this.keys.statesPrefix);
    return this.decodeAll(page.items, decode.state);
  }

  // ---- global units (agents) ---------------------------------------------

  async listGlobalUnits(): Promise<GlobalRecord[]> {
    const page = await this.listPrefix(this.keys.globalPrefix);
    return this.decodeAll(page.items, decode.global);
  }

  // ---- services --------------------------------------------------------

  /** Announces an endpoint for discovery, bound to the given lease. */
  async announce(endpoint: EndpointRecord, lease: RegistryLease): Promise<void> {
    await this.conn.call(`announce ${endpoint.service}`, () =>
      this.client.put(this.keys.endpoint(endpoint.service, endpoint.instance)).value(encode(endpoint)).lease(lease.id),
    );
  }

  async withdrawEndpoint(service: string, instance: string): Promise<void> {
    await this.conn.call(`withdraw ${service}`, () => this.client.delete().key(this.keys.endpoint(service, instance)));
  }

  async listEndpoints(service?: string): Promise<EndpointRecord[]> {
    const page = await this.listPrefix(service ? this.keys.servicesOf(service) : this.keys.servicesPrefix);
    return this.decodeAll(page.items, decode.endpoint);
  }

  // ---- leases ----------------------------------------------------------

  grantLease(ttlSeconds: number): Promise<RegistryLease> {
    return grantLease(this.conn, ttlSeconds);
  }

  // ---- raw reads shared by the above and by the informer -------------------

  async getRaw(key: string): Promise<RawKV | undefined> {
    const res = await this.conn.call(`read ${key}`, () =>
      this.client.kv.range({ key: Buffer.from(key) }, undefined),
    );
    const kv = res.kvs[0];
    return kv ? toRaw(kv) : undefined;
  }

  /**
   * Reads every key under prefix, page by page at one revision, so a large
   * listing stays within etcd's request limits and is still consistent.
   */
  async listPrefix(prefix: string, atRevision?: string): Promise<Paged<RawKV>> {
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
        res = await this.conn.call(`list ${prefix}`, () => this.client.kv.range(req));
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

  private async getUnitRaw(name: string): Promise<RawUnit | undefined> {
    return (await this.getUnitsRaw([name])).get(name);
  }

  /** Reads units with their desired states, many per request. */
  private async getUnitsRaw(names: readonly string[]): Promise<Map<string, RawUnit>> {
    const k = this.keys;
    const out = new Map<string, RawUnit>();
    const perTxn = Math.max(1, Math.floor(this.maxTxnOps / 2));
    const chunks: string[][] = [];
    for (let i = 0; i < names.length; i += perTxn) chunks.push(names.slice(i, i + perTxn));
    await inParallel(chunks, WRITE_CONCURRENCY, async (chunk) => {
        const res = await this.conn.call('read units', () =>
          this.txn(chunk.flatMap((n) => [this.client.get(k.unit(n)), this.client.get(k.desired(n))])),
        );
        chunk.forEach((name, i) => {
          const unitKv = res.responses[2 * i]?.response_range?.kvs[0];
          if (!unitKv) return;
          const desiredKv = res.responses[2 * i + 1]?.response_range?.kvs[0];
          const unit = this.tryDecode(decode.unit, unitKv.key.toString(), unitKv.value.toString());
          const desired = desiredKv ? this.tryDecode(decode.desired, desiredKv.key.toString(), desiredKv.value.toString()) : undefined;
          out.set(name, { unit, desiredState: desired?.state ?? 'inactive', modRevision: unitKv.mod_revision });
        });
    });
    return out;
  }

  /** One unconditional transaction: several operations in one request, applied atomically. */
  private async txn(ops: readonly IOperation[]): Promise<RPC.ITxnResponse> {
    const success = await Promise.all(ops.map((o) => o.op()));
    return this.client.kv.txn({ compare: [], success, failure: [] });
  }

  private decodeAll<T>(items: readonly RawKV[], decoder: (raw: string) => T): T[] {
    const out: T[] = [];
    for (const kv of items) {
      const v = this.tryDecode(decoder, kv.key, kv.value);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  /** Decodes a value; a corrupt or foreign one is logged and skipped, never thrown. */
  tryDecode<T>(decoder: (raw: string) => T, key: string, raw: string): T | undefined {
    try {
      return decoder(raw);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.log.warn('skipping unreadable value in the registry', { key, error: err.message });
      return undefined;
    }
  }
}

function toRaw(kv: RPC.IKeyValue): RawKV {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: kv.mod_revision,
    createRevision: kv.create_revision,
    lease: kv.lease,
  };
}
