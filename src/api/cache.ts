// What the API reads from: informers over the registry's prefixes, so a GET
// is answered from memory and never costs an etcd request. Writes go
// through the Registry; a writer then waits until its change is back in the
// cache (read your writes) before it answers.
import { deleteByUnit, setByUnit } from '../registry/by-unit.js';
import {
  Informer,
  decode,
  type DecisionRecord,
  type DesiredRecord,
  type LeaderRecord,
  type MachineRecord,
  type MetadataRecord,
  type PendingRecord,
  type Registry,
  type StateRecord,
  type UnitRecord,
} from '../registry/index.js';
import { silentLogger, type Logger } from '../log.js';

export interface ApiCacheOptions {
  registry: Registry;
  logger?: Logger | undefined;
}

export class ApiCache {
  readonly units: Informer<UnitRecord>;
  readonly desired: Informer<DesiredRecord>;
  readonly machines: Informer<MachineRecord>;
  readonly metadata: Informer<MetadataRecord>;
  readonly schedule: Informer<DecisionRecord>;
  readonly states: Informer<StateRecord>;
  readonly pending: Informer<PendingRecord>;
  readonly engine: Informer<LeaderRecord>;
  /** unit -> machine -> decision (schedule is keyed machine/unit). */
  private readonly decisionsByUnit = new Map<string, Map<string, DecisionRecord>>();
  /** unit -> machine -> state (the states prefix is keyed unit/machine already, kept as a map for lookups). */
  private readonly statesByUnit = new Map<string, Map<string, StateRecord>>();
  private sortedNames: string[] | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(kind: string, events: readonly { type: 'put' | 'delete'; name: string }[]) => void>();

  constructor(opts: ApiCacheOptions) {
    const r = opts.registry;
    const k = r.keys;
    const log = (opts.logger ?? silentLogger).child('cache');
    const mk = <T>(prefix: string, d: (raw: string) => T): Informer<T> => new Informer(r, prefix, d, { logger: log });
    this.units = mk(k.unitsPrefix, decode.unit);
    this.desired = mk(k.desiredPrefix, decode.desired);
    this.machines = mk(k.machinesPrefix, decode.machine);
    this.metadata = mk(k.metadataPrefix, decode.metadata);
    this.schedule = mk(k.schedulePrefix, decode.decision);
    this.states = mk(k.statesPrefix, decode.state);
    this.pending = mk(k.pendingPrefix, decode.pending);
    this.engine = mk(k.enginePrefix, decode.leader);
    this.units.subscribe((events) => {
      if (events.some((e) => e.type === 'delete' || e.prev === undefined)) this.sortedNames = undefined;
    });
    this.schedule.subscribe((events) => {
      for (const e of events) {
        const v = e.value ?? e.prev;
        if (!v) continue;
        if (e.type === 'put' && e.value) setByUnit(this.decisionsByUnit, v.unit, v.machine, e.value);
        else deleteByUnit(this.decisionsByUnit, v.unit, v.machine);
      }
    });
    this.states.subscribe((events) => {
      for (const e of events) {
        const v = e.value ?? e.prev;
        if (!v) continue;
        if (e.type === 'put' && e.value) setByUnit(this.statesByUnit, v.unit, v.machine, e.value);
        else deleteByUnit(this.statesByUnit, v.unit, v.machine);
      }
    });
    for (const [kind, inf] of this.named()) {
      inf.subscribe((events) => {
        for (const l of this.listeners) l(kind, events);
        for (const w of [...this.waiters]) w();
      });
    }
  }

  private named(): [string, Informer<unknown>][] {
    return [
      ['units', this.units],
      ['desired', this.desired],
      ['machines', this.machines],
      ['metadata', this.metadata],
      ['schedule', this.schedule],
      ['states', this.states],
      ['pending', this.pending],
      ['engine', this.engine],
    ] as [string, Informer<unknown>][];
  }

  async start(): Promise<void> {
    try {
      await Promise.all(this.named().map(([, i]) => i.start()));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    for (const w of [...this.waiters]) w();
    this.listeners.clear();
    await Promise.all(this.named().map(([, i]) => i.stop()));
  }

  /** Called with each batch of changes, by informer kind (metrics). */
  onChange(fn: (kind: string, events: readonly { type: 'put' | 'delete'; name: string }[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Unit names in order, kept between requests while no unit is added or removed. */
  unitNames(): readonly string[] {
    if (!this.sortedNames) this.sortedNames = [...this.units.entries()].map(([n]) => n).sort(cmp);
    return this.sortedNames;
  }

  decisionsOf(unit: string): DecisionRecord[] {
    return [...(this.decisionsByUnit.get(unit)?.values() ?? [])];
  }

  statesOf(unit: string): StateRecord[] {
    return [...(this.statesByUnit.get(unit)?.values() ?? [])];
  }

  /** Metadata of a machine: what it registered with, under what was set at run time. */
  machineMetadata(m: MachineRecord): Record<string, string> {
    const out: Record<string, string> = { ...m.metadata };
    const prefix = `${m.id}/`;
    for (const [name, v] of this.metadata.entries()) if (name.startsWith(prefix)) out[name.slice(prefix.length)] = v.value;
    return out;
  }

  /**
   * Resolves once cond() holds (checked now and after every change the
   * cache applies), or after timeoutMs; returns whether it held.
   */
  waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(ok);
      };
      const check = (): void => {
        if (cond()) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.waiters.add(check);
    });
  }
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}


