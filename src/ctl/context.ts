// What every command runs with: its I/O, the global options, and the driver
// (loaded and connected on first use, closed when the command ends).
import type { CtlDriver } from './driver.js';
import type { CtlIO } from './io.js';
import { createDriver, type GlobalOptions } from './options.js';

export interface CtlContextOptions {
  /** Replaces createDriver (tests). */
  driverFactory?: ((g: GlobalOptions) => CtlDriver | Promise<CtlDriver>) | undefined;
  /** Length of one --block-attempts attempt, ms (default 2000, as fleetctl). */
  attemptMs?: number | undefined;
}

export class CtlContext {
  private driverInstance: Promise<CtlDriver> | undefined;
  readonly attemptMs: number;

  constructor(
    readonly io: CtlIO,
    readonly globals: GlobalOptions,
    private readonly opts: CtlContextOptions = {},
  ) {
    this.attemptMs = opts.attemptMs ?? 2_000;
  }

  /** The driver, created on the first call (its module is imported then). */
  driver(): Promise<CtlDriver> {
    this.driverInstance ??= Promise.resolve((this.opts.driverFactory ?? createDriver)(this.globals));
    return this.driverInstance;
  }

  out(text: string): void {
    this.io.out(text);
  }

  /** A warning: `flotctl: warning: ...` on stderr. */
  warn(msg: string): void {
    this.io.err(`flotctl: warning: ${msg}\n`);
  }

  async close(): Promise<void> {
    const d = this.driverInstance;
    this.driverInstance = undefined;
    // A driver that failed to come up has nothing to close; its error was the command's.
    const driver = await d?.catch(() => undefined);
    await driver?.close();
  }
}
