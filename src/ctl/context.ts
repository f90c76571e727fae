// What every command runs with: its I/O, the global options, and the driver
// (connected on first use, closed when the command ends).
import type { CtlDriver } from './driver.js';
import type { CtlIO } from './io.js';
import { createDriver, type GlobalOptions } from './options.js';

export interface CtlContextOptions {
  /** Replaces createDriver (tests). */
  driverFactory?: ((g: GlobalOptions) => CtlDriver) | undefined;
  /** Length of one --block-attempts attempt, ms (default 2000, as fleetctl). */
  attemptMs?: number | undefined;
}

export class CtlContext {
  private driverInstance: CtlDriver | undefined;
  readonly attemptMs: number;

  constructor(
    readonly io: CtlIO,
    readonly globals: GlobalOptions,
    private readonly opts: CtlContextOptions = {},
  ) {
    this.attemptMs = opts.attemptMs ?? 2_000;
  }

  driver(): CtlDriver {
    this.driverInstance ??= (this.opts.driverFactory ?? createDriver)(this.globals);
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
    await d?.close();
  }
}
