// The flows behind submit, load, start, stop, unload, restart and destroy:
// check everything first, write, then (unless told not to) wait for agents
// to report the result.
import { UnitNotFoundError, type DesiredState } from '../registry/index.js';
import type { CtlContext } from './context.js';
import type { ClusterWatch, StoredUnit, UnitInfo } from './driver.js';
import { CtlError, UsageError } from './errors.js';
import { localReader, planSubmit, refuseTemplates, unitNames } from './units.js';
import { waitFor, type Goal, type WaitTarget } from './wait.js';

/** --no-block and --block-attempts as one number: -1 do not wait, 0 wait forever, N attempts. */
export function blockAttempts(opts: { noBlock?: boolean | undefined; blockAttempts?: number | undefined }): number {
  const n = opts.blockAttempts;
  if (opts.noBlock && n !== undefined) throw new UsageError('--no-block and --block-attempts cannot be used together');
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw new UsageError('--block-attempts must be a whole number, 0 or more (0 waits forever)');
  return opts.noBlock ? -1 : (n ?? 0);
}

/** What submit, load and start take: --replace and --allow-unknown-keys. */
export interface SubmitFlags {
  replace: boolean;
  allowUnknownKeys?: boolean | undefined;
}

/** Submits units not yet in the registry (and with replace, changed ones). */
export async function submitUnits(ctx: CtlContext, args: readonly string[], flags: SubmitFlags): Promise<void> {
  await submit(ctx, args, flags);
}

/**
 * Submits as submitUnits does; given a state, and when the driver can, the
 * units it writes get that desired state in the same writes. Returns those
 * units (written with the state), so the caller neither reads them back nor
 * sets their state again: for new units, start is two requests, not five,
 * and the engine sees one change, not two.
 */
async function submit(ctx: CtlContext, args: readonly string[], flags: SubmitFlags, state?: DesiredState): Promise<Map<string, StoredUnit>> {
  const driver = await ctx.driver();
  const { replace, allowUnknownKeys } = flags;
  const plan = await planSubmit(driver, args, { replace, allowUnknownKeys, read: localReader(ctx.io.cwd) });
  for (const w of plan.warnings) ctx.warn(w);
  const written = new Map<string, StoredUnit>();
  if (plan.writes.length === 0) return written;
  const inState = state !== undefined && driver.createUnitsInState !== undefined;
  const results = inState ? await driver.createUnitsInState!(plan.writes, flags, state) : await driver.createUnits(plan.writes, flags);
  for (const w of plan.writes) {
    const r = results.get(w.name);
    if (r === 'created') ctx.out(`Unit ${w.name} inactive\n`);
    else if (r === 'replaced') ctx.out(`Unit ${w.name} replaced\n`);
    if (inState && (r === 'created' || r === 'replaced')) written.set(w.name, { ...w, desiredState: state });
  }
  return written;
}

async function storedOrFail(ctx: CtlContext, names: readonly string[]): Promise<Map<string, StoredUnit>> {
  const stored = await (await ctx.driver()).getStoredUnits(names);
  const missing = names.filter((n) => !stored.has(n));
  if (missing.length > 0) throw new CtlError(missing.length === 1 ? `unit ${missing[0]} does not exist` : `units do not exist: ${missing.join(', ')}`);
  return stored;
}

async function unitsOrFail(ctx: CtlContext, names: readonly string[]): Promise<Map<string, UnitInfo>> {
  const units = await (await ctx.driver()).getUnits(names);
  const missing = names.filter((n) => !units.has(n));
  if (missing.length > 0) throw new CtlError(missing.length === 1 ? `unit ${missing[0]} does not exist` : `units do not exist: ${missing.join(', ')}`);
  return units;
}

/** Runs fn with a watch open (started beside the writes fn makes), closed afterwards. */
async function withWatch<T>(ctx: CtlContext, wanted: boolean, fn: (watch: () => Promise<ClusterWatch>) => Promise<T>): Promise<T> {
  let pending: Promise<ClusterWatch> | undefined;
  if (wanted) {
    pending = ctx.driver().then((d) => d.watch());
    pending.catch(() => undefined);
  }
  try {
    return await fn(() => pending ?? ctx.driver().then((d) => d.watch()));
  } finally {
    if (pending) await pending.then((w) => w.close()).catch(() => undefined);
  }
}

function wait(ctx: CtlContext, watch: ClusterWatch, targets: WaitTarget[], attempts: number, verb: string): Promise<void> {
  return waitFor(watch, targets, { attempts, attemptMs: ctx.attemptMs, io: ctx.io, verb });
}

/** load / start: submit what is missing, set the desired state, wait for it (not for global units). */
export async function loadOrStart(ctx: CtlContext, args: readonly string[], state: 'loaded' | 'launched', opts: SubmitFlags & { attempts: number }): Promise<void> {
  const names = unitNames(args);
  refuseTemplates(names, state === 'launched' ? 'started' : 'loaded');
  const written = await submit(ctx, args, opts, state);
  const rest = names.filter((n) => !written.has(n));
  const stored = new Map([...written, ...(rest.length > 0 ? await storedOrFail(ctx, rest) : [])]);
  await transition(ctx, names, stored, state, state === 'launched' ? 'start' : 'load', opts.attempts, undefined, written);
}

async function transition(
  ctx: CtlContext,
  names: readonly string[],
  stored: Map<string, StoredUnit>,
  state: 'loaded' | 'launched' | 'inactive',
  // the command, as fleetctl named it in `Triggered [global] unit NAME VERB`: stop and load both mean loaded
  verb: 'start' | 'load' | 'stop' | 'unload',
  attempts: number,
  gone?: (n: string) => string,
  // units already written in this state (by submit)
  alreadySet?: ReadonlyMap<string, StoredUnit>,
): Promise<void> {
  await withWatch(ctx, attempts >= 0, async (watch) => {
    const toSet = alreadySet ? names.filter((n) => !alreadySet.has(n)) : names;
    if (toSet.length > 0) await (await ctx.driver()).setDesiredState(toSet, state);
    const targets: WaitTarget[] = [];
    for (const n of names) {
      const u = stored.get(n)!;
      if (u.global) ctx.out(`Triggered global unit ${n} ${verb}\n`);
      else if (attempts < 0) ctx.out(`Triggered unit ${n} ${verb}\n`);
      else targets.push({ unit: n, goal: goalOf(state), hash: u.hash, doneText: gone?.(n) });
    }
    if (targets.length > 0) await wait(ctx, await watch(), targets, attempts, progressVerb(state));
  });
}

function goalOf(state: DesiredState): Goal {
  return state === 'inactive' ? 'gone' : state;
}

function progressVerb(state: DesiredState): string {
  return state === 'inactive' ? 'unloaded' : state;
}

/** stop: desired loaded; a unit that is not loaded anywhere (desired inactive) is an error. */
export async function stop(ctx: CtlContext, args: readonly string[], attempts: number): Promise<void> {
  const names = unitNames(args);
  const units = await unitsOrFail(ctx, names);
  for (const n of names) {
    if (units.get(n)!.desiredState === 'inactive') throw new CtlError(`unable to stop unit ${n}: it is inactive (not loaded on any machine)`);
  }
  await transition(ctx, names, units, 'loaded', 'stop', attempts);
}

/** unload: desired inactive; waits until no machine has it. */
export async function unload(ctx: CtlContext, args: readonly string[], attempts: number): Promise<void> {
  const names = unitNames(args);
  const units = await storedOrFail(ctx, names);
  await transition(ctx, names, units, 'inactive', 'unload', attempts);
}

/**
 * destroy: removes the units; waits until no machine has them. A unit that
 * does not exist (or is destroyed meanwhile by someone else) is said so on
 * stderr and is not an error, as with fleetctl: `destroy x@1; start x@1`
 * under `set -e` goes on (test/integration/flotctl/lifecycle.test.ts).
 */
export async function destroy(ctx: CtlContext, args: readonly string[], attempts: number): Promise<void> {
  const names = unitNames(args);
  const driver = await ctx.driver();
  const units = await driver.getStoredUnits(names);
  const absent = new Set(names.filter((n) => !units.has(n)));
  const present = names.filter((n) => !absent.has(n));
  const gone = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof UnitNotFoundError)) throw err;
      for (const n of err.units) absent.add(n);
    }
  };
  await withWatch(ctx, attempts >= 0 && present.length > 0, async (watch) => {
    const targets: WaitTarget[] = [];
    // In a few transactions when the driver can (100 units: ~1.2 s one by one, ~20 ms batched).
    if (driver.destroyUnits && present.length > 0) await gone(() => driver.destroyUnits!(present));
    for (const n of names) {
      if (!driver.destroyUnits && !absent.has(n)) await gone(() => driver.destroyUnit(n));
      if (absent.has(n)) ctx.warn(`unit ${n} does not exist; nothing to destroy`);
      else if (attempts < 0 || units.get(n)!.global) ctx.out(`Destroyed ${n}\n`);
      else targets.push({ unit: n, goal: 'gone', doneText: `Destroyed ${n}` });
    }
    if (targets.length > 0) await wait(ctx, await watch(), targets, attempts, 'destroyed');
  });
}

/**
 * restart: launched → loaded → launched, waiting for each step. A loaded
 * unit is only started. Global units restart on every machine reporting
 * them. The stop step is always waited for (else nothing would restart);
 * --no-block applies to the start step.
 */
export async function restart(ctx: CtlContext, args: readonly string[], attempts: number): Promise<void> {
  const names = unitNames(args);
  const units = await unitsOrFail(ctx, names);
  for (const n of names) {
    if (units.get(n)!.desiredState === 'inactive') throw new CtlError(`unable to restart unit ${n}: it is inactive (not loaded on any machine)`);
  }
  const driver = await ctx.driver();
  const running = names.filter((n) => units.get(n)!.desiredState === 'launched');
  await withWatch(ctx, true, async (watchOf) => {
    const watch = await watchOf();
    const target = (n: string, goal: 'loaded' | 'launched'): WaitTarget => {
      const u = units.get(n)!;
      if (!u.global) return { unit: n, goal, hash: u.hash };
      const machines = watch.observe(n).states.map((s) => s.machine);
      return { unit: n, goal, hash: u.hash, global: true, machines };
    };
    const globalMachines = new Map(names.filter((n) => units.get(n)!.global).map((n) => [n, target(n, 'loaded').machines ?? []]));
    const fixed = (n: string, goal: 'loaded' | 'launched'): WaitTarget => {
      const t = target(n, goal);
      return t.global ? { ...t, machines: globalMachines.get(n) } : t;
    };
    if (running.length > 0) {
      await driver.setDesiredState(running, 'loaded');
      await wait(ctx, watch, running.map((n) => fixed(n, 'loaded')), Math.max(attempts, 0), 'stopped');
    }
    await driver.setDesiredState(names, 'launched');
    if (attempts < 0) {
      for (const n of names) ctx.out(`Triggered unit ${n} start\n`);
      return;
    }
    await wait(ctx, watch, names.map((n) => fixed(n, 'launched')), attempts, 'launched');
  });
}
