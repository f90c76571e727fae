// Hollow machines (after Kubernetes' kubemark): simulated agents that
// register presence and acknowledge their decisions by publishing a state,
// with no systemd behind them. For engine tests and benchmarks only; the
// product never uses them.
//
// One informer over the whole schedule prefix stands in for the M per-machine
// watches real agents open, so a benchmark measures the engine, not M
// watchers in the benchmark process.
import {
  Informer,
  decode,
  type DecisionRecord,
  type MachineRecord,
  type Registry,
  type RegistryLease,
  type StateRecord,
} from '../../src/registry/index.js';

export interface HollowOptions {
  count: number;
  /** Presence lease TTL in seconds. */
  ttlSeconds?: number;
  /** Metadata of machine i. */
  metadata?: (i: number) => Record<string, string>;
  /** Machine id of machine i (32 hex characters by default). */
  id?: (i: number) => string;
}

export class HollowCluster {
  readonly ids: string[] = [];
  /** Unit name -> time (performance.now()) its decision was first seen. */
  readonly decidedAt = new Map<string, number>();
  /** Unit name -> time its state was published. */
  readonly ackedAt = new Map<string, number>();
  private readonly leases = new Map<string, RegistryLease>();
  private readonly informer: Informer<DecisionRecord>;
  private queue: StateRecord[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(private readonly registry: Registry) {
    this.informer = new Informer(registry, registry.keys.schedulePrefix, decode.decision);
  }

  static async start(registry: Registry, opts: HollowOptions): Promise<HollowCluster> {
    const c = new HollowCluster(registry);
    const ttl = opts.ttlSeconds ?? 60;
    const ids = Array.from({ length: opts.count }, (_, i) => opts.id?.(i) ?? hollowId(i));
    // register in parallel waves, as a fleet of machines booting would
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(
        ids.slice(i, i + 100).map(async (id, j) => {
          const lease = await registry.grantLease(ttl);
          const record: MachineRecord = {
            id,
            publicIp: `10.${(i + j) >> 16}.${((i + j) >> 8) & 255}.${(i + j) & 255}`,
            metadata: opts.metadata?.(i + j) ?? {},
            version: 'hollow',
            hostname: `hollow-${i + j}`,
            bootId: `hollow-boot-${i + j}`,
            since: new Date().toISOString(),
          };
          await registry.registerMachine(record, lease);
          c.leases.set(id, lease);
        }),
      );
    }
    c.ids.push(...ids);
    c.informer.subscribe((events) => {
      const now = performance.now();
      for (const e of events) {
        if (e.type !== 'put' || !e.value) continue;
        const d = e.value;
        if (!c.leases.has(d.machine)) continue;
        if (!c.decidedAt.has(d.unit)) c.decidedAt.set(d.unit, now);
        c.queue.push({
          unit: d.unit,
          machine: d.machine,
          hash: d.hash,
          loadState: 'loaded',
          activeState: d.state === 'launched' ? 'active' : 'inactive',
          subState: d.state === 'launched' ? 'running' : 'dead',
          since: new Date().toISOString(),
        });
      }
      c.flush();
    });
    await c.informer.start();
    return c;
  }

  /** Simulates the sudden death of machine id: its lease is no longer kept alive. */
  kill(id: string): void {
    this.leases.get(id)?.release();
    this.leases.delete(id);
  }

  /** Waits until every named unit has been acknowledged. */
  async waitAcked(units: Iterable<string>, timeoutMs: number): Promise<void> {
    const want = [...units];
    const deadline = Date.now() + timeoutMs;
    while (want.some((u) => !this.ackedAt.has(u))) {
      if (Date.now() > deadline) {
        const missing = want.filter((u) => !this.ackedAt.has(u));
        throw new Error(`${missing.length} units not acknowledged, e.g. ${missing.slice(0, 3).join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    await this.flushing;
    await Promise.all([...this.leases.values()].map((l) => l.revoke().catch(() => undefined)));
    this.leases.clear();
  }

  private flush(): void {
    if (this.flushing) return;
    this.flushing = (async () => {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        // All machines' acknowledgements share transactions (each state still
        // under its own machine's lease): the simulator's own etcd load stays
        // small next to the engine's.
        const entries = batch.flatMap((state) => {
          const lease = this.leases.get(state.machine);
          return lease ? [{ state, leaseId: lease.id }] : [];
        });
        await this.registry.publishStatesUnder(entries);
        const now = performance.now();
        for (const s of batch) if (!this.ackedAt.has(s.unit)) this.ackedAt.set(s.unit, now);
      }
    })().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.flush();
    });
  }
}

export function hollowId(i: number): string {
  return i.toString(16).padStart(8, '0') + '0'.repeat(24);
}
