// Announcing an endpoint: its key `services/<service>/<instance>` is bound to
// a lease the announcer keeps alive, so the endpoint disappears when the
// announcer stops (revoked: at once) or dies (expired: within the TTL). A
// lease lost while etcd was out of reach is granted again and the endpoint
// written again, until stop() is called.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { EndpointRecord, Registry, RegistryLease } from '../registry/index.js';
import { Backoff } from '../retry.js';
import { DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS } from './names.js';

export { DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS };

export interface AnnounceOptions {
  /** Lease TTL in seconds: how long the endpoint outlives a dead announcer. Default 10, at least 2. */
  ttl?: number | undefined;
}

export interface AnnouncementEvents {
  /** Written (again) under a new lease. */
  announced: [leaseId: string];
  /** The lease was lost (etcd unreachable longer than the TTL, or revoked by someone else); announcing again. */
  lost: [err: Error];
  /** A try to announce again failed; another follows. */
  retrying: [err: Error];
}

export class Announcement extends EventEmitter<AnnouncementEvents> {
  private lease: RegistryLease | undefined;
  private stopped = false;
  private retry: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Times the endpoint was written (1 after announce; more after a lost lease). */
  announcements = 0;

  constructor(
    private readonly registry: Registry,
    readonly endpoint: Readonly<EndpointRecord>,
    readonly ttlSeconds: number,
    private readonly log: Logger = silentLogger,
  ) {
    super();
  }

  get service(): string {
    return this.endpoint.service;
  }
  get instance(): string {
    return this.endpoint.instance;
  }
  /** The key this endpoint lives under (for etcdctl). */
  get key(): string {
    return this.registry.keys.endpoint(this.endpoint.service, this.endpoint.instance);
  }
  /** The current lease ID, if the endpoint is announced now. */
  get leaseId(): string | undefined {
    return this.lease && !this.lease.lost ? this.lease.id : undefined;
  }
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Grants a lease and writes the endpoint under it; rejects if etcd refuses or cannot be reached. */
  async start(): Promise<void> {
    const lease = await this.registry.grantLease(this.ttlSeconds);
    try {
      if (this.stopped) throw new Error('announcement stopped');
      await this.registry.announce(this.endpoint, lease);
    } catch (err) {
      await lease.revoke().catch(() => lease.release());
      throw err;
    }
    if (this.stopped) {
      await lease.revoke().catch(() => lease.release());
      return;
    }
    this.lease = lease;
    this.announcements++;
    lease.onLost((err) => this.onLost(lease, err));
    this.emit('announced', lease.id);
  }

  /** Withdraws the endpoint (revokes its lease: the key goes at once) and stops keeping it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    await this.retry?.catch(() => undefined);
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    try {
      await lease.revoke();
    } catch (err) {
      // etcd out of reach: stop the keep-alive; the key expires within the TTL.
      lease.release();
      this.log.warn('could not withdraw the endpoint; it expires with its lease', { key: this.key, error: (err as Error).message });
    }
  }

  private onLost(lease: RegistryLease, err: Error): void {
    if (this.stopped || this.lease !== lease) return;
    this.lease = undefined;
    this.log.warn('endpoint lease lost; announcing again', { key: this.key, error: err.message });
    this.emit('lost', err);
    this.retry = this.announceAgain().finally(() => (this.retry = undefined));
  }

  private async announceAgain(): Promise<void> {
    // The shared policy, capped lower: an endpoint should be back soon after etcd is.
    const backoff = new Backoff({ maxMs: 2_000 });
    while (!this.stopped) {
      try {
        await this.start();
        return;
      } catch (err) {
        if (this.stopped) return;
        this.emit('retrying', err as Error);
        this.log.debug('announcing again failed; retrying', { key: this.key, error: (err as Error).message });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff.next());
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}
