/**
 * The static half of "can this machine run this unit": MachineID and
 * MachineMetadata, which depend only on the machine, not on what else is
 * scheduled. (Conflicts, Replaces and MachineOf depend on the schedule and
 * live in the scheduler.)
 */
import { metadataSatisfied } from '../unit/metadata.js';
import type { MetadataRequirement, Requirements } from '../unit/requirements.js';

export interface MachineLike {
  id: string;
  metadata: Readonly<Record<string, string>>;
}

/** The machine a unit is pinned to: MachineID, else the deprecated MachineBootID (as fleet did). */
export function requiredMachineId(req: Requirements): string | undefined {
  return req.machineId ?? req.machineBootId;
}

/** A MachineID value names this machine: its full ID, or its 8-character short form. */
export function machineIdMatches(machineId: string, wanted: string): boolean {
  return machineId === wanted || (wanted.length === 8 && machineId.startsWith(wanted));
}

/** The 8-character short form shown to users (as `flotctl list-machines` does). */
export function shortId(machineId: string): string {
  return machineId.slice(0, 8);
}

/**
 * The machines units may be placed on: the live ones not being drained. A
 * draining machine is infeasible for every unit, so the scheduler moves its
 * units off as it would a machine gone, while the machine stays present
 * (flotctl drain; test/integration/engine.test.ts "moves every unit off a
 * drained machine ...").
 */
export function schedulableMachines<M extends MachineLike>(live: Iterable<M>, draining: { has(id: string): boolean }): M[] {
  const out: M[] = [];
  for (const m of live) if (!draining.has(m.id)) out.push(m);
  return out;
}

/** MachineID (if any) and MachineMetadata both hold on this machine. */
export function staticallyAble(req: Requirements, machine: MachineLike): boolean {
  const wanted = requiredMachineId(req);
  if (wanted !== undefined && !machineIdMatches(machine.id, wanted)) return false;
  return metadataSatisfied(req.machineMetadata, machine.metadata);
}

/** `role=db`, `role=db|web`, `role!=db`, joined by spaces: how reasons quote MachineMetadata. */
export function formatMetadata(reqs: readonly MetadataRequirement[]): string {
  return reqs.map((r) => `${r.key}${r.negate ? '!=' : '='}${r.values.join('|')}`).join(' ');
}

/**
 * Which machines satisfy a unit's static requirements, computed once per
 * distinct requirement (units of one template share theirs) rather than
 * once per unit and machine.
 */
export class StaticMatches {
  private readonly machines: readonly MachineLike[];
  private readonly cache = new Map<string, StaticMatch>();

  /** `machines` in rank order (sorted by id). */
  constructor(machines: readonly MachineLike[]) {
    this.machines = machines;
  }

  /**
   * The machines (by rank) able to run a unit with these requirements,
   * ignoring the schedule. A global unit goes by its metadata alone (fleet
   * refuses MachineID on a global unit; should one slip through, it is not
   * read as "global on one machine").
   */
  of(req: Requirements): StaticMatch {
    const wanted = req.global ? undefined : requiredMachineId(req);
    if (wanted === undefined && req.machineMetadata.length === 0) return this.all();
    const key = signature(wanted, req.machineMetadata);
    let found = this.cache.get(key);
    if (found === undefined) {
      const mask = new Uint8Array(this.machines.length);
      const ranks: number[] = [];
      this.machines.forEach((m, rank) => {
        if ((wanted === undefined || machineIdMatches(m.id, wanted)) && metadataSatisfied(req.machineMetadata, m.metadata)) {
          mask[rank] = 1;
          ranks.push(rank);
        }
      });
      found = { everywhere: ranks.length === this.machines.length, mask, ranks };
      this.cache.set(key, found);
    }
    return found;
  }

  private all(): StaticMatch {
    let found = this.cache.get('');
    if (found === undefined) {
      const n = this.machines.length;
      found = { everywhere: true, mask: new Uint8Array(n).fill(1), ranks: Array.from({ length: n }, (_, r) => r) };
      this.cache.set('', found);
    }
    return found;
  }
}

export interface StaticMatch {
  /** Every live machine qualifies. */
  everywhere: boolean;
  /** mask[rank] === 1 when that machine qualifies. */
  mask: Uint8Array;
  /** The qualifying ranks, ascending. */
  ranks: readonly number[];
}

function signature(machineId: string | undefined, reqs: readonly MetadataRequirement[]): string {
  const parts = reqs.map((r) => `${r.negate ? '!' : '='}${r.key}\u0000${r.values.length === 1 ? r.values[0] : [...r.values].sort().join('\u0000')}`);
  if (parts.length > 1) parts.sort();
  return `${machineId ?? ''}\u0001${parts.join('\u0001')}`;
}
