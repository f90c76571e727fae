// Self-fencing on the agent's side. With a fence set (agent_fence_after, or
// a unit's FenceAfter=), an agent that etcd has not acknowledged for that
// long stops the unit: the engine, which may be placing it elsewhere,
// waits out the same fence plus a margin (src/engine/fence.ts), so the two
// copies do not overlap. The stop goes to systemd only: nothing here waits
// for etcd or for the stop job (the agent's fire-and-follow model). While
// any unit is fenced the agent does not act on its schedule, which it can
// no longer trust; once etcd answers again it reads its schedule up to the
// current revision before acting, so a unit moved away meanwhile is not
// started here again (test/integration/fence.test.ts).
import type { Logger } from '../log.js';

export interface FenceCandidate {
  name: string;
  /** Seconds; undefined: the unit is not fenced. */
  fenceAfter: number | undefined;
}

/** Which units' fences have passed at `now` (counted from the last ack), and when the next one passes. */
export function fenceDue(units: readonly FenceCandidate[], lastAckAt: number, now: number): { due: string[]; nextAt: number | undefined } {
  const due: string[] = [];
  let nextAt: number | undefined;
  for (const u of units) {
    if (u.fenceAfter === undefined || u.fenceAfter <= 0) continue;
    const at = lastAckAt + u.fenceAfter * 1000;
    if (now >= at) due.push(u.name);
    else if (nextAt === undefined || at < nextAt) nextAt = at;
  }
  return { due: due.sort(), nextAt };
}

/** The shorter of two fences (undefined: none); the agent takes the shorter of its own reading and the engine's. */
export function shorterFence(a: number | undefined, b: number | undefined): number | undefined {
  const on = [a, b].filter((s): s is number => s !== undefined && s > 0);
  return on.length === 0 ? undefined : Math.min(...on);
}

export interface SelfFenceOptions {
  /** When etcd last acknowledged this machine (performance.now()). */
  lastAckAt: () => number;
  /** Units running here that may be fenced, each with the fence that applies to it. */
  candidates: () => FenceCandidate[];
  /** Queues the stops (systemd only; not waited for). */
  stop: (names: readonly string[]) => Promise<void>;
  /** Called when the agent should pass again (a fence lifted; etcd's acks also kick a pass while fenced). */
  kick: () => void;
  log: Logger;
}

export class SelfFence {
  /** While fenced: the ack the fence counted from, and the units it stopped. */
  private fence: { ackAt: number; units: Set<string> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private catchUp = false;
  private closed = false;

  constructor(private readonly opts: SelfFenceOptions) {}

  /** True while some unit is fenced (etcd not heard from since it was stopped). */
  get active(): boolean {
    return this.fence !== undefined;
  }

  /** True after a fence lifted, until the schedule has caught up with etcd. */
  get catchingUp(): boolean {
    return this.catchUp;
  }

  caughtUp(): void {
    this.catchUp = false;
  }

  /** Stops the units whose fence has passed and arms a timer for the next; returns whether a fence is in force. */
  check(): boolean {
    if (this.closed) return false;
    const { log } = this.opts;
    const ackAt = this.opts.lastAckAt();
    const now = performance.now();
    if (this.fence && ackAt > this.fence.ackAt) {
      log.info('etcd acknowledges this machine again; acting on the schedule once it is read up to date', {
        fenced: [...this.fence.units].sort().join(','),
      });
      this.fence = undefined;
      this.catchUp = true;
      this.opts.kick();
    }
    const { due, nextAt } = fenceDue(this.opts.candidates(), ackAt, now);
    if (due.length > 0) {
      const fence = (this.fence ??= { ackAt, units: new Set() });
      for (const name of due) fence.units.add(name);
      log.warn("etcd has not acknowledged this machine's presence for its fence: stopping units (self-fencing), so no second copy overlaps", {
        units: due.join(','),
        silentMs: Math.round(now - ackAt),
      });
      void this.opts.stop(due).catch((err: unknown) => log.error('self-fencing stop failed', { error: (err as Error).message }));
    }
    // The timer, not the reconcile loop, stops units on time: a pass may be waiting for etcd.
    clearTimeout(this.timer);
    this.timer = undefined;
    if (nextAt !== undefined) {
      this.timer = setTimeout(() => this.check(), Math.max(0, Math.ceil(nextAt - now)));
      this.timer.unref();
    }
    return this.fence !== undefined;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
