/**
 * A unit's scheduling requirements, read from [X-Fleet] and checked for the
 * combinations fleet refused, so an impossible unit is rejected at submit
 * time instead of sitting unscheduled forever.
 */
import { UnitError, quote } from './errors.js';
import type { UnitFile } from './file.js';
import { globMatch, validateGlob } from './glob.js';
import type { MetadataPair, MetadataRequirement } from './metadata.js';
import { groupMetadata, parseMetadataPair } from './metadata.js';
import { isValidUnitName, parseUnitName } from './name.js';
import type { XFleetOption, XFleetOptions, XFleetValue } from './xfleet.js';
import { readXFleet } from './xfleet.js';
import { parseFenceSeconds } from './fence.js';

export type { MetadataRequirement } from './metadata.js';

export interface Requirements {
  /** Run only on this machine (full ID or 8-character short form). */
  machineId?: string;
  /** Deprecated X-ConditionMachineBootID; pins like machineId. */
  machineBootId?: string;
  /** Run where every one of these units runs (exact names). */
  machineOf: string[];
  /** ANDed across entries; see MetadataRequirement. */
  machineMetadata: MetadataRequirement[];
  /** Glob patterns (Go path.Match) of units never to share a machine with. */
  conflicts: string[];
  /** Glob patterns of units this one displaces from its machine. */
  replaces: string[];
  /** Run on every machine whose metadata matches. */
  global: boolean;
  /** Seconds cut off from etcd after which the agent stops the unit (FenceAfter=; 0: never); unset: the machine's agent_fence_after. */
  fenceAfter?: number;
}

export interface RequirementsReading {
  requirements: Requirements;
  warnings: string[];
}

/** No requirements: runs anywhere. Frozen, arrays included; copy before changing. */
export const EMPTY_REQUIREMENTS: Readonly<Requirements> = Object.freeze({
  machineOf: frozen<string>(),
  machineMetadata: frozen<MetadataRequirement>(),
  conflicts: frozen<string>(),
  replaces: frozen<string>(),
  global: false,
});

function frozen<T>(): T[] {
  const empty: T[] = [];
  return Object.freeze(empty) as T[];
}

// systemd's parse_boolean(), compared lower-cased.
const TRUTHY = ['1', 'yes', 'y', 'true', 't', 'on'];
const FALSY = ['0', 'no', 'n', 'false', 'f', 'off'];

export interface RequirementsOptions extends XFleetOptions {
  /**
   * Read a unit already in the registry, which an earlier version may have
   * accepted: what is now refused at submit time (unknown keys, a Global
   * that is not a boolean, MachineOf naming a template) is read as those
   * versions did, with a warning, so the unit keeps being scheduled as
   * before. The engine and the agent read stored units this way.
   */
  stored?: boolean | undefined;
}

/**
 * Reads [X-Fleet] for the unit `unitName` (specifiers expand to its parts),
 * validates it, and returns typed requirements plus warnings (unknown keys,
 * deprecated spellings, ignored extra values). Throws UnitError.
 *
 * For a template (`web@.service`) `%i` is empty, so a value such as
 * `MachineOf=%i.service` cannot be judged yet: checks on values that
 * specifiers changed are left for instantiate(), which reads the file again
 * for the instance. Templates are never scheduled, so nothing acts on them.
 */
export function parseRequirements(unitName: string, file: UnitFile, opts: RequirementsOptions = {}): RequirementsReading {
  const stored = opts.stored === true;
  const { values, warnings } = readXFleet(unitName, file, { allowUnknownKeys: stored || opts.allowUnknownKeys === true });
  const get = (option: XFleetOption): XFleetValue[] => values.get(option) ?? [];
  const template = isTemplateName(unitName);
  const defer = (v: XFleetValue): boolean => template && v.expanded;

  const peers = uniqueValues(get('machineOf').filter((v) => checkPeer(v, unitName, defer(v), stored ? warnings : undefined)));
  const conflicts = uniqueValues(get('conflicts').map((v) => checkGlob(v, unitName)));
  const replaces = uniqueValues(get('replaces').map((v) => checkGlob(v, unitName)));
  const metadata = get('machineMetadata').flatMap((v) => readMetadata(v, unitName, defer(v)));

  const requirements: Requirements = {
    machineOf: peers.map((v) => v.value),
    machineMetadata: groupMetadata(metadata),
    conflicts: conflicts.map((v) => v.value),
    replaces: replaces.map((v) => v.value),
    global: readGlobal(get('global'), unitName, { warnings, stored, defer }),
  };
  const machineId = firstOf(get('machineId'), unitName, warnings);
  if (machineId !== undefined) requirements.machineId = machineId;
  const machineBootId = firstOf(get('machineBootId'), unitName, warnings);
  if (machineBootId !== undefined) requirements.machineBootId = machineBootId;
  const fenceAfter = readFence(get('fenceAfter'), unitName, { warnings, stored });
  if (fenceAfter !== undefined) requirements.fenceAfter = fenceAfter;

  const patterns = [
    ...conflicts.map((v) => ['Conflicts', v] as const),
    ...replaces.map((v) => ['Replaces', v] as const),
  ].filter(([, v]) => !defer(v));
  checkPeersAgainstPatterns(peers.filter((v) => !defer(v)), patterns, unitName);
  checkCombinations(requirements, unitName);
  return { requirements, warnings };
}

/**
 * The last value counts, as in fleet and systemd; every value must be one of
 * systemd's booleans. A stored unit keeps the earlier reading: anything else
 * counts as false.
 */
function readGlobal(
  given: XFleetValue[],
  unit: string,
  how: { warnings: string[]; stored: boolean; defer: (v: XFleetValue) => boolean },
): boolean {
  for (const v of given) {
    const lower = v.value.toLowerCase();
    if (TRUTHY.includes(lower) || FALSY.includes(lower) || how.defer(v)) continue;
    if (how.stored) {
      how.warnings.push(`${unit}: ${v.key}=${v.value} is not a boolean and counts as false`);
      continue;
    }
    throw new UnitError(
      'xfleet.boolean',
      `${v.key}=${v.value} is not a boolean; use true or false (also read: ${[...TRUTHY, ...FALSY].join(' ')})`,
      { unit },
    );
  }
  const last = given.at(-1);
  return last !== undefined && TRUTHY.includes(last.value.toLowerCase());
}

/** The last value counts, as for any systemd time span; a stored unit's bad value is ignored with a warning. */
function readFence(given: XFleetValue[], unit: string, how: { warnings: string[]; stored: boolean }): number | undefined {
  const last = given.at(-1);
  if (last === undefined) return undefined;
  const seconds = parseFenceSeconds(last.value);
  if (seconds !== undefined) return seconds;
  if (how.stored) {
    how.warnings.push(`${unit}: ${last.key}=${last.value} is not a time span and is ignored`);
    return undefined;
  }
  throw new UnitError('xfleet.duration', `${last.key}=${last.value} is not a time span; use e.g. 30s, 2min or 0 (never fenced)`, { unit });
}

/** A unit is pinned to one machine: fleet used the first value; more are a likely mistake worth a warning. */
function firstOf(given: XFleetValue[], unit: string, warnings: string[]): string | undefined {
  const first = given[0];
  if (first === undefined) return undefined;
  const others = unique(given.map((v) => v.value)).slice(1);
  if (others.length > 0) {
    warnings.push(`${unit}: ${first.key}= is given more than once; only ${first.value} is used, ignoring ${others.join(', ')}`);
  }
  return first.value;
}

/** True when the peer is kept; throws for a bad name unless the check is deferred. */
function checkPeer({ key, value }: XFleetValue, unit: string, deferred: boolean, storedWarnings: string[] | undefined): boolean {
  if (/[*?[]/.test(value)) {
    throw new UnitError('xfleet.machine-of', `${key}=${value}: ${key} takes exact unit names, not patterns`, { unit });
  }
  if (!isValidUnitName(value)) {
    if (deferred) return false;
    throw new UnitError('xfleet.machine-of', `${key}=${value}: ${quote(value)} is not a valid unit name (e.g. db.service)`, { unit });
  }
  // A template never runs, so a unit following one would wait forever.
  if (isTemplateName(value)) {
    if (deferred) return false;
    if (storedWarnings) {
      storedWarnings.push(`${unit}: ${key}=${value} names a template, which never runs; the unit waits for it`);
      return true;
    }
    const t = parseUnitName(value);
    throw new UnitError(
      'xfleet.machine-of',
      `${key}=${value}: ${value} is a template, which never runs on a machine; name one of its instances, e.g. ${t.prefix}@1.${t.type}`,
      { unit },
    );
  }
  return true;
}

function checkGlob(v: XFleetValue, unit: string): XFleetValue {
  try {
    validateGlob(v.value);
  } catch (e) {
    if (!(e instanceof UnitError)) throw e;
    throw new UnitError(e.rule, `${v.key}=${v.value}: ${e.detail}`, { unit });
  }
  return v;
}

function readMetadata(v: XFleetValue, unit: string, deferred: boolean): MetadataPair[] {
  try {
    return [parseMetadataPair(v.value, unit)];
  } catch (e) {
    if (deferred && e instanceof UnitError) return [];
    throw e;
  }
}

/** A unit cannot follow a unit it conflicts with or replaces. */
function checkPeersAgainstPatterns(
  peers: readonly XFleetValue[],
  patterns: readonly (readonly ['Conflicts' | 'Replaces', XFleetValue])[],
  unit: string,
): void {
  for (const { value: peer } of peers) {
    for (const [option, { value: pattern }] of patterns) {
      if (globMatch(pattern, peer)) {
        throw new UnitError(
          'xfleet.unresolvable',
          `MachineOf=${peer} cannot be met: the unit must run beside ${peer} but ${option}=${pattern} matches it`,
          { unit },
        );
      }
    }
  }
}

/** The pairs fleet refused; checked in fleet's order so the same file gets the same complaint. */
function checkCombinations(r: Requirements, unit: string): void {
  const pinned = r.machineId !== undefined || r.machineBootId !== undefined;
  const pin = r.machineId !== undefined ? 'MachineID' : 'X-ConditionMachineBootID';
  const has = {
    MachineOf: r.machineOf.length > 0,
    Conflicts: r.conflicts.length > 0,
    Replaces: r.replaces.length > 0,
    Global: r.global,
    FenceAfter: r.fenceAfter !== undefined,
  };
  const refuse = (a: string, b: string, why: string): never => {
    throw new UnitError('xfleet.combination', `${a} cannot be combined with ${b}: ${why}; remove one of them`, { unit });
  };
  if (pinned && has.MachineOf) refuse(pin, 'MachineOf', 'a unit pinned to one machine cannot also follow other units');
  if (pinned && has.Conflicts) refuse(pin, 'Conflicts', 'a unit pinned to one machine cannot move away from conflicting units');
  if (pinned && has.Global) refuse(pin, 'Global', 'a global unit runs on every machine, not on one');
  if (pinned && has.Replaces) refuse(pin, 'Replaces', 'a unit pinned to one machine cannot be placed beside the units it replaces');
  if (has.Global && has.MachineOf) refuse('Global', 'MachineOf', 'a global unit runs on every machine, not only beside other units');
  if (has.Global && has.Replaces) refuse('Global', 'Replaces', 'a global unit is not scheduled, so it cannot displace units');
  if (has.Global && has.FenceAfter) refuse('Global', 'FenceAfter', 'a global unit runs on every machine, so it is never fenced');
  if (has.Conflicts && has.Replaces) refuse('Conflicts', 'Replaces', 'fleet does not support both on one unit');
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** First occurrence of each value. */
function uniqueValues(items: readonly XFleetValue[]): XFleetValue[] {
  const seen = new Set<string>();
  return items.filter((v) => !seen.has(v.value) && seen.add(v.value));
}

/** `web@.service`: an `@` directly before the type suffix. No validation here. */
function isTemplateName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  const stem = dot < 0 ? name : name.slice(0, dot);
  const at = stem.indexOf('@');
  return at >= 0 && at === stem.length - 1;
}
