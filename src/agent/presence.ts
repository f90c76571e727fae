// This machine's presence in the registry: its record under a lease of
// agent_ttl, kept alive. The machine holds its presence while its record
// exists under its own lease; the agent acts on its schedule only then.
// The record is watched (one key), so a record deleted or taken by another
// host is noticed, not only a lost lease. Whenever presence is not held it
// registers again with the shared backoff, and takes the record only when
// it is absent, never from another live host, so two hosts with one ID do
// not take it in turns (test/integration/presence.test.ts). Losing etcd
// alone stops units only with self-fencing on (fence.ts, lastAckAt).
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import {
  DuplicateMachineError,
  Informer,
  decode,
  machineHolder,
  reportDuplicate,
  type MachineRecord,
  type Registry,
  type RegistryLease,
} from '../registry/index.js';
import { retryUntilStopped } from '../retry.js';

/**
 * held: the record is ours, act on the schedule. lost: no record of ours
 * and no other host's (lease expired, record deleted): keep units as they
 * are. duplicate: another live host holds this machine ID: it runs the
 * schedule, so this one must not run the units scheduled to the ID.
 */
export type PresenceState =
  | { kind: 'held' }
  | { kind: 'lost'; reason: string }
  | { kind: 'duplicate'; holder: string };

export class Presence {
  private lease: RegistryLease | undefined;
  private record: MachineRecord;
  private stopped = false;
  private retrying = false;
  private state: PresenceState = { kind: 'lost', reason: 'not registered yet' };
  private ackAt = performance.now();
  private checking: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private readonly events = new EventEmitter();
  private readonly own: Informer<MachineRecord>;
  /** While duplicate: the lease of this host's `duplicates/` entry, so list-machines tells why it does not act. */
  private note: Promise<RegistryLease | undefined> | undefined;

  constructor(
    private readonly registry: Registry,
    record: MachineRecord,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {
    this.record = record;
    this.own = new Informer(registry, registry.keys.machine(record.id), decode.machine, { logger: log });
  }

  get current(): RegistryLease | undefined {
    return this.lease && !this.lease.lost ? this.lease : undefined;
  }

  /** Whether the agent may act on its schedule now. */
  get status(): PresenceState {
    return this.state;
  }

  /**
   * When etcd last acknowledged this machine's presence (performance.now()):
   * its registration, or the last keepalive answered while it held the
   * record. Self-fencing (fence.ts) counts from here.
   */
  get lastAckAt(): number {
    return this.ackAt;
  }

  /** Called at each acknowledgement that moves lastAckAt. */
  onAck(handler: () => void): void {
    this.events.on('ack', handler);
  }

  /** Called with each lease the machine is registered under (the first, and after each loss). */
  onLease(handler: (lease: RegistryLease) => void): void {
    this.events.on('lease', handler);
  }

  /** Called on each change of state. */
  onState(handler: (state: PresenceState) => void): void {
    this.events.on('state', handler);
  }

  /** Registers for the first time; a duplicate machine ID or an unreachable etcd is thrown. */
  async start(): Promise<void> {
    await this.register();
    this.setState({ kind: 'held' });
    // Watched as a prefix: a longer key under it would only cost a recheck, which reads the exact key.
    this.own.subscribe(() => this.recheck());
    await this.own.start();
    this.recheck();
  }

  /** Changes the record (e.g. metadata after SIGHUP), keeping the lease. */
  async update(record: MachineRecord): Promise<void> {
    this.record = record;
    if (this.current && this.state.kind === 'held') await this.registry.updateMachine(record, this.current);
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
    await this.own.stop();
    await this.withdrawNote();
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

  private recheck(): void {
    this.checking = this.checking.then(() => this.check()).catch(() => undefined);
  }

  /** Compares the record in etcd with our lease; anything but ours starts registering again. */
  private async check(): Promise<void> {
    const lease = this.current;
    if (this.stopped || this.retrying || !lease) return; // a lost lease is handled by its onLost
    let holder: Awaited<ReturnType<typeof machineHolder>>;
    try {
      holder = await machineHolder(this.registry, this.record.id);
    } catch {
      return; // etcd unreachable: presence is lost only when the lease is
    }
    if (holder?.lease === lease.id) return this.setState({ kind: 'held' });
    if (holder) this.setState({ kind: 'duplicate', holder: describe(holder.record) });
    else this.setState({ kind: 'lost', reason: 'machine record deleted' });
    void this.reregister();
  }

  /** Puts the record if absent, under the live lease if there is one, else under a new one. */
  private async register(): Promise<void> {
    const kept = this.current;
    const lease = kept ?? (await this.registry.grantLease(this.ttlSeconds));
    try {
      await this.registry.registerMachine(this.record, lease);
    } catch (err) {
      // Another host's ID: what our lease holds (published states) is not ours to keep.
      if (!kept || err instanceof DuplicateMachineError) {
        if (kept) this.lease = undefined;
        await lease.revoke().catch(() => undefined);
      }
      throw err;
    }
    if (kept) return;
    this.lease = lease;
    lease.onAlive(() => {
      if (this.lease !== lease || this.state.kind !== 'held') return;
      this.ackAt = performance.now();
      this.events.emit('ack');
    });
    lease.onLost((err) => {
      if (this.stopped) return;
      this.setState({ kind: 'lost', reason: `machine lease lost (${err.message})` });
      void this.reregister();
    });
    this.events.emit('lease', lease);
  }

  private async reregister(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    try {
      const done = await retryUntilStopped(() => this.register().then(() => true), {
        stopped: () => this.stopped,
        signal: this.stopping.signal,
        onError: (err, delayMs) => {
          if (err instanceof DuplicateMachineError) {
            // Logged once per holder by setState; each retry only at debug.
            this.setState({ kind: 'duplicate', holder: describe(err.other) });
            this.reportNote();
            this.log.debug('machine ID still held by another host; retrying', { delayMs });
          } else {
            this.log.warn('registering the machine failed; retrying', { error: (err as Error).message, delayMs });
          }
        },
      });
      if (done) {
        this.setState({ kind: 'held' });
        await this.withdrawNote();
      }
    } finally {
      this.retrying = false;
    }
    // A change while registering (deleted again at once) is noticed here.
    if (!this.stopped) this.recheck();
  }

  /** Publishes (once per lease) that this host has the ID too and does not act; its lease ends it. */
  private reportNote(): void {
    const id = this.record.id;
    this.note = (this.note ?? Promise.resolve(undefined)).then(async (held) => {
      if (held && !held.lost) return held;
      const lease = await this.registry.grantLease(this.ttlSeconds);
      const { hostname, publicIp } = this.record;
      const entry = { machine: id, hostname, publicIp, since: new Date().toISOString() };
      try {
        await reportDuplicate(this.registry, entry, this.record.bootId || hostname, lease);
        return lease;
      } catch (err) {
        await lease.revoke().catch(() => undefined);
        throw err;
      }
    }).catch((err: unknown) => {
      this.log.debug('reporting the duplicate machine ID failed; retrying with registration', { error: (err as Error).message });
      return undefined;
    });
  }

  private async withdrawNote(): Promise<void> {
    const note = this.note;
    this.note = undefined;
    const lease = await note;
    if (lease && !lease.lost) await lease.revoke().catch(() => undefined);
  }

  private setState(next: PresenceState): void {
    const prev = this.state;
    if (prev.kind === next.kind && JSON.stringify(prev) === JSON.stringify(next)) return;
    this.state = next;
    if (next.kind === 'held') this.ackAt = performance.now();
    const machine = this.record.id;
    if (next.kind === 'held') {
      if (!(prev.kind === 'lost' && prev.reason === 'not registered yet')) this.log.info('machine registered again; acting on its schedule', { machine });
    } else if (next.kind === 'lost') {
      this.log.warn('machine presence lost; not acting on the schedule until registered again (units keep running)', { machine, reason: next.reason });
    } else {
      this.log.error('machine ID held by another live host; not acting on the schedule and stopping its units until that host is gone', {
        machine,
        holder: next.holder,
      });
    }
    this.events.emit('state', next);
  }
}

function describe(record: { hostname: string; publicIp: string } | undefined): string {
  if (!record) return 'another host';
  return `${record.hostname || 'another host'}${record.publicIp ? ` (${record.publicIp})` : ''}`;
}
