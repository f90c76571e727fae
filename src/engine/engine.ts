// The engine: an election, and while this daemon leads, a reconciler.
import { silentLogger, type Logger } from '../log.js';
import type { LeaderToken, Registry } from '../registry/index.js';
import { Backoff, sleep } from '../retry.js';
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
  private readonly stopping = new AbortController();

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
    this.stopping.abort();
    await this.starting?.catch(() => undefined);
    await this.follow();
    await this.election.stop();
  }

  private async lead(token: LeaderToken): Promise<void> {
    await this.follow();
    const backoff = new Backoff();
    while (this.election.token === token && !this.stopping.signal.aborted) {
      const r = new EngineReconciler({
        registry: this.opts.registry,
        token,
        logger: this.log,
        // The registry refused a fenced plan: this engine no longer leads,
        // whatever the election has seen so far. Step down and campaign again.
        onDeposed: (reason) => {
          this.log.warn('engine deposed while reconciling; stepping down', { reason });
          this.election.stepDown(token, reason);
        },
        batchDelayMs: this.opts.batchDelayMs,
        resyncMs: this.opts.resyncMs,
      });
      this.active = r;
      try {
        await r.start();
        return;
      } catch (err) {
        // etcd trouble while filling the caches: try again while still leading
        const delayMs = backoff.next();
        this.log.error('engine failed to start reconciling; retrying', { error: (err as Error).message, delayMs });
        if (this.active === r) this.active = undefined;
        await r.stop();
        await sleep(delayMs, this.stopping.signal);
      }
    }
  }

  private async follow(): Promise<void> {
    const r = this.active;
    this.active = undefined;
    await r?.stop();
  }
}
