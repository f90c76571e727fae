// What this machine should run: its own schedule, plus the global units
// whose metadata it matches, minus conflicts. A plain function over plain
// data, so every rule is tested without etcd or systemd.
import { globMatch } from '../unit/glob.js';
import { metadataSatisfied } from '../unit/metadata.js';
import type { Requirements } from '../unit/requirements.js';

export type RunState = 'loaded' | 'launched';

export interface ScheduledUnit {
  name: string;
  hash: string;
  state: RunState;
  /** Known once the unit file has been read; used to check conflicts with global units. */
  requirements?: Requirements | undefined;
}

export interface GlobalUnit {
  name: string;
  hash: string;
  state: 'inactive' | RunState;
  /** Undefined while the unit file has not been read yet: such a unit is not run yet. */
  requirements: Requirements | undefined;
}

export interface DesiredUnit {
  name: string;
  hash: string;
  state: RunState;
}

export interface DesiredInput {
  machineId: string;
  metadata: Readonly<Record<string, string>>;
  schedule: readonly ScheduledUnit[];
  globals: readonly GlobalUnit[];
}

export interface DesiredResult {
  units: Map<string, DesiredUnit>;
  /** Units left out, with why (logged by the agent). */
  excluded: { unit: string; reason: string }[];
}

export function desiredUnits(input: DesiredInput): DesiredResult {
  const units = new Map<string, DesiredUnit>();
  const excluded: { unit: string; reason: string }[] = [];
  const accepted: { name: string; conflicts: readonly string[] }[] = [];

  const conflictsWith = (name: string, conflicts: readonly string[]): string | undefined => {
    for (const other of accepted) {
      if (other.name === name) continue;
      if (conflicts.some((p) => safeMatch(p, other.name)) || other.conflicts.some((p) => safeMatch(p, name))) return other.name;
    }
    return undefined;
  };

  // Global units first, in name order: like the engine, a global unit wins
  // over a scheduled one it conflicts with.
  for (const g of [...input.globals].sort((a, b) => cmp(a.name, b.name))) {
    if (g.state === 'inactive' || !g.requirements) continue;
    if (!metadataSatisfied(g.requirements.machineMetadata, input.metadata)) continue;
    const clash = conflictsWith(g.name, g.requirements.conflicts);
    if (clash) {
      excluded.push({ unit: g.name, reason: `conflicts with ${clash}` });
      continue;
    }
    accepted.push({ name: g.name, conflicts: g.requirements.conflicts });
    units.set(g.name, { name: g.name, hash: g.hash, state: g.state });
  }
  for (const s of [...input.schedule].sort((a, b) => cmp(a.name, b.name))) {
    if (units.has(s.name)) continue;
    const clash = conflictsWith(s.name, s.requirements?.conflicts ?? []);
    if (clash) {
      excluded.push({ unit: s.name, reason: `conflicts with global unit ${clash}` });
      continue;
    }
    accepted.push({ name: s.name, conflicts: s.requirements?.conflicts ?? [] });
    units.set(s.name, { name: s.name, hash: s.hash, state: s.state });
  }
  return { units, excluded };
}

function safeMatch(pattern: string, name: string): boolean {
  try {
    return globMatch(pattern, name);
  } catch {
    return false;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
