/**
 * MachineMetadata= requirements: `key=value` (the machine must have it) and
 * `key!=value` (it must not). Values of one key and operator are ORed, keys
 * are ANDed: `role=db` + `role=web` + `disk=ssd` means (db or web) and ssd.
 */
import { UnitError, quote } from './errors.js';

export interface MetadataRequirement {
  key: string;
  /** Any one of these satisfies the requirement (or, negated, disqualifies). */
  values: string[];
  /** True for `key!=value`: the machine must not have any of these values. */
  negate: boolean;
}

/** Machine metadata as the scheduler sees it. */
export type MachineMetadata = Readonly<Record<string, string>>;

/**
 * Groups `key=value` / `key!=value` strings into one requirement per key and
 * operator, in order of first appearance. Throws UnitError 'xfleet.metadata'.
 * Unlike fleet, which skipped malformed entries silently (leaving the unit
 * free to run anywhere), a malformed entry is refused.
 */
export function parseMetadataRequirements(pairs: readonly string[], unit?: string): MetadataRequirement[] {
  return groupMetadata(pairs.map((p) => parseMetadataPair(p, unit)));
}

export interface MetadataPair {
  key: string;
  value: string;
  negate: boolean;
}

/** Groups pairs into one requirement per key and operator, in order of first appearance. */
export function groupMetadata(pairs: readonly MetadataPair[]): MetadataRequirement[] {
  const out: MetadataRequirement[] = [];
  const index = new Map<string, MetadataRequirement>();
  for (const { key, value, negate } of pairs) {
    const id = `${negate ? '!' : '='}${key}`;
    let req = index.get(id);
    if (req === undefined) {
      req = { key, values: [], negate };
      index.set(id, req);
      out.push(req);
    }
    if (!req.values.includes(value)) req.values.push(value);
  }
  return out;
}

/** True when a machine with `metadata` satisfies every requirement. */
export function metadataSatisfied(requirements: readonly MetadataRequirement[], metadata: MachineMetadata): boolean {
  return requirements.every((req) => {
    const actual = Object.hasOwn(metadata, req.key) ? metadata[req.key] : undefined;
    const has = actual !== undefined && req.values.includes(actual);
    return req.negate ? !has : has;
  });
}

/** Reads `key=value` or `key!=value`; throws UnitError 'xfleet.metadata'. */
export function parseMetadataPair(pair: string, unit?: string): MetadataPair {
  const eq = pair.indexOf('=');
  const negate = eq > 0 && pair[eq - 1] === '!';
  const key = (negate ? pair.slice(0, eq - 1) : pair.slice(0, Math.max(eq, 0))).trim();
  const value = pair.slice(eq + 1).trim();
  if (eq < 0 || key === '' || value === '') {
    throw new UnitError(
      'xfleet.metadata',
      `MachineMetadata value ${quote(pair)} must look like key=value or key!=value, with a non-empty key and value`,
      { unit },
    );
  }
  return { key, value, negate };
}
