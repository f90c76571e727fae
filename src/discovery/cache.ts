// The endpoints of every service, kept current by one watch of
// `services/` (an Informer): resolve, watch and the DNS front read from
// here, never from etcd, so a lookup costs a map access.
import { Informer, Keys, decode, type EndpointRecord, type InformerEvent, type Registry } from '../registry/index.js';
import type { Logger } from '../log.js';
import { instanceLabel, sortEndpoints } from './names.js';

/** One batch of changes to a service's endpoints. */
export interface EndpointChange {
  service: string;
  added: EndpointRecord[];
  updated: EndpointRecord[];
  removed: EndpointRecord[];
  /** Every endpoint of the service after the change, ordered by instance. */
  endpoints: readonly EndpointRecord[];
}

export type ChangeListener = (change: EndpointChange) => void;

interface ServiceEntry {
  byInstance: Map<string, EndpointRecord>;
  /** Sorted, frozen list; rebuilt on the first read after a change. */
  list: readonly EndpointRecord[] | undefined;
  /** DNS label → endpoint; rebuilt lazily like list. */
  labels: Map<string, EndpointRecord> | undefined;
}

const EMPTY: readonly EndpointRecord[] = Object.freeze([]);

export class EndpointCache {
  private readonly informer: Informer<EndpointRecord>;
  private readonly services = new Map<string, ServiceEntry>();
  private readonly listeners = new Map<string, Set<ChangeListener>>();
  private readonly anyListeners = new Set<ChangeListener>();
  private started: Promise<void> | undefined;

  constructor(registry: Registry, opts: { logger?: Logger | undefined } = {}) {
    this.informer = new Informer(registry, registry.keys.servicesPrefix, decode.endpoint, { logger: opts.logger });
    this.informer.subscribe((events) => this.apply(events));
  }

  /** Lists `services/` and starts watching; safe to call more than once. */
  start(): Promise<void> {
    this.started ??= this.informer.start().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    this.listeners.clear();
    this.anyListeners.clear();
  }

  /** The etcd revision the cache has applied every change up to. */
  get revision(): number {
    return this.informer.revision;
  }

  waitForRevision(revision: number, timeoutMs?: number): Promise<void> {
    return this.informer.waitForRevision(revision, timeoutMs);
  }

  /** Endpoints announced in total. */
  get size(): number {
    return this.informer.size;
  }

  /** The live endpoints of a service, ordered by instance (empty if none). Frozen: do not change. */
  endpoints(service: string): readonly EndpointRecord[] {
    const entry = this.services.get(service);
    if (!entry) return EMPTY;
    entry.list ??= Object.freeze(sortEndpoints([...entry.byInstance.values()]));
    return entry.list;
  }

  /** Names of the services with at least one endpoint, sorted. */
  serviceNames(): string[] {
    return [...this.services.keys()].sort();
  }

  has(service: string): boolean {
    return this.services.has(service);
  }

  /** The endpoint whose DNS label (see instanceLabel) is label; the first by instance wins a clash. */
  byLabel(service: string, label: string): EndpointRecord | undefined {
    const entry = this.services.get(service);
    if (!entry) return undefined;
    if (!entry.labels) {
      entry.labels = new Map();
      for (const e of this.endpoints(service)) {
        const l = instanceLabel(e.instance);
        if (!entry.labels.has(l)) entry.labels.set(l, e);
      }
    }
    return entry.labels.get(label);
  }

  /** Calls listener with each batch of changes to service (or to every service, with '*'); returns the unsubscribe function. */
  subscribe(service: string, listener: ChangeListener): () => void {
    if (service === '*') {
      this.anyListeners.add(listener);
      return () => this.anyListeners.delete(listener);
    }
    let set = this.listeners.get(service);
    if (!set) this.listeners.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(service) === set) this.listeners.delete(service);
    };
  }

  private apply(events: readonly InformerEvent<EndpointRecord>[]): void {
    const changes = new Map<string, EndpointChange>();
    for (const ev of events) {
      const pair = Keys.splitPair(ev.name);
      if (!pair) continue;
      const [service, instance] = pair;
      let change = changes.get(service);
      if (!change) changes.set(service, (change = { service, added: [], updated: [], removed: [], endpoints: EMPTY }));
      let entry = this.services.get(service);
      if (ev.type === 'put' && ev.value) {
        const rec: EndpointRecord = { ...ev.value, service, instance };
        if (!entry) this.services.set(service, (entry = { byInstance: new Map(), list: undefined, labels: undefined }));
        const had = entry.byInstance.has(instance);
        entry.byInstance.set(instance, rec);
        (had ? change.updated : change.added).push(rec);
        entry.list = undefined;
        entry.labels = undefined;
      } else if (entry) {
        const prev = entry.byInstance.get(instance);
        if (!prev) continue;
        entry.byInstance.delete(instance);
        change.removed.push(prev);
        entry.list = undefined;
        entry.labels = undefined;
        if (entry.byInstance.size === 0) this.services.delete(service);
      }
    }
    for (const change of changes.values()) {
      if (change.added.length + change.updated.length + change.removed.length === 0) continue;
      const listeners = [...(this.listeners.get(change.service) ?? []), ...this.anyListeners];
      if (listeners.length === 0) continue;
      change.endpoints = this.endpoints(change.service);
      for (const l of listeners) {
        try {
          l(change);
        } catch {
          // a listener's failure is its own; the cache goes on
        }
      }
    }
  }
}
