// Prometheus text exposition (format 0.0.4) without a client library:
// counters, gauges and histograms, each with fixed label names.
import type { Connection } from '../registry/index.js';

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels, value: by });
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

/** A gauge (or a counter kept elsewhere) whose samples are computed when scraped. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => readonly { labels: Labels; value: number }[],
    readonly type: 'gauge' | 'counter' = 'gauge',
  ) {}
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.collect()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
  }
  get observations(): number {
    return this.count;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${num(b)}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${num(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  /** etcd requests that failed, by operation (counted by instrumentConnection). */
  readonly etcdErrors = new Counter('flotilla_etcd_request_errors_total', 'etcd requests that failed after their retries, by error');
  readonly etcdRequests = new Counter('flotilla_etcd_requests_total', 'etcd requests made through the registry');

  constructor() {
    this.add(this.etcdRequests);
    this.add(this.etcdErrors);
  }

  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }

  private readonly hooks: (() => void)[] = [];

  /** Runs before each scrape (metrics sampled from elsewhere). */
  beforeRender(fn: () => void): void {
    this.hooks.push(fn);
  }

  render(): string {
    for (const h of this.hooks) h();
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

/**
 * A connection whose calls are counted, failures by error name; the daemon
 * builds its Registry on it so /metrics reports etcd request errors.
 */
export function instrumentConnection(conn: Connection, metrics: MetricsRegistry): Connection {
  return {
    get client() {
      return conn.client;
    },
    endpoints: conn.endpoints,
    requestTimeoutMs: conn.requestTimeoutMs,
    close: () => conn.close(),
    async call<T>(what: string, fn: () => PromiseLike<T>): Promise<T> {
      metrics.etcdRequests.inc();
      try {
        return await conn.call(what, fn);
      } catch (err) {
        metrics.etcdErrors.inc({ error: err instanceof Error ? err.name : 'Error' });
        throw err;
      }
    },
  };
}
