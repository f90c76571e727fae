// Deriving what fleet called a unit's current state from the engine's
// decision and what the decided machine's agent reports.
import type { CurrentState, DecisionInfo, UnitStateInfo } from './driver.js';

/** systemd active states that count as running. */
const RUNNING = new Set(['active', 'reloading']);

export function isRunning(s: Pick<UnitStateInfo, 'activeState'>): boolean {
  return RUNNING.has(s.activeState);
}

/**
 * inactive: no decision, or no report from the decided machine; launched:
 * that machine reports it running; loaded: it reports it otherwise.
 */
export function currentState(decision: DecisionInfo | undefined, states: readonly UnitStateInfo[]): CurrentState {
  if (!decision) return 'inactive';
  const report = states.find((s) => s.machine === decision.machine);
  if (!report) return 'inactive';
  return isRunning(report) ? 'launched' : 'loaded';
}
