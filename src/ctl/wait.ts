// Blocking: waiting until units reach a state, as agents report it. The
// wait is driven by a watch (each change re-judges the units), bounded by
// --block-attempts attempts of a fixed length; 0 attempts waits forever.
import type { ClusterWatch, MachineInfo, Observation, UnitStateInfo } from './driver.js';
import { CtlError } from './errors.js';
import { machineLegend } from './format.js';
import type { CtlIO } from './io.js';
import { isRunning } from './state.js';

/** loaded: loaded and not running; launched: running; gone: no machine has it any more. */
export type Goal = 'loaded' | 'launched' | 'gone';

export interface WaitTarget {
  unit: string;
  goal: Goal;
  /** The file the agent must report running (after --replace, the new one). */
  hash?: string | undefined;
  /** Global units: judged on each of `machines` (no decision exists). */
  global?: boolean | undefined;
  /** For global units: the machines that must reach the goal. */
  machines?: readonly string[] | undefined;
  /** Printed when the goal is reached, instead of the default `Unit X <state> on <machine>`. */
  doneText?: string | undefined;
  /** flotctl drain: the machine the unit must leave first (decision and running report gone); pending afterwards counts as done. */
  awayFrom?: string | undefined;
}

export type Verdict = { status: 'done'; message: string } | { status: 'waiting'; why: string } | { status: 'failed'; why: string };

const STOPPED = new Set(['inactive', 'failed']);

function legendOf(id: string, machine: (id: string) => MachineInfo | undefined): string {
  return machineLegend(id, machine(id)?.publicIp || undefined, false);
}

function reportReached(s: UnitStateInfo, goal: 'loaded' | 'launched', hash: string | undefined): boolean {
  if (hash && s.hash && s.hash !== hash) return false;
  if (s.loadState !== 'loaded') return false;
  return goal === 'launched' ? isRunning(s) : STOPPED.has(s.activeState);
}

function describeReport(s: UnitStateInfo, hash: string | undefined): string {
  if (hash && s.hash && s.hash !== hash) return 'still runs the previous version of the file';
  return `reports ${s.loadState}/${s.activeState}/${s.subState}`;
}

/** Judges one unit against its goal, from what is known now. Pure. */
export function judge(t: WaitTarget, obs: Observation, machine: (id: string) => MachineInfo | undefined): Verdict {
  if (t.goal === 'gone') {
    if (obs.decisions.length === 0 && obs.states.length === 0) return { status: 'done', message: t.doneText ?? `Unit ${t.unit} inactive` };
    const where = obs.states.length > 0 ? obs.states.map((s) => s.machine) : obs.decisions.map((d) => d.machine);
    return { status: 'waiting', why: `still on ${where.map((m) => legendOf(m, machine)).join(', ')}` };
  }
  if (t.awayFrom !== undefined) {
    const from = t.awayFrom;
    if (obs.decisions.some((d) => d.machine === from) || obs.states.some((s) => s.machine === from && isRunning(s))) {
      return { status: 'waiting', why: `still on ${legendOf(from, machine)}` };
    }
    if (obs.pending && !obs.decisions.some((d) => d.machine !== from)) {
      return { status: 'done', message: `Unit ${t.unit} off ${legendOf(from, machine)}, pending: ${obs.pending.reason}` };
    }
  }
  const goal = t.goal;
  if (t.global) {
    const machines = t.machines ?? [];
    const missing: string[] = [];
    for (const m of machines) {
      const s = obs.states.find((x) => x.machine === m);
      if (!s || !reportReached(s, goal, t.hash)) missing.push(m);
    }
    if (missing.length === 0) {
      const where = machines.length > 0 ? ` on ${machines.length} machine${machines.length === 1 ? '' : 's'}` : '';
      return { status: 'done', message: t.doneText ?? `Unit ${t.unit} ${goal}${where}` };
    }
    return { status: 'waiting', why: `not yet ${goal} on ${missing.map((m) => legendOf(m, machine)).join(', ')}` };
  }
  const decision = obs.decisions.find((d) => d.state === goal);
  if (!decision) {
    if (obs.pending) return { status: 'waiting', why: `pending: ${obs.pending.reason}` };
    return { status: 'waiting', why: obs.decisions.length > 0 ? 'waiting for the engine to act on the new state' : 'waiting for the engine to schedule it' };
  }
  const legend = legendOf(decision.machine, machine);
  const s = obs.states.find((x) => x.machine === decision.machine);
  if (!s) return { status: 'waiting', why: `scheduled on ${legend}, no report from its agent yet` };
  if (reportReached(s, goal, t.hash)) return { status: 'done', message: t.doneText ?? `Unit ${t.unit} ${goal} on ${legend}` };
  if (goal === 'launched' && s.activeState === 'failed' && !(t.hash && s.hash && s.hash !== t.hash)) {
    return { status: 'failed', why: `failed on ${legend} (${s.subState})` };
  }
  return { status: 'waiting', why: `on ${legend}: ${describeReport(s, t.hash)}` };
}

export interface WaitOptions {
  /** 0: forever. */
  attempts: number;
  attemptMs: number;
  io: CtlIO;
  /** Verb for the progress line, e.g. "launched". */
  verb?: string | undefined;
}

/** `12/100 launched, 3.4s, slowest: web@7.service (pending: ...)`, cut to width. Pure. */
export function progressLine(p: { done: number; total: number; verb: string; elapsedMs: number; slowest?: { unit: string; why: string } | undefined }, width = 100): string {
  let line = `${p.done}/${p.total} ${p.verb}, ${(p.elapsedMs / 1000).toFixed(1)}s`;
  if (p.slowest) line += `, slowest: ${p.slowest.unit} (${p.slowest.why})`;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 3))}...` : line;
}

/**
 * Waits until every target reaches its goal, printing each success as it
 * happens. Throws CtlError when a unit fails or the attempts run out,
 * naming each unit still waited for and why.
 */
export async function waitFor(watch: ClusterWatch, targets: readonly WaitTarget[], opts: WaitOptions): Promise<void> {
  if (targets.length === 0) return;
  const started = Date.now();
  const open = new Map(targets.map((t) => [t.unit, t]));
  const lastWhy = new Map<string, string>();
  const failures: string[] = [];
  const showProgress = opts.io.stderrIsTTY && targets.length > 1;
  let progressShown = false;
  const clearProgress = (): void => {
    if (progressShown) opts.io.err('\r\x1b[K');
    progressShown = false;
  };

  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = (): void => undefined;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearInterval(t);
      unsubscribe();
      clearProgress();
      if (err) reject(err);
      else resolve();
    };
    const evaluate = (): void => {
      if (finished) return;
      const done: string[] = [];
      for (const t of open.values()) {
        const v = judge(t, watch.observe(t.unit), (id) => watch.machine(id));
        if (v.status === 'waiting') {
          lastWhy.set(t.unit, v.why);
          continue;
        }
        open.delete(t.unit);
        if (v.status === 'done') done.push(v.message);
        else failures.push(`${t.unit} ${v.why}`);
      }
      if (done.length > 0) {
        clearProgress();
        opts.io.out(done.map((m) => `${m}\n`).join(''));
      }
      if (open.size === 0) {
        finish(failures.length > 0 ? new CtlError(failures.length === 1 ? `unit ${failures[0]}` : `units failed: ${failures.join('; ')}`) : undefined);
      }
    };
    const drawProgress = (): void => {
      if (!showProgress || finished) return;
      const first = open.values().next().value;
      const line = progressLine({
        done: targets.length - open.size,
        total: targets.length,
        verb: opts.verb ?? 'done',
        elapsedMs: Date.now() - started,
        slowest: first ? { unit: first.unit, why: lastWhy.get(first.unit) ?? 'waiting' } : undefined,
      });
      opts.io.err(`\r\x1b[K${line}`);
      progressShown = true;
    };
    let queued = false;
    unsubscribe = watch.onChange(() => {
      if (queued) return;
      queued = true;
      setImmediate(() => {
        queued = false;
        evaluate();
      });
    });
    evaluate();
    if (finished) return;
    // A slow re-check as well, for drivers whose watch is a poll.
    timers.push(setInterval(evaluate, 1_000));
    if (showProgress) {
      drawProgress();
      timers.push(setInterval(drawProgress, 200));
    }
    if (opts.attempts > 0) {
      const deadline = setTimeout(() => {
        evaluate();
        if (finished) return;
        const waiting = [...open.keys()].map((u) => `${u} (${lastWhy.get(u) ?? 'waiting'})`);
        const shown = waiting.slice(0, 5).join('; ') + (waiting.length > 5 ? `; and ${waiting.length - 5} more` : '');
        const secs = ((opts.attempts * opts.attemptMs) / 1000).toFixed(opts.attemptMs % 1000 === 0 ? 0 : 1);
        finish(new CtlError(`timed out after ${opts.attempts} attempt${opts.attempts === 1 ? '' : 's'} (${secs}s) waiting for ${waiting.length} unit${waiting.length === 1 ? '' : 's'}: ${shown}`));
      }, opts.attempts * opts.attemptMs);
      timers.push(deadline);
    }
  });
}
