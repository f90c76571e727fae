// Reads etcd's history of the schedule prefix revision by revision and
// reports every revision at which a unit is decided onto more than one
// machine. Checking each revision (not only the end state) is what catches
// a plan that lands on top of a move it did not see.
import type { Etcd3 } from 'etcd3';
import { prefixEnd } from '../../src/registry/keys.js';

export interface DoubleDecision {
  revision: number;
  unit: string;
  machines: string[];
}

/** The current revision of the store. */
export async function currentRevision(client: Etcd3): Promise<number> {
  const res = await client.kv.range({ key: Buffer.from('\0'), limit: 1, keys_only: true });
  return Number(res.header.revision);
}

/**
 * Every (revision, unit) in [from, to] with more than one decision under
 * schedulePrefix (`<prefix>schedule/<machine>/<unit>`). One keys-only range
 * read per revision: for the test-sized histories this runs over.
 */
export async function doubleDecisions(client: Etcd3, schedulePrefix: string, from: number, to: number): Promise<DoubleDecision[]> {
  const found: DoubleDecision[] = [];
  const end = prefixEnd(schedulePrefix);
  for (let revision = from; revision <= to; revision++) {
    const res = await client.kv.range({ key: Buffer.from(schedulePrefix), range_end: end, revision, keys_only: true });
    const byUnit = new Map<string, string[]>();
    for (const kv of res.kvs) {
      const rest = kv.key.toString().slice(schedulePrefix.length);
      const i = rest.indexOf('/');
      const unit = rest.slice(i + 1);
      byUnit.set(unit, [...(byUnit.get(unit) ?? []), rest.slice(0, i)]);
    }
    for (const [unit, machines] of byUnit) if (machines.length > 1) found.push({ revision, unit, machines });
  }
  return found;
}
