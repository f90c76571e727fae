// This machine's presence in the registry: its record under a lease of
// agent_ttl, kept alive; registered again (under a new lease) whenever the
// lease is lost, for example after etcd was unreachable for longer than the
// TTL. Units keep running meanwhile: losing etcd never stops them.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { DuplicateMachineError, type MachineRecord, type Registry, type RegistryLease } from '../registry/index.js';
import { retryUntilStopped } from '../retry.js';

export class Presence {
  private lease: RegistryLease | undefined;
  private record: MachineRecord;
  private stopped = false;
  private readonly stopping = new AbortController();
  private readonly events = new EventEmitter();

  constructor(
    private readonly registry: Registry,
    record: MachineRecord,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {
    this.record = record;
  }

  get current(): RegistryLease | undefined {
    return this.lease && !this.lease.lost ? this.lease : undefined;
  }

  /** Called with each lease the machine is registered under (the first, and after each loss). */
  onLease(handler: (lease: RegistryLease) => void): void {
    this.events.on('lease', handler);
  }

  /** Registers for the first time; a duplicate machine ID or an unreachable etcd is thrown. */
  async start(): Promise<void> {
    await this.register();
  }

  /** Changes the record (e.g. metadata after SIGHUP), keeping the lease. */
  async update(record: MachineRecord): Promise<void> {
    this.record = record;
    if (this.current) await this.registry.updateMachine(record, this.current);
  }

  /**
   * With withdraw, removes the machine and everything bound to its lease (its
   * published states), so its units move. Without, only stops keeping the
   * lease alive: the record and states stay for agent_ttl, and the next run
   * takes them over in one transaction (Registry.registerMachine), so a
   * restart never shows the machine absent.
   */
  async stop(opts: { withdraw: boolean }): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    const lease = this.lease;
    this.lease = undefined;
    if (!lease || lease.lost) return;
    if (!opts.withdraw) {
      lease.release();
      return;
    }
    await this.registry.withdrawMachine(this.record.id, lease).catch(() => undefined);
    await lease.revoke().catch(() => undefined);
  }

  private async register(): Promise<void> {
    const lease = await this.registry.grantLease(this.ttlSeconds);
    try {
      await this.registry.registerMachine(this.record, lease);
    } catch (err) {
      await lease.revoke().catch(() => undefined);
      throw err;
    }
    this.lease = lease;
    lease.onLost((err) => {
      if (this.stopped) return;
      this.log.warn('machine lease lost; registering again', { error: err.message });
      void this.reregister();
    });
    this.events.emit('lease', lease);
  }

  private async reregister(): Promise<void> {
    const done = await retryUntilStopped(() => this.register().then(() => true), {
      stopped: () => this.stopped,
      signal: this.stopping.signal,
      onError: (err, delayMs) => {
        const level = err instanceof DuplicateMachineError ? 'error' : 'warn';
        this.log[level]('registering the machine failed; retrying', { error: (err as Error).message, delayMs });
      },
    });
    if (done) this.log.info('machine registered again', { machine: this.record.id });
  }
}
