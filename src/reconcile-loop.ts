// The level-triggered loop the engine and the agent share: any event kicks
// it; kicks that arrive while a pass is due or running fold into one more
// pass; a failed pass is retried after a pause that grows by the shared
// jittered backoff (src/retry.ts) until a pass succeeds; stop() ends it for
// good, also in the middle of a pause. What a pass does (compare desired
// with actual and act) is the owner's.
import { Backoff, sleep } from './retry.js';

export interface ReconcileLoopOptions {
  /** One pass. */
  pass: () => Promise<void>;
  /** Delay before a kicked pass runs, so events arriving together share it. */
  delayMs: () => number;
  /** A failed pass: 'retry' after the next backoff delay, or 'stop' the loop. */
  onError: (err: unknown) => 'retry' | 'stop';
  /** Upper bound of the first retry delay (the policy's default otherwise). */
  retryMs?: number | undefined;
  /** Safety-net pass interval, in case an event was missed. */
  resyncMs?: number | undefined;
}

export class ReconcileLoop {
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private dirty = false;
  private started = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly backoff: Backoff;
  private readonly stopping = new AbortController();

  constructor(private readonly opts: ReconcileLoopOptions) {
    this.backoff = new Backoff({ initialMs: opts.retryMs });
  }

  /** Begins: kicks are ignored until now (no pass on half-filled caches). */
  start(): void {
    this.started = true;
    if (this.opts.resyncMs !== undefined) {
      this.resync = setInterval(() => this.kick(), this.opts.resyncMs);
      this.resync.unref();
    }
    this.kick();
  }

  /** Something changed: a pass will run. */
  kick(): void {
    if (this.stopped || !this.started) return;
    this.dirty = true;
    if (this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPasses().finally(() => {
        this.running = undefined;
        if (this.dirty && !this.stopped) this.kick();
        else this.releaseIdle();
      });
    }, this.opts.delayMs());
  }

  /**
   * A pass once delayMs have passed (something the owner waits for ends
   * then, e.g. a fenced unit's hold); the earliest time asked for wins.
   */
  kickAfter(delayMs: number): void {
    if (this.stopped) return;
    const at = performance.now() + delayMs;
    if (this.wake && at >= this.wakeAt) return;
    clearTimeout(this.wake);
    this.wakeAt = at;
    this.wake = setTimeout(() => {
      this.wake = undefined;
      this.wakeAt = Infinity;
      this.kick();
    }, Math.max(0, Math.ceil(delayMs)));
    this.wake.unref();
  }

  /** No further pass starts; resolves when a running one has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.resync) clearInterval(this.resync);
    clearTimeout(this.wake);
    await this.running?.catch(() => undefined);
    this.releaseIdle();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Resolves when no pass is running or due (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (!this.running && !this.timer && !this.dirty) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private releaseIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async runPasses(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.opts.pass();
        this.backoff.reset();
      } catch (err) {
        if (this.opts.onError(err) === 'stop') {
          this.stopped = true;
          return;
        }
        await sleep(this.backoff.next(), this.stopping.signal);
        this.dirty = true;
      }
    }
  }
}
