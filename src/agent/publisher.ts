// Publishes what systemd says about this machine's units, as it changes,
// bound to the agent's lease; removes what is no longer here. Changes are
// batched into a few transactions.
import type { Logger } from '../log.js';
import type { Registry, RegistryLease, StateRecord } from '../registry/index.js';
import { Backoff } from '../retry.js';

export interface ObservedState {
  unit: string;
  hash: string;
  loadState: string;
  activeState: string;
  subState: string;
}

export class StatePublisher {
  private readonly published = new Map<string, StateRecord>();
  private readonly wanted = new Map<string, ObservedState>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lease: RegistryLease | undefined;
  /** Delays between failed writes; reset by a write that succeeds. */
  private readonly backoff = new Backoff();

  constructor(
    private readonly registry: Registry,
    private readonly machine: string,
    private readonly log: Logger,
    private readonly delayMs = 10,
  ) {}

  /** The lease states are bound to; a new one republishes everything, none pauses publishing. */
  setLease(lease: RegistryLease | undefined): void {
    this.lease = lease;
    this.published.clear();
    this.schedule();
  }

  set(state: ObservedState): void {
    this.wanted.set(state.unit, state);
    this.schedule();
  }

  remove(unit: string): void {
    if (this.wanted.delete(unit) || this.published.has(unit)) this.schedule();
  }

  units(): string[] {
    return [...this.wanted.keys()];
  }

  /** Writes what is pending now; resolves when done. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    this.flushing = this.write().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then(
        () => this.backoff.reset(),
        (err: unknown) => {
          const delayMs = this.backoff.next();
          this.log.warn('publishing unit states failed; will retry', { error: (err as Error).message, delayMs });
          setTimeout(() => this.schedule(), delayMs).unref();
        },
      );
    }, this.delayMs);
  }

  private async write(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.lost) return;
    const changed: StateRecord[] = [];
    for (const s of this.wanted.values()) {
      const prev = this.published.get(s.unit);
      if (prev && prev.hash === s.hash && prev.loadState === s.loadState && prev.activeState === s.activeState && prev.subState === s.subState) {
        continue;
      }
      changed.push({ ...s, machine: this.machine, since: new Date().toISOString() });
    }
    const gone = [...this.published.keys()].filter((u) => !this.wanted.has(u));
    if (changed.length > 0) await this.registry.publishStates(changed, lease);
    if (gone.length > 0) await this.registry.deleteStates(gone.map((unit) => ({ unit, machine: this.machine })));
    for (const s of changed) this.published.set(s.unit, s);
    for (const u of gone) this.published.delete(u);
  }
}
