// A local cache of one key prefix, kept current by a watch (an informer, as
// Kubernetes calls it): list at a revision, then watch from the next one.
// Reconcilers and the CLI read from it instead of etcd.
//
// Every event is delivered exactly once, in revision order: after a
// disconnect the watch resumes from the last revision applied here, and
// events at or below it are dropped as repeats. When that revision has been
// compacted away, the prefix is listed again and the difference is delivered
// as events, so subscribers still see every change of state.
import type { Watcher } from 'etcd3';
import type * as RPC from 'etcd3/lib/rpc.js';
import { silentLogger, type Logger } from '../log.js';
import { retryUntilStopped } from '../retry.js';
import { DecodeError } from './records.js';
import type { Registry } from './registry.js';

export interface InformerEvent<T> {
  type: 'put' | 'delete';
  /** The key without the informer's prefix. */
  name: string;
  /** The new value (put). */
  value: T | undefined;
  /** The value before this event, if the cache had one. */
  prev: T | undefined;
  /** etcd revision of the change (the list revision for re-list differences). */
  revision: number;
}

export type InformerHandler<T> = (events: readonly InformerEvent<T>[]) => void;

export interface InformerOptions {
  logger?: Logger | undefined;
}

/** Watch events received by the informers of each registry connection (a daemon's /metrics, benchmarks). */
const received = new WeakMap<Registry, number>();

/** How many watch events this registry's informers have received from etcd, repeats included. */
export function watchEventsReceived(registry: Registry): number {
  return received.get(registry) ?? 0;
}

export class Informer<T> {
  private readonly cache = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();
  private watcher: Watcher | undefined;
  private applied = 0;
  private stopped = false;
  private relisting: Promise<void> | undefined;
  private readonly log: Logger;
  /** How many times the prefix was listed (1 after start); for tests and metrics. */
  lists = 0;
  /** Watch events received from etcd, repeats after a reconnect included. */
  eventsReceived = 0;

  constructor(
    private readonly registry: Registry,
    readonly prefix: string,
    private readonly decoder: (raw: string) => T,
    opts: InformerOptions = {},
  ) {
    this.log = (opts.logger ?? registry.log ?? silentLogger).child('informer');
  }

  /** Lists the prefix and starts watching; resolves once the cache is filled. */
  async start(): Promise<void> {
    await this.relist();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await cancelQuietly(w);
    this.handlers.clear();
  }

  /** The highest etcd revision whose changes are all in the cache. */
  get revision(): number {
    return this.applied;
  }

  get size(): number {
    return this.cache.size;
  }

  get(name: string): T | undefined {
    return this.cache.get(name);
  }

  has(name: string): boolean {
    return this.cache.has(name);
  }

  entries(): IterableIterator<[string, T]> {
    return this.cache.entries();
  }

  values(): IterableIterator<T> {
    return this.cache.values();
  }

  /**
   * Lists the prefix again and watches on from there: afterwards the cache
   * holds every change made before the call (a watch alone gives no such
   * point in time when nothing under the prefix changes).
   */
  resync(): Promise<void> {
    return this.relist();
  }

  /** Subscribes to batches of changes; returns the unsubscribe function. */
  subscribe(handler: InformerHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Waits until the cache has applied every change up to revision. */
  async waitForRevision(revision: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.applied < revision) {
      if (Date.now() > deadline) throw new Error(`informer for ${this.prefix} did not reach revision ${revision}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async relist(): Promise<void> {
    if (this.relisting) return this.relisting;
    this.relisting = (async () => {
      try {
        await this.cancelWatcher();
        const page = await this.registry.listPrefix(this.prefix);
        const revision = Number(page.revision);
        this.lists++;
        const fresh = new Map<string, T>();
        for (const kv of page.items) {
          const v = this.decodeValue(kv.key, kv.value);
          if (v !== undefined) fresh.set(kv.key.slice(this.prefix.length), v);
        }
        const events: InformerEvent<T>[] = [];
        for (const [name, prev] of this.cache) {
          if (!fresh.has(name)) events.push({ type: 'delete', name, value: undefined, prev, revision });
        }
        for (const [name, value] of fresh) {
          const prev = this.cache.get(name);
          if (prev === undefined || JSON.stringify(prev) !== JSON.stringify(value)) {
            events.push({ type: 'put', name, value, prev, revision });
          }
        }
        this.cache.clear();
        for (const [k, v] of fresh) this.cache.set(k, v);
        this.applied = revision;
        this.emit(events);
        if (!this.stopped) await this.watchFrom(revision + 1);
      } finally {
        this.relisting = undefined;
      }
    })();
    return this.relisting;
  }

  private async cancelWatcher(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    if (w) {
      w.removeAllListeners();
      // keep a listener so a late error on the dead watcher is not thrown
      w.on('error', () => undefined);
      await cancelQuietly(w);
    }
  }

  private async watchFrom(revision: number): Promise<void> {
    const watcher = await this.registry.client.watch().prefix(this.prefix).startRevision(String(revision)).create();
    if (this.stopped) {
      await cancelQuietly(watcher);
      return;
    }
    this.watcher = watcher;
    // etcd3 moves its resume point to each response's header revision, which
    // can skip history still being replayed; resume from what we applied.
    const pinResume = (): void => {
      watcher.request.start_revision = String(this.applied + 1);
    };
    watcher.on('data', (res: RPC.IWatchResponse) => {
      this.onResponse(res);
      pinResume();
    });
    watcher.on('connected', pinResume);
    watcher.on('disconnected', (err: Error) => this.log.debug('watch disconnected', { prefix: this.prefix, error: err.message }));
    watcher.on('error', (err: Error) => {
      if (this.stopped || this.watcher !== watcher) return;
      // A cancelled watch (most often: our revision was compacted) means
      // events may be missing: list again.
      this.log.warn('watch cancelled; listing again', { prefix: this.prefix, error: err.message });
      // etcd3 has already dropped a cancelled watcher; cancelling it again
      // would wait for a connection that never comes.
      this.watcher = undefined;
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      void this.relistWithRetry();
    });
  }

  private async relistWithRetry(): Promise<void> {
    await retryUntilStopped(() => this.relist(), {
      stopped: () => this.stopped,
      onError: (err, delayMs) => this.log.warn('listing failed; retrying', { prefix: this.prefix, error: (err as Error).message, delayMs }),
    });
  }

  private onResponse(res: RPC.IWatchResponse): void {
    if (res.events.length === 0) {
      // A progress notification: the watch is in step up to this revision.
      const header = Number(res.header.revision);
      if (header > this.applied) this.applied = header;
      return;
    }
    this.eventsReceived += res.events.length;
    received.set(this.registry, (received.get(this.registry) ?? 0) + res.events.length);
    // etcd never splits one revision's events across responses, so anything
    // at or below what we applied is a repeat after a reconnect.
    const floor = this.applied;
    const events: InformerEvent<T>[] = [];
    for (const ev of res.events) {
      const revision = Number(ev.kv.mod_revision);
      if (revision <= floor) continue;
      const key = ev.kv.key.toString();
      const name = key.slice(this.prefix.length);
      const prev = this.cache.get(name);
      const value = ev.type === 'Put' ? this.decodeValue(key, ev.kv.value.toString()) : undefined;
      if (value === undefined) {
        // A delete, or a value we cannot read: either way it is gone for us.
        if (prev !== undefined) {
          this.cache.delete(name);
          events.push({ type: 'delete', name, value: undefined, prev, revision });
        }
      } else {
        this.cache.set(name, value);
        events.push({ type: 'put', name, value, prev, revision });
      }
      if (revision > this.applied) this.applied = revision;
    }
    this.emit(events);
  }

  private decodeValue(key: string, raw: string): T | undefined {
    try {
      return this.decoder(raw);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.log.warn('skipping unreadable value in the registry', { key, error: err.message });
      return undefined;
    }
  }

  private emit(events: readonly InformerEvent<T>[]): void {
    if (events.length === 0) return;
    for (const h of this.handlers) {
      try {
        h(events);
      } catch (err) {
        this.log.error('informer subscriber failed', { prefix: this.prefix, error: (err as Error).message });
      }
    }
  }
}

/** Cancels a watcher; a watcher that never got an ID from etcd would make etcd3 wait forever, so bound it. */
async function cancelQuietly(w: Watcher): Promise<void> {
  await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
}
