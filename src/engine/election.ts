// Engine leadership: every daemon not started with disable_engine campaigns;
// one holds the leader key under its lease. The leader stops acting the
// moment its lease is lost or the key stops being its own; the others take
// over as soon as the key is gone (at most one lease TTL after a crash).
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { Informer, decode, type LeaderRecord, type LeaderToken, type Registry, type RegistryLease } from '../registry/index.js';

export interface ElectionOptions {
  registry: Registry;
  /** This engine's identity (the machine ID). */
  id: string;
  ttlSeconds: number;
  logger?: Logger | undefined;
}

export class Election {
  private readonly events = new EventEmitter();
  private readonly log: Logger;
  private lease: RegistryLease | undefined;
  private current: LeaderToken | undefined;
  private informer: Informer<LeaderRecord> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: ElectionOptions) {
    this.log = (opts.logger ?? silentLogger).child('election');
  }

  /** The token while this engine leads. */
  get token(): LeaderToken | undefined {
    return this.current;
  }

  onElected(handler: (token: LeaderToken) => void): void {
    this.events.on('elected', handler);
  }

  onDeposed(handler: (reason: string) => void): void {
    this.events.on('deposed', handler);
  }

  start(): void {
    this.loop ??= this.campaign();
  }

  /** Resigns (if leading) and revokes the lease, so another engine takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    const token = this.current;
    this.depose('stopping');
    this.wake?.();
    await this.loop;
    await this.informer?.stop();
    if (token) await this.opts.registry.resign(token).catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  private depose(reason: string): void {
    if (!this.current) return;
    this.current = undefined;
    this.log.warn('no longer the engine leader', { reason });
    this.events.emit('deposed', reason);
  }

  private async campaign(): Promise<void> {
    const { registry, id } = this.opts;
    let backoff = 100;
    while (!this.stopped) {
      try {
        if (!this.informer) {
          const inf = new Informer(registry, registry.keys.enginePrefix, decode.leader, { logger: this.log });
          inf.subscribe(() => this.onLeaderChange());
          await inf.start();
          this.informer = inf;
        }
        if (!this.lease || this.lease.lost) {
          const lease = await registry.grantLease(this.opts.ttlSeconds);
          lease.onLost((err) => {
            this.log.warn('engine lease lost', { error: err.message });
            this.depose('lease lost');
            this.wake?.();
          });
          this.lease = lease;
        }
        if (!this.current) {
          const token = await registry.tryLead(id, this.lease);
          if (token && !this.stopped) {
            this.current = token;
            this.log.info('elected engine leader', { id });
            this.events.emit('elected', token);
          }
        }
        backoff = 100;
        // Sleep until the leader key changes or the lease is lost; a slow
        // timer re-checks in case a change was missed.
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, this.opts.ttlSeconds * 1000).unref();
        });
        this.wake = undefined;
      } catch (err) {
        this.log.warn('campaign failed; retrying', { error: (err as Error).message });
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  private onLeaderChange(): void {
    const leader = this.informer?.get('leader');
    if (this.current && leader?.id !== this.opts.id) this.depose(leader ? `engine ${leader.id} leads now` : 'leader key removed');
    if (!leader) this.wake?.();
  }
}
