// What the API reads from: informers over the registry's prefixes, so a GET
// is answered from memory and never costs an etcd request. Writes go
// through the Registry; a writer then waits until its change is back in the
// cache (read your writes) before it answers.
//
// The informers watch the whole cluster, so they are started by the first
// request that needs them (which waits for the first listing) and dropped
// after a while without such requests: a machine whose API is not used
// holds and receives only what its agent needs (docs/architecture.md,
// invariant 3; test/integration/api-lazy.test.ts).
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
import { ApiError } from './errors.js';

/** The cluster view is dropped after this long without a request that uses it. */
export const DEFAULT_IDLE_MS = 5 * 60_000;
/** A request waits this long for the first listing before it is answered 503. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

export interface ApiCacheOptions {
  registry: Registry;
  logger?: Logger | undefined;
  idleMs?: number | undefined;
  startTimeoutMs?: number | undefined;
}

type ChangeListener = (kind: string, events: readonly { type: 'put' | 'delete'; name: string }[]) => void;

/** The informers over the cluster and the indexes built on them; one per period of use. */
class ClusterView {
  readonly units: Informer<UnitRecord>;
  readonly desired: Informer<DesiredRecord>;
  readonly machines: Informer<MachineRecord>;
  readonly metadata: Informer<MetadataRecord>;
  readonly schedule: Informer<DecisionRecord>;
  readonly states: Informer<StateRecord>;
  readonly pending: Informer<PendingRecord>;
  readonly engine: Informer<LeaderRecord>;
  /** unit -> machine -> decision (schedule is keyed machine/unit). */
  readonly decisionsByUnit = new Map<string, Map<string, DecisionRecord>>();
  /** unit -> machine -> state (the states prefix is keyed unit/machine already, kept as a map for lookups). */
  readonly statesByUnit = new Map<string, Map<string, StateRecord>>();
  sortedNames: string[] | undefined;
  /** Set once every informer has its first listing; changes are passed on from then. */
  ready = false;

  constructor(r: Registry, log: Logger, onChange: (kind: string, events: readonly { type: 'put' | 'delete'; name: string }[]) => void) {
    const k = r.keys;
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
        if (this.ready) onChange(kind, events);
      });
    }
  }

  named(): [string, Informer<unknown>][] {
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
      this.ready = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.ready = false;
    await Promise.all(this.named().map(([, i]) => i.stop()));
  }
}

export class ApiCache {
  private view: ClusterView | undefined;
  /** The stop of a view dropped after idle: its watches may still deliver until it ends. */
  private dropping: Promise<void> | undefined;
  private starting: Promise<ClusterView> | undefined;
  private inUse = 0;
  private lastUse = 0;
  private closed = false;
  private readonly idleTimer: NodeJS.Timeout;
  private readonly idleMs: number;
  private readonly startTimeoutMs: number;
  private readonly log: Logger;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<ChangeListener>();
  /** How many times the cluster view was started (tests, benchmarks). */
  starts = 0;

  constructor(private readonly opts: ApiCacheOptions) {
    this.log = (opts.logger ?? silentLogger).child('cache');
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.idleTimer = setInterval(() => void this.dropIfIdle(), Math.max(10, Math.min(this.idleMs / 4, 30_000)));
    this.idleTimer.unref();
  }

  /** Whether the cluster view is held and filled now. */
  /** True while the cluster view's watches are open, until a drop has closed them. */
  get active(): boolean {
    return this.view?.ready === true || this.dropping !== undefined;
  }

  /**
   * Holds the cluster view for one request, starting it if needed and
   * waiting (bounded) for its first listing; pair with release().
   */
  async acquire(): Promise<void> {
    if (this.closed) throw new ApiError(503, 'the API is shutting down');
    this.inUse++;
    this.lastUse = performance.now();
    if (this.view?.ready) return;
    try {
      await this.whenStarted();
    } catch (err) {
      this.release();
      throw err;
    }
  }

  release(): void {
    this.inUse = Math.max(0, this.inUse - 1);
    this.lastUse = performance.now();
  }

  /** Fills the cluster view now (tests and benchmarks that read the cache directly). */
  async start(): Promise<void> {
    await this.acquire();
    this.release();
  }

  private async whenStarted(): Promise<void> {
    if (!this.starting) {
      const view = new ClusterView(this.opts.registry, this.log, (kind, events) => this.changed(kind, events));
      this.starts++;
      const started = performance.now();
      this.starting = view.start().then(
        () => {
          if (this.closed) void view.stop();
          else this.view = view;
          this.starting = undefined;
          this.log.info('API cluster view started', { ms: Math.round(performance.now() - started), units: view.units.size, states: view.states.size });
          return view;
        },
        (err: unknown) => {
          this.starting = undefined;
          throw err;
        },
      );
      // A request that gives up waiting leaves the listing running for the next one.
      this.starting.catch(() => undefined);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ApiError(503, `the API's view of the cluster is still being listed from etcd (over ${this.startTimeoutMs / 1000} s); try again`)),
        this.startTimeoutMs,
      );
    });
    try {
      await Promise.race([this.starting, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async dropIfIdle(): Promise<void> {
    const v = this.view;
    if (!v || this.inUse > 0 || performance.now() - this.lastUse < this.idleMs) return;
    this.view = undefined;
    for (const l of this.listeners) l('reset', []);
    this.log.info('API cluster view dropped after idle', { idleMs: this.idleMs });
    this.dropping = v.stop().finally(() => (this.dropping = undefined));
    await this.dropping;
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleTimer);
    for (const w of [...this.waiters]) w();
    this.listeners.clear();
    const starting = this.starting?.catch(() => undefined);
    const v = this.view;
    this.view = undefined;
    await v?.stop();
    await (await starting)?.stop();
  }

  private changed(kind: string, events: readonly { type: 'put' | 'delete'; name: string }[]): void {
    for (const l of this.listeners) l(kind, events);
    for (const w of [...this.waiters]) w();
  }

  /** The held view; only between acquire() and release() (or while active). */
  private get v(): ClusterView {
    if (!this.view) throw new Error('the API cluster view is not started (acquire() it first)');
    return this.view;
  }

  get units(): Informer<UnitRecord> {
    return this.v.units;
  }
  get desired(): Informer<DesiredRecord> {
    return this.v.desired;
  }
  get machines(): Informer<MachineRecord> {
    return this.v.machines;
  }
  get metadata(): Informer<MetadataRecord> {
    return this.v.metadata;
  }
  get schedule(): Informer<DecisionRecord> {
    return this.v.schedule;
  }
  get states(): Informer<StateRecord> {
    return this.v.states;
  }
  get pending(): Informer<PendingRecord> {
    return this.v.pending;
  }
  get engine(): Informer<LeaderRecord> {
    return this.v.engine;
  }

  /**
   * Called with each batch of changes, by informer kind (metrics); the kind
   * 'reset' (no events) says the view was dropped and a later one starts afresh.
   */
  onChange(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Unit names in order, kept between requests while no unit is added or removed. */
  unitNames(): readonly string[] {
    const v = this.v;
    if (!v.sortedNames) v.sortedNames = [...v.units.entries()].map(([n]) => n).sort(cmp);
    return v.sortedNames;
  }

  decisionsOf(unit: string): DecisionRecord[] {
    return [...(this.v.decisionsByUnit.get(unit)?.values() ?? [])];
  }

  statesOf(unit: string): StateRecord[] {
    return [...(this.v.statesByUnit.get(unit)?.values() ?? [])];
  }

  /** Metadata of a machine: what it registered with, under what was set at run time. */
  machineMetadata(m: MachineRecord): Record<string, string> {
    const out: Record<string, string> = { ...m.metadata };
    const prefix = `${m.id}/`;
    for (const [name, v] of this.v.metadata.entries()) if (name.startsWith(prefix)) out[name.slice(prefix.length)] = v.value;
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
        let held: boolean;
        try {
          held = cond();
        } catch {
          // the view went away (the server stops): give up waiting
          done(false);
          return;
        }
        if (held) done(true);
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
