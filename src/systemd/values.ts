// D-Bus values as plain JavaScript at the module boundary: dbus-next hands
// out Variant objects and BigInt for 64-bit integers (timestamps, limits),
// which JSON.stringify refuses. Nothing BigInt leaves src/systemd/.
import * as dbus from 'dbus-next';

/** systemd's "infinity" for 64-bit values (USEC_INFINITY, RLIM_INFINITY, …). */
const UINT64_MAX = 2n ** 64n - 1n;

/** A copy of a D-Bus value with Variants unwrapped and BigInt made Number (2^64-1 becomes Infinity). */
export function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value === UINT64_MAX ? Number.POSITIVE_INFINITY : Number(value);
  if (value instanceof dbus.Variant) return plain(value.value);
  if (Array.isArray(value)) return value.map(plain);
  if (Buffer.isBuffer(value)) return value;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

export function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what}: expected a string, got ${typeof value}`);
  return value;
}

export function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
