/**
 * Small builders for scheduler tests. Requirements are written by hand
 * (not parsed from unit files) so these tests do not depend on the parser.
 */
import type { MetadataRequirement, Requirements } from '../../../src/unit/requirements.js';
import type { ClusterState, DesiredState, MachineInfo, Plan, SchedulableUnit } from '../../../src/engine/scheduler.js';
import { applyPlan, schedule } from '../../../src/engine/scheduler.js';

export function fakeRequirements(partial: Partial<Requirements> = {}): Requirements {
  return { machineOf: [], machineMetadata: [], conflicts: [], replaces: [], global: false, ...partial };
}

/** `md('role=db', 'role=web', 'disk!=hdd')` → grouped requirements, like the parser gives. */
export function md(...pairs: string[]): MetadataRequirement[] {
  const out: MetadataRequirement[] = [];
  for (const pair of pairs) {
    const negate = pair.includes('!=');
    const [key, value] = pair.split(negate ? '!=' : '=') as [string, string];
    const same = out.find((r) => r.key === key && r.negate === negate);
    if (same) same.values.push(value);
    else out.push({ key, values: [value], negate });
  }
  return out;
}

export function unit(name: string, req: Partial<Requirements> = {}, desiredState: DesiredState = 'launched'): SchedulableUnit {
  return { name, desiredState, requirements: fakeRequirements(req) };
}

export function machine(id: string, metadata: Record<string, string> = {}): MachineInfo {
  return { id, metadata };
}

export function cluster(
  units: SchedulableUnit[],
  machines: MachineInfo[],
  decisions: Record<string, string> | ReadonlyMap<string, string> = {},
): ClusterState {
  return {
    units,
    machines,
    decisions: decisions instanceof Map ? decisions : new Map(Object.entries(decisions)),
  };
}

/** Schedules and applies: the decisions after the plan, plus the plan. */
export function settle(state: ClusterState): { plan: Plan; decisions: Map<string, string> } {
  const plan = schedule(state);
  return { plan, decisions: applyPlan(state.decisions, plan) };
}

/** The decisions after one round, as a plain object for readable expectations. */
export function placed(state: ClusterState): Record<string, string> {
  return Object.fromEntries([...settle(state).decisions].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function pendingReasons(plan: Plan): Record<string, string> {
  return Object.fromEntries(plan.pending.map((p) => [p.unit, p.reason]));
}
