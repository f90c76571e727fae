// flotctl drain and undrain: a machine taken out of scheduling on purpose.
// Drain marks it (the engine then moves its units elsewhere and places none
// there) and waits, with progress, until each of its units is running
// elsewhere; the machine stays present and marked until undrain. Stopping
// flotillad is not a drain: by default its units keep running (shutdown=keep).
import type { CtlContext } from './context.js';
import type { CtlDriver, MachineInfo } from './driver.js';
import { CtlError } from './errors.js';
import { waitFor, type WaitTarget } from './wait.js';

/** The machine an argument names: its full ID or a prefix of one machine's ID. */
export function resolveMachine(machines: readonly MachineInfo[], arg: string): MachineInfo {
  const exact = machines.find((m) => m.id === arg);
  if (exact) return exact;
  const found = arg === '' ? [] : machines.filter((m) => m.id.startsWith(arg));
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new CtlError(`no machine ${JSON.stringify(arg)}; see flotctl list-machines`);
  throw new CtlError(`machine ${JSON.stringify(arg)} is ambiguous: ${found.map((m) => m.id).join(', ')}`);
}

function drainable(driver: CtlDriver): asserts driver is CtlDriver & { setDraining(machine: string, draining: boolean): Promise<void> } {
  if (!driver.setDraining) throw new CtlError('drain and undrain need the etcd driver (--driver=etcd): the API has no drain request yet');
}

/** attempts: -1 do not wait, 0 wait forever, N attempts. */
export async function drain(ctx: CtlContext, arg: string, attempts: number): Promise<void> {
  const driver = await ctx.driver();
  drainable(driver);
  const machine = resolveMachine(await driver.listMachines(), arg);
  const watch = attempts >= 0 ? await driver.watch() : undefined;
  try {
    // The units decided onto it, read before the mark: the engine moves each (global units stay, as the agents place those).
    const units = watch ? (await driver.listUnits()).filter((u) => !u.global && u.machine === machine.id) : [];
    await driver.setDraining(machine.id, true);
    ctx.out(`Machine ${machine.id} draining\n`);
    if (!watch) return;
    const targets: WaitTarget[] = units.map((u) => ({ unit: u.name, goal: u.desiredState === 'launched' ? 'launched' : 'loaded', awayFrom: machine.id }));
    await waitFor(watch, targets, { attempts, attemptMs: ctx.attemptMs, io: ctx.io, verb: 'moved' });
    ctx.out(`Machine ${machine.id} drained: ${units.length} unit${units.length === 1 ? '' : 's'} moved; it takes no unit until flotctl undrain\n`);
  } finally {
    await watch?.close().catch(() => undefined);
  }
}

export async function undrain(ctx: CtlContext, arg: string): Promise<void> {
  const driver = await ctx.driver();
  drainable(driver);
  // A machine not present may still be marked: clear the mark by full ID then.
  const machines = await driver.listMachines();
  const id = machines.some((m) => m.id === arg) || machines.every((m) => !m.id.startsWith(arg)) ? arg : resolveMachine(machines, arg).id;
  await driver.setDraining(id, false);
  ctx.out(`Machine ${id} takes units again\n`);
}
