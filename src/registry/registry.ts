// Typed reads and writes of the registry: every operation the daemons and
// the CLI need, each in as few etcd requests as it can be done in. The
// bodies live with their key space (units.ts, machines.ts, schedule.ts,
// states.ts, plan.ts); shared transaction and paging helpers are in kv.ts.
import type { Etcd3 } from 'etcd3';
import { silentLogger, type Logger } from '../log.js';
import { connect, type Connection, type ConnectionOptions } from './connection.js';
import { SchemaTooNewError } from './errors.js';
import { Keys, LAYOUT_VERSION } from './keys.js';
import * as kv from './kv.js';
import type { Paged, RawKV, RegistryCtx } from './kv.js';
import { grantLease, type RegistryLease } from './lease.js';
import * as machines from './machines.js';
import { PlanCommitter, type PlanOp, type PlanResult } from './plan.js';
import {
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
import * as schedule from './schedule.js';
import type { LeaderToken } from './schedule.js';
import * as states from './states.js';
import * as units from './units.js';
import type { CreateOptions, CreateResult, UnitWithState } from './units.js';

export type { Paged, RawKV } from './kv.js';
export type { LeaderToken } from './schedule.js';
export type { CreateOptions, CreateResult, UnitWithState } from './units.js';

export interface RegistryOptions extends ConnectionOptions {
  /** Key prefix, default /flotilla/. */
  prefix?: string | undefined;
  logger?: Logger | undefined;
  /** Most operations etcd accepts in one transaction (its --max-txn-ops, default 128). */
  maxTxnOps?: number | undefined;
}

export class Registry {
  readonly keys: Keys;
  readonly log: Logger;
  private readonly maxTxnOps: number;
  private readonly plans: PlanCommitter;
  /** What the key-space modules work with. */
  private readonly ctx: RegistryCtx;

  constructor(
    readonly conn: Connection,
    opts: { prefix?: string | undefined; logger?: Logger | undefined; maxTxnOps?: number | undefined } = {},
  ) {
    this.keys = new Keys(opts.prefix);
    this.log = opts.logger ?? silentLogger;
    this.maxTxnOps = opts.maxTxnOps ?? 128;
    this.plans = new PlanCommitter(conn, conn.client, this.keys, this.maxTxnOps);
    const { keys, log, maxTxnOps } = this;
    this.ctx = {
      conn,
      get client(): Etcd3 {
        return conn.client;
      },
      keys,
      log,
      maxTxnOps,
    };
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

  // ---- units (units.ts) ----------------------------------------------------

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
  createUnits(list: readonly UnitRecord[], opts: CreateOptions = {}): Promise<Map<string, CreateResult>> {
    return units.createUnits(this.ctx, list, opts);
  }

  async getUnit(name: string): Promise<UnitWithState | undefined> {
    return (await units.getUnits(this.ctx, [name])).get(name);
  }

  /** The named units that exist, with their desired states, many per request. */
  getUnits(names: readonly string[]): Promise<Map<string, UnitWithState>> {
    return units.getUnits(this.ctx, names);
  }

  listUnits(): Promise<UnitWithState[]> {
    return units.listUnits(this.ctx);
  }

  /**
   * Sets the desired state of units. Unknown units are refused before
   * anything is written; many units go in a few transactions. Only desired
   * states (and the global index) are read and written, never unit files.
   */
  setDesiredState(names: readonly string[], state: DesiredState): Promise<void> {
    return units.setDesiredState(this.ctx, names, state);
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
  destroyUnits(names: readonly string[]): Promise<void> {
    return units.destroyUnits(this.ctx, names);
  }

  listGlobalUnits(): Promise<GlobalRecord[]> {
    return units.listGlobalUnits(this.ctx);
  }

  // ---- machines (machines.ts) ------------------------------------------------

  /** Registers this machine's presence under its lease; see machines.registerMachine for takeover. */
  registerMachine(record: MachineRecord, lease: RegistryLease): Promise<void> {
    return machines.registerMachine(this.ctx, record, lease);
  }

  /** Updates this machine's presence record (e.g. metadata after SIGHUP), keeping its lease. */
  updateMachine(record: MachineRecord, lease: RegistryLease): Promise<void> {
    return machines.updateMachine(this.ctx, record, lease);
  }

  /** Removes this machine's presence (its lease's other keys stay until revoked). */
  withdrawMachine(id: string, lease: RegistryLease): Promise<void> {
    return machines.withdrawMachine(this.ctx, id, lease);
  }

  listMachines(): Promise<MachineRecord[]> {
    return machines.listMachines(this.ctx);
  }

  /** Sets dynamic metadata of a machine; it outlives the machine's lease. */
  setMetadata(machine: string, key: string, value: string): Promise<void> {
    return machines.setMetadata(this.ctx, machine, key, value);
  }

  deleteMetadata(machine: string, key: string): Promise<void> {
    return machines.deleteMetadata(this.ctx, machine, key);
  }

  /** Marks a machine drained (the engine moves its units away and places none there) or clears the mark. */
  setDraining(machine: string, draining: boolean): Promise<void> {
    return machines.setDraining(this.ctx, machine, draining);
  }

  /** IDs of the machines marked drained (present or not). */
  listDraining(): Promise<string[]> {
    return machines.listDraining(this.ctx);
  }

  /** Dynamic metadata of every machine: machine -> key -> value. */
  listMetadata(): Promise<Map<string, Record<string, string>>> {
    return machines.listMetadata(this.ctx);
  }

  // ---- leadership and schedule (schedule.ts, plan.ts) ----------------------

  /** Takes the leader key if it is free. Returns the token, or undefined when someone else leads. */
  tryLead(id: string, lease: RegistryLease): Promise<LeaderToken | undefined> {
    return schedule.tryLead(this.ctx, id, lease);
  }

  /** Gives up leadership if the token still holds it. */
  resign(token: LeaderToken): Promise<void> {
    return schedule.resign(this.ctx, token);
  }

  getLeader(): Promise<(LeaderRecord & { createRevision: string }) | undefined> {
    return schedule.getLeader(this.ctx);
  }

  /** Commits a plan; see PlanCommitter.apply (plan.ts) for what is compared and in which order. */
  applyPlan(token: LeaderToken, plan: readonly PlanOp[]): Promise<PlanResult> {
    return this.plans.apply(token, plan);
  }

  /** Makes placement keys agree with the decisions (older data, hand edits); see PlanCommitter.repair. */
  repairPlacements(token: LeaderToken): Promise<number> {
    return schedule.repairPlacements(this.ctx, this.plans, token);
  }

  listDecisions(machine?: string): Promise<DecisionRecord[]> {
    return schedule.listDecisions(this.ctx, machine);
  }

  listPending(): Promise<PendingRecord[]> {
    return schedule.listPending(this.ctx);
  }

  // ---- states and services (states.ts) ---------------------------------------

  /** Publishes what systemd says about units on this machine, bound to the agent's lease. */
  async publishStates(list: readonly StateRecord[], lease: RegistryLease): Promise<void> {
    await this.publishStatesUnder(list.map((state) => ({ state, leaseId: lease.id })));
  }

  /** Publishes states each under its own lease, many per transaction. */
  publishStatesUnder(entries: readonly { state: StateRecord; leaseId: string }[]): Promise<void> {
    return states.publishStatesUnder(this.ctx, entries);
  }

  deleteStates(entries: readonly { unit: string; machine: string }[]): Promise<void> {
    return states.deleteStates(this.ctx, entries);
  }

  listStates(unit?: string): Promise<StateRecord[]> {
    return states.listStates(this.ctx, unit);
  }

  /** Announces an endpoint for discovery, bound to the given lease. */
  announce(endpoint: EndpointRecord, lease: RegistryLease): Promise<void> {
    return states.announce(this.ctx, endpoint, lease);
  }

  withdrawEndpoint(service: string, instance: string): Promise<void> {
    return states.withdrawEndpoint(this.ctx, service, instance);
  }

  listEndpoints(service?: string): Promise<EndpointRecord[]> {
    return states.listEndpoints(this.ctx, service);
  }

  // ---- leases ----------------------------------------------------------

  grantLease(ttlSeconds: number): Promise<RegistryLease> {
    return grantLease(this.conn, ttlSeconds);
  }

  // ---- raw reads shared by the above and by the informer (kv.ts) -----------

  getRaw(key: string): Promise<RawKV | undefined> {
    return kv.getRaw(this.ctx, key);
  }

  /**
   * Reads every key under prefix, page by page at one revision, so a large
   * listing stays within etcd's request limits and is still consistent.
   */
  listPrefix(prefix: string, atRevision?: string): Promise<Paged<RawKV>> {
    return kv.listPrefix(this.ctx, prefix, atRevision);
  }

  /** Decodes a value; a corrupt or foreign one is logged and skipped, never thrown. */
  tryDecode<T>(decoder: (raw: string) => T, key: string, raw: string): T | undefined {
    return kv.tryDecode(this.log, decoder, key, raw);
  }
}
