// Engine leadership: every daemon not started with disable_engine campaigns;
// one holds the leader key under its lease. The leader stops acting the
// moment its lease is lost or the key stops being its own; the others take
// over as soon as the key is gone (at most one lease TTL after a crash).
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { Backoff, sleep } from '../retry.js';
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
  /** Aborted by stop(), to cut a retry wait short. */
  private readonly stopping = new AbortController();
  /** A lease given up by stepDown(), revoked before campaigning again. */
  private abandoned: RegistryLease | undefined;
  private wake: (() => void) | undefined;
  /** Set by nudge(): the campaign loop goes round again without sleeping. */
  private nudged = false;
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
    this.stopping.abort();
    this.nudge();
    await this.loop;
    await this.informer?.stop();
    if (token) await this.opts.registry.resign(token).catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  /**
   * The registry refused this token (a fenced write failed), whatever the
   * watch on the leader key says so far: stop leading now and campaign again
   * at once, under a fresh lease. The old lease is revoked, since a lease
   * revoked behind our back would otherwise be noticed only by the next
   * keep-alive, and any key still bound to it is no claim this engine can act
   * on. (test/integration/engine.test.ts, "steps down and campaigns again at
   * once when a fenced commit is refused")
   */
  stepDown(token: LeaderToken, reason: string): void {
    if (this.current !== token || this.stopped) return;
    this.depose(reason);
    if (this.lease) {
      this.abandoned = this.lease;
      this.lease = undefined;
    }
    this.nudge();
  }

  /** Wakes the campaign loop, or keeps it from sleeping if it is busy. */
  private nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  private depose(reason: string): void {
    if (!this.current) return;
    this.current = undefined;
    this.log.warn('no longer the engine leader', { reason });
    this.events.emit('deposed', reason);
  }

  private async campaign(): Promise<void> {
    const { registry, id } = this.opts;
    const backoff = new Backoff();
    while (!this.stopped) {
      this.nudged = false;
      try {
        if (this.abandoned) {
          const old = this.abandoned;
          this.abandoned = undefined;
          await old.revoke().catch(() => undefined);
        }
        if (!this.informer) {
          const inf = new Informer(registry, registry.keys.enginePrefix, decode.leader, { logger: this.log });
          inf.subscribe(() => this.onLeaderChange());
          await inf.start();
          this.informer = inf;
        }
        if (!this.lease || this.lease.lost) {
          const lease = await registry.grantLease(this.opts.ttlSeconds);
          lease.onLost((err) => {
            if (this.lease !== lease) return;
            this.log.warn('engine lease lost', { error: err.message });
            this.depose('lease lost');
            this.nudge();
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
        backoff.reset();
        // Sleep until the leader key changes or the lease is lost; a slow
        // timer re-checks in case a change was missed.
        await new Promise<void>((resolve) => {
          if (this.nudged) return resolve();
          this.wake = resolve;
          setTimeout(resolve, this.opts.ttlSeconds * 1000).unref();
        });
        this.wake = undefined;
      } catch (err) {
        const delayMs = backoff.next();
        this.log.warn('campaign failed; retrying', { error: (err as Error).message, delayMs });
        await sleep(delayMs, this.stopping.signal);
      }
    }
  }

  private onLeaderChange(): void {
    const leader = this.informer?.get('leader');
    if (this.current && leader?.id !== this.opts.id) this.depose(leader ? `engine ${leader.id} leads now` : 'leader key removed');
    if (!leader) this.nudge();
  }
}
