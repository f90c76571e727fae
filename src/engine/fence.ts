/**
 * Holding the fenced units of a vanished machine. With self-fencing on
 * (agent_fence_after, FenceAfter=), an agent cut off from etcd stops its
 * units once it has had no acknowledgement from etcd for the fence; the
 * engine must not start a second copy before that. So a unit decided onto a
 * machine that is gone stays out of scheduling until its fence plus
 * FENCE_MARGIN_MS have passed since this engine saw the machine gone. Pure:
 * plain data in, which units are held and until when out.
 *
 * Why counting from when the engine saw the machine gone is enough: the
 * agent counts its fence from the last keepalive etcd acknowledged (A). etcd
 * expires a lease no earlier than its TTL after the last keepalive it
 * received, and that keepalive was received before A was acknowledged, less
 * at most one round trip; so the engine sees the machine gone no earlier
 * than A + agent_ttl - one round trip, and places at the earliest at
 * A + agent_ttl + fence + margin - one round trip, while the agent has
 * queued the stop at A + fence. agent_ttl already covers the round trip;
 * the margin covers what the agent needs past its deadline: its timer and
 * pass, systemd running the stop, and a record deleted by hand (no TTL then).
 * What it cannot cover is a unit whose stop takes longer (a long
 * ExecStop=, TimeoutStopSec=) — see docs/architecture.md, "Self-fencing".
 * Durations, not clock readings, cross machines, so clock offsets between
 * the agent, etcd and the engine do not matter; only rate drift would,
 * which is far below the margin at these spans.
 */
import type { Logger } from '../log.js';

/** Waited past a unit's fence before placing it elsewhere. */
export const FENCE_MARGIN_MS = 5_000;

export interface FencedDecision {
  unit: string;
  machine: string;
  /** Seconds; undefined or 0: the unit is not fenced and moves at once. */
  fenceAfter?: number | undefined;
}

export interface FenceHolds {
  /** Unit → the time (same clock as `now`) until which it stays where it was decided. */
  held: Map<string, number>;
  /** The earliest time a hold ends, when the engine must plan again; undefined: none held. */
  nextAt: number | undefined;
}

/**
 * When each machine was first seen gone, carried from pass to pass: a
 * machine that some decision names and that is not live keeps the time it
 * was first seen gone (now, the first time: for an engine that just took
 * over, that is when it took over, so a new leader never shortens a wait).
 * A machine live again, or named by no decision, is forgotten.
 */
export function trackGone(
  previous: ReadonlyMap<string, number>,
  decided: Iterable<string>,
  live: ReadonlySet<string>,
  now: number,
): Map<string, number> {
  const next = new Map<string, number>();
  for (const machine of decided) {
    if (live.has(machine) || next.has(machine)) continue;
    next.set(machine, previous.get(machine) ?? now);
  }
  return next;
}

/** Which decisions on gone machines are still held at `now`, and when the next hold ends. */
export function fenceHolds(
  decisions: Iterable<FencedDecision>,
  goneSince: ReadonlyMap<string, number>,
  now: number,
  marginMs = FENCE_MARGIN_MS,
): FenceHolds {
  const held = new Map<string, number>();
  let nextAt: number | undefined;
  for (const d of decisions) {
    const since = goneSince.get(d.machine);
    if (since === undefined || !d.fenceAfter || d.fenceAfter <= 0) continue;
    const until = since + d.fenceAfter * 1000 + marginMs;
    if (now >= until) continue;
    held.set(d.unit, until);
    if (nextAt === undefined || until < nextAt) nextAt = until;
  }
  return { held, nextAt };
}

export interface NewHold {
  machine: string;
  units: number;
  /** The earliest end of a hold among its units. */
  until: number;
}

/**
 * The reconciler's memory between passes: when each machine was seen gone,
 * and which machines' holds were already reported (so each is logged once).
 * A new leader starts with a new one: it times from when it took over.
 */
export class FenceClock {
  private goneSince = new Map<string, number>();
  private readonly reported = new Set<string>();

  update(decisions: readonly FencedDecision[], live: ReadonlySet<string>, now: number, log?: Logger): FenceHolds & { newHolds: NewHold[] } {
    this.goneSince = trackGone(this.goneSince, decisions.map((d) => d.machine), live, now);
    const holds = fenceHolds(decisions, this.goneSince, now);
    for (const m of this.reported) if (!this.goneSince.has(m)) this.reported.delete(m);
    const fresh = new Map<string, NewHold>();
    for (const d of decisions) {
      const until = holds.held.get(d.unit);
      if (until === undefined || this.reported.has(d.machine)) continue;
      const h = fresh.get(d.machine) ?? { machine: d.machine, units: 0, until };
      h.units++;
      h.until = Math.min(h.until, until);
      fresh.set(d.machine, h);
    }
    for (const h of fresh.values()) {
      this.reported.add(h.machine);
      log?.info('machine gone; its fenced units are placed elsewhere only once their fence has passed', {
        machine: h.machine,
        units: h.units,
        firstInMs: Math.round(h.until - now),
      });
    }
    return { ...holds, newHolds: [...fresh.values()] };
  }
}
