// The engine: an election, and while this daemon leads, a reconciler.
import { silentLogger, type Logger } from '../log.js';
import type { LeaderToken, Registry } from '../registry/index.js';
import { Election } from './election.js';
import { EngineReconciler } from './reconciler.js';

export interface EngineOptions {
  registry: Registry;
  /** This engine's identity (the machine ID). */
  id: string;
  /** Lease TTL of the leader key: how long a crashed leader holds on. */
  leaseTtlSeconds?: number | undefined;
  logger?: Logger | undefined;
  batchDelayMs?: number | undefined;
  resyncMs?: number | undefined;
}

export const DEFAULT_ENGINE_TTL_SECONDS = 10;

export class Engine {
  private readonly election: Election;
  private readonly log: Logger;
  private active: EngineReconciler | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly opts: EngineOptions) {
    this.log = opts.logger ?? silentLogger;
    this.election = new Election({
      registry: opts.registry,
      id: opts.id,
      ttlSeconds: opts.leaseTtlSeconds ?? DEFAULT_ENGINE_TTL_SECONDS,
      logger: this.log,
    });
    this.election.onElected((token) => {
      this.starting = this.lead(token);
    });
    this.election.onDeposed(() => {
      void this.follow();
    });
  }

  get leading(): boolean {
    return this.election.token !== undefined;
  }

  /** The running reconciler while leading (for tests and benchmarks). */
  get reconciler(): EngineReconciler | undefined {
    return this.active;
  }

  start(): void {
    this.election.start();
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.follow();
    await this.election.stop();
  }

  private async lead(token: LeaderToken): Promise<void> {
    await this.follow();
    const r = new EngineReconciler({
      registry: this.opts.registry,
      token,
      logger: this.log,
      onDeposed: (reason) => this.log.warn('engine deposed while reconciling', { reason }),
      batchDelayMs: this.opts.batchDelayMs,
      resyncMs: this.opts.resyncMs,
    });
    this.active = r;
    try {
      await r.start();
    } catch (err) {
      // etcd trouble while filling the caches: try again while still leading
      this.log.error('engine failed to start reconciling; retrying', { error: (err as Error).message });
      if (this.active === r) this.active = undefined;
      await r.stop();
      await new Promise((res) => setTimeout(res, 1_000).unref());
      if (this.election.token === token && !this.active) this.starting = this.lead(token);
    }
  }

  private async follow(): Promise<void> {
    const r = this.active;
    this.active = undefined;
    await r?.stop();
  }
}
