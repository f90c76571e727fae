/**
 * Self-fencing durations: the [X-Fleet] FenceAfter= value, and the rule that
 * combines it with a machine's agent_fence_after. One rule, read by the
 * agent (when to stop a unit cut off from etcd) and by the engine (how long
 * to wait before placing it elsewhere), so the two agree.
 */

/** A time span as systemd writes one: `90`, `30s`, `2min`, `1h 30min`, `500ms`; `0` or `off`: no fence. Seconds, or undefined if unreadable. */
export function parseFenceSeconds(value: string): number | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'off' || v === 'no' || v === 'false') return 0;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const units: Record<string, number> = { ms: 0.001, msec: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 };
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)\s*/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) return undefined;
  let sum = 0;
  for (const [, n, unit] of parts) {
    const scale = units[unit!];
    if (scale === undefined) return undefined;
    sum += Number(n) * scale;
  }
  return sum;
}

/**
 * The fence that applies to a unit on a machine, in seconds (undefined: the
 * unit is never fenced there). The unit's FenceAfter= wins when given (0
 * turns fencing off for it); otherwise the machine's agent_fence_after.
 * A machine that does not publish a fence (undefined: an agent older than
 * fencing) fences nothing, whatever the unit says. Global units are never
 * fenced: they run on every machine, so no second copy is ever placed.
 */
export function effectiveFence(unit: { fenceAfter?: number | undefined; global: boolean }, machineFence: number | undefined): number | undefined {
  if (unit.global || machineFence === undefined) return undefined;
  const s = unit.fenceAfter ?? machineFence;
  return s > 0 ? s : undefined;
}
