// The agent's plan: from what this machine should run and what it runs now,
// the ordered tasks that converge the two. Unloads first (freeing names and
// resources), then loads, one daemon-reload if a loaded file changed, stops,
// and starts. A running unit is stopped before it is unloaded or replaced,
// one pass earlier. Pure, so every transition is tested without systemd.
import type { DesiredUnit } from './desired.js';

export interface LocalUnit {
  name: string;
  /** Hash of the unit file flotilla wrote for it, if any. */
  hash: string | undefined;
  loadState: string;
  activeState: string;
  subState: string;
  /** Whether this agent started it (or found it running) and has not stopped it since. */
  launched: boolean;
}

export type Task =
  | { kind: 'unload'; name: string }
  | { kind: 'load'; name: string; hash: string }
  | { kind: 'reload' }
  | { kind: 'stop'; name: string }
  | { kind: 'start'; name: string };

const RUNNING = new Set(['active', 'activating', 'reloading']);

export function isRunning(activeState: string): boolean {
  return RUNNING.has(activeState);
}

/**
 * Jobs are fired, not awaited, so a unit may still be running or stopping
 * when it is to be unloaded or replaced: it is stopped first, and its file is
 * removed only in a later pass, once systemd reports it stopped (removing it
 * under a job in flight would race the job).
 */
function settled(l: LocalUnit): boolean {
  return !isRunning(l.activeState) && l.activeState !== 'deactivating';
}

export function planTasks(desired: ReadonlyMap<string, DesiredUnit>, local: ReadonlyMap<string, LocalUnit>): Task[] {
  const unload: Task[] = [];
  const load: Task[] = [];
  const stop: Task[] = [];
  const start: Task[] = [];
  let reload = false;

  for (const [name, l] of sorted(local)) {
    const d = desired.get(name);
    if (!d) {
      if (!(l.hash !== undefined || l.launched || isRunning(l.activeState))) continue;
      if (settled(l)) unload.push({ kind: 'unload', name });
      else if (isRunning(l.activeState)) stop.push({ kind: 'stop', name });
    }
  }
  for (const [name, d] of sorted(desired)) {
    const l = local.get(name);
    const replaced = l?.hash !== undefined && l.hash !== d.hash;
    if (l && replaced && !settled(l)) {
      if (isRunning(l.activeState)) stop.push({ kind: 'stop', name });
      continue;
    }
    if (!l || l.hash === undefined || replaced) {
      // A changed file replaces the (stopped) unit: unload the old one, load
      // the new one, and start it again if it should run.
      if (replaced) unload.push({ kind: 'unload', name });
      load.push({ kind: 'load', name, hash: d.hash });
      // systemd keeps a loaded unit's old definition until a reload.
      if (l && l.loadState !== 'not-found' && l.loadState !== '') reload = true;
      if (d.state === 'launched') start.push({ kind: 'start', name });
      continue;
    }
    if (d.state === 'launched' && !l.launched) start.push({ kind: 'start', name });
    if (d.state === 'loaded' && (l.launched || isRunning(l.activeState))) stop.push({ kind: 'stop', name });
  }
  return [...unload, ...load, ...(reload ? [{ kind: 'reload' } as const] : []), ...stop, ...start];
}

function sorted<V>(m: ReadonlyMap<string, V>): [string, V][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
