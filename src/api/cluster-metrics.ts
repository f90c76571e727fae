// The cluster's metrics, from the API's cache: units by desired and current
// state, pending units, machines, the engine leader, this machine's units by
// systemd state, scheduling latency (a unit's desired state written until
// the engine's decision for it appears) and the engine's reconcile passes.
// The cluster-wide gauges and the scheduling latency come from the cache's
// cluster view, so they are reported only while the view is held (the API
// was used in the last idle period): a scrape does not start it.
import type { ApiCache } from './cache.js';
import { Gauge, Histogram, LATENCY_BUCKETS, type MetricsRegistry } from './metrics.js';
import { DESIRED_STATES, currentStateOf } from './units.js';

/** What /metrics reads of the local engine (Engine has this shape). */
export interface EngineProbe {
  readonly leading: boolean;
  readonly reconciler: { readonly stats: { readonly passes: number; readonly lastPassMs: number } } | undefined;
}

export interface ClusterMetricsOptions {
  cache: ApiCache;
  metrics: MetricsRegistry;
  /** This daemon's machine ID (for the agent's units); none when the API runs without an agent. */
  machineId?: string | undefined;
  engine?: (() => EngineProbe | undefined) | undefined;
}

export class ClusterMetrics {
  readonly schedulingLatency: Histogram;
  readonly reconcileDuration: Histogram;
  private readonly waitingSince = new Map<string, number>();
  private seenPasses = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: ClusterMetricsOptions) {
    const { cache, metrics } = opts;
    this.schedulingLatency = metrics.add(
      new Histogram('flotilla_scheduling_latency_seconds', 'from a unit desired loaded or launched until the engine decided it so (seen by this daemon)', LATENCY_BUCKETS),
    );
    this.reconcileDuration = metrics.add(
      new Histogram('flotilla_engine_reconcile_duration_seconds', "duration of this daemon's engine reconcile passes (sampled each second while leading)", LATENCY_BUCKETS),
    );
    metrics.add(
      new Gauge('flotilla_units', 'units by desired state', () => {
        if (!cache.active) return [];
        const counts = new Map(DESIRED_STATES.map((s) => [s as string, 0]));
        for (const name of cache.units.entries()) {
          const s = cache.desired.get(name[0])?.state ?? 'inactive';
          counts.set(s, (counts.get(s) ?? 0) + 1);
        }
        return [...counts].map(([s, value]) => ({ labels: { desired_state: s }, value }));
      }),
    );
    metrics.add(
      new Gauge('flotilla_units_current', 'units by current state (global units count as inactive)', () => {
        if (!cache.active) return [];
        const counts = new Map(DESIRED_STATES.map((s) => [s as string, 0]));
        for (const [name, u] of cache.units.entries()) {
          const s = u.global ? 'inactive' : currentStateOf(cache.decisionsOf(name)[0], cache.statesOf(name));
          counts.set(s, (counts.get(s) ?? 0) + 1);
        }
        return [...counts].map(([s, value]) => ({ labels: { current_state: s }, value }));
      }),
    );
    metrics.add(new Gauge('flotilla_units_pending', 'units the engine could not place', () => (cache.active ? [{ labels: {}, value: cache.pending.size }] : [])));
    metrics.add(new Gauge('flotilla_machines', 'machines present', () => (cache.active ? [{ labels: {}, value: cache.machines.size }] : [])));
    metrics.add(
      new Gauge('flotilla_engine_leader', 'the current engine leader (1 for its ID; nothing when there is none)', () => {
        const l = cache.active ? cache.engine.get('leader') : undefined;
        return l ? [{ labels: { id: l.id }, value: 1 }] : [];
      }),
    );
    metrics.add(
      new Gauge('flotilla_engine_is_leader', "1 when this daemon's engine is the leader", () => [{ labels: {}, value: opts.engine?.()?.leading ? 1 : 0 }]),
    );
    if (opts.machineId !== undefined) {
      const id = opts.machineId;
      metrics.add(
        new Gauge('flotilla_agent_units', "this machine's units by systemd active state, as its agent reports them", () => {
          if (!cache.active) return [];
          const counts = new Map<string, number>();
          for (const s of cache.states.values()) if (s.machine === id) counts.set(s.activeState, (counts.get(s.activeState) ?? 0) + 1);
          return [...counts].sort().map(([state, value]) => ({ labels: { active_state: state }, value }));
        }),
      );
    }
    this.unsubscribe = cache.onChange((kind, events) => {
      const now = performance.now();
      if (kind === 'reset') this.waitingSince.clear();
      else if (kind === 'desired') {
        for (const e of events) {
          const want = e.type === 'put' ? cache.desired.get(e.name)?.state : undefined;
          const unit = cache.units.get(e.name);
          if (!want || want === 'inactive' || unit?.global || cache.decisionsOf(e.name).some((d) => d.state === want)) this.waitingSince.delete(e.name);
          else if (!this.waitingSince.has(e.name)) this.waitingSince.set(e.name, now);
        }
      } else if (kind === 'schedule' && this.waitingSince.size > 0) {
        for (const e of events) {
          const unit = e.name.slice(e.name.indexOf('/') + 1);
          if (e.type !== 'put' || !this.waitingSince.has(unit)) continue;
          const want = cache.desired.get(unit)?.state;
          if (cache.decisionsOf(unit).some((d) => d.state === want)) {
            this.schedulingLatency.observe((now - this.waitingSince.get(unit)!) / 1000);
            this.waitingSince.delete(unit);
          }
        }
      } else if (kind === 'units') {
        for (const e of events) if (e.type === 'delete') this.waitingSince.delete(e.name);
      }
    });
    metrics.beforeRender(() => this.sample());
    this.timer = setInterval(() => this.sample(), 1_000);
    this.timer.unref();
  }

  /** Records the engine's latest pass when it has made new ones. */
  sample(): void {
    const stats = this.opts.engine?.()?.reconciler?.stats;
    if (!stats) return;
    if (stats.passes > this.seenPasses || stats.passes < this.seenPasses) {
      if (stats.passes > 0) this.reconcileDuration.observe(stats.lastPassMs / 1000);
      this.seenPasses = stats.passes;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }
}
