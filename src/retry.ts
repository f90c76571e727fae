// The one retry policy: every loop that tries again after a failure (the
// election, presence, informers, the state publisher, the reconcile loops,
// the D-Bus reconnect, discovery announcements) waits by it. Exponential
// backoff from cockatiel with "half jitter" (each delay drawn from
// [d/2, d) where d doubles up to the cap), so that after an etcd outage the
// agents of a cluster spread their retries instead of hitting etcd in
// lockstep, and no wait exceeds the cap. Retrying goes on as long as the
// caller's loop does: the policy bounds each wait, not the number of tries.
import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from 'cockatiel';

export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. */
  initialMs?: number | undefined;
  /** No delay reaches this, in ms. */
  maxMs?: number | undefined;
}

export const RETRY_INITIAL_MS = 100;
export const RETRY_MAX_MS = 5_000;

/** The delays of one retrying loop: next() after each failure, reset() after a success. */
export class Backoff {
  private readonly factory: ExponentialBackoff<number>;
  /** The last delay handed out; undefined before the first. */
  private state: IBackoff<unknown> | undefined;

  constructor(opts: BackoffOptions = {}) {
    this.factory = new ExponentialBackoff({
      generator: halfJitterGenerator,
      initialDelay: opts.initialMs ?? RETRY_INITIAL_MS,
      maxDelay: opts.maxMs ?? RETRY_MAX_MS,
    });
  }

  /** The delay before the next try, in ms. */
  next(): number {
    // cockatiel's factory.next() already yields the first delay
    this.state = this.state ? this.state.next(undefined) : this.factory.next();
    return this.state.duration;
  }

  reset(): void {
    this.state = undefined;
  }

  /** Waits the next delay; ends early when signal aborts. Never rejects. */
  wait(signal?: AbortSignal): Promise<void> {
    return sleep(this.next(), signal);
  }
}

/** A timer that keeps no process alive and ends early on abort. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Polled before each try: true ends the loop (the result is then undefined). */
  stopped: () => boolean;
  /** Told of each failure and the delay before the next try. */
  onError: (err: unknown, delayMs: number) => void;
  /** Cuts a wait short (e.g. on stop). */
  signal?: AbortSignal | undefined;
}

/** Tries until fn succeeds or the loop is stopped, waiting by the policy between tries. */
export async function retryUntilStopped<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T | undefined> {
  const backoff = new Backoff(opts);
  while (!opts.stopped()) {
    try {
      return await fn();
    } catch (err) {
      if (opts.stopped()) return undefined;
      const delay = backoff.next();
      opts.onError(err, delay);
      await sleep(delay, opts.signal);
    }
  }
  return undefined;
}
