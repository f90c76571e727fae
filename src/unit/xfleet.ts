/**
 * Reading the [X-Fleet] section: which keys mean what (with fleet's deprecated
 * spellings), and fleet's rules for turning one value into several.
 */
import { UnitError } from './errors.js';
import type { UnitFile } from './file.js';
import { expandSpecifiers } from './specifiers.js';
import { closest } from './suggest.js';

export type XFleetOption = 'machineId' | 'machineBootId' | 'machineOf' | 'machineMetadata' | 'conflicts' | 'global' | 'replaces' | 'fenceAfter';

export const XFLEET_SECTION = 'X-Fleet';

/** Every accepted key, as written in the file (keys are case-sensitive, as in systemd). */
export const XFLEET_KEYS: Readonly<Record<string, XFleetOption>> = Object.freeze({
  MachineID: 'machineId',
  MachineOf: 'machineOf',
  MachineMetadata: 'machineMetadata',
  Conflicts: 'conflicts',
  Global: 'global',
  Replaces: 'replaces',
  FenceAfter: 'fenceAfter',
  'X-ConditionMachineID': 'machineId',
  'X-ConditionMachineBootID': 'machineBootId',
  'X-ConditionMachineOf': 'machineOf',
  'X-ConditionMachineMetadata': 'machineMetadata',
  'X-Conflicts': 'conflicts',
});

/** Deprecated spelling → the one to use instead (a boot ID changes at every boot, so MachineID replaces it). */
export const DEPRECATED_XFLEET_KEYS: Readonly<Record<string, string>> = Object.freeze({
  'X-ConditionMachineID': 'MachineID',
  'X-ConditionMachineBootID': 'MachineID',
  'X-ConditionMachineOf': 'MachineOf',
  'X-ConditionMachineMetadata': 'MachineMetadata',
  'X-Conflicts': 'Conflicts',
});

/** The values given for one option, after splitting and specifier expansion. */
export interface XFleetValue {
  /** The key as written, for messages. */
  key: string;
  value: string;
  /** True when specifiers changed the value: for a template, checks on it wait for an instance. */
  expanded: boolean;
}

/** The keys to write today, for messages (deprecated spellings are still read). */
const CURRENT_KEYS = Object.keys(XFLEET_KEYS).filter((k) => !Object.hasOwn(DEPRECATED_XFLEET_KEYS, k));

export interface XFleetOptions {
  /**
   * Warn about and ignore an unknown key instead of refusing it: for keys of
   * a newer version (flotctl --allow-unknown-keys), and for units already in
   * the registry, which earlier versions accepted with a warning.
   */
  allowUnknownKeys?: boolean | undefined;
}

export interface XFleetReading {
  values: Map<XFleetOption, XFleetValue[]>;
  warnings: string[];
}

/**
 * Collects [X-Fleet] values per option, in file order. Each value is split
 * (splitQuoted; Conflicts also on white space) and its specifiers expanded
 * for `unitName`. An empty assignment clears the option, as an empty value
 * resets a list in systemd; the deprecated and current spellings of one
 * option share one list.
 */
export function readXFleet(unitName: string, file: UnitFile, opts: XFleetOptions = {}): XFleetReading {
  const values = new Map<XFleetOption, XFleetValue[]>();
  const warnings: string[] = [];
  for (const section of file.sections) {
    if (section.name !== XFLEET_SECTION) continue;
    for (const { key, value } of section.entries) {
      const option = Object.hasOwn(XFLEET_KEYS, key) ? XFLEET_KEYS[key] : undefined;
      if (option === undefined) {
        if (opts.allowUnknownKeys !== true) throw unknownKey(key, unitName);
        warnings.push(`${unitName}: unknown [X-Fleet] key ${key}= is ignored${didYouMean(key)}`);
        continue;
      }
      const instead = DEPRECATED_XFLEET_KEYS[key];
      if (instead !== undefined) warnings.push(`${unitName}: [X-Fleet] ${key}= is deprecated; use ${instead}=`);
      if (value === '') {
        values.set(option, []);
        continue;
      }
      const list = values.get(option) ?? [];
      for (const raw of splitQuoted(value)) {
        const piece = expandSpecifiers(raw, unitName);
        const expanded = piece !== raw;
        const pieces = option === 'conflicts' ? splitFields(piece) : [piece];
        for (const v of pieces) if (v !== '') list.push({ key, value: v, expanded });
      }
      values.set(option, list);
    }
  }
  return { values, warnings };
}

/**
 * An unknown key is refused: a typo such as MachineMetdata= would otherwise
 * drop the requirement and let the unit run anywhere.
 */
function unknownKey(key: string, unit: string): UnitError {
  const hint = didYouMean(key);
  const known = hint === '' ? ` (known: ${CURRENT_KEYS.join(', ')})` : '';
  return new UnitError('xfleet.unknown-key', `unknown [X-Fleet] key ${key}=${hint}${known}`, { unit });
}

function didYouMean(key: string): string {
  const near = closest(key, Object.keys(XFLEET_KEYS));
  return near === undefined ? '' : `; did you mean ${near}=?`;
}

/**
 * fleet's multi-value rule: a value that begins and ends with `"` holds
 * several values separated by spaces outside the quotes, quotes removed:
 * `"region=us-east" "disk=ssd"` → region=us-east, disk=ssd. Any other value is
 * one value, quotes and all. Empty pieces (from doubled spaces) are dropped
 * here, where fleet kept them as empty requirements.
 */
export function splitQuoted(value: string): string[] {
  if (!(value.startsWith('"') && value.endsWith('"'))) return [value];
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') {
      quoted = !quoted;
    } else if (ch === ' ' && !quoted) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  out.push(current);
  return out.filter((v) => v !== '');
}

// Go's unicode.IsSpace, which strings.Fields (fleet's Conflicts split) uses.
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Go's strings.Fields: the non-empty runs between white space. */
export function splitFields(value: string): string[] {
  return value.split(GO_SPACE).filter((v) => v !== '');
}
