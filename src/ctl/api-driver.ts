// The API driver: flotctl over flotillad's HTTP API (docs/api.md) instead of
// etcd. Endpoints are unix:///run/flotilla/flotilla.sock (the default),
// http://host:port or https://host:port (TLS with the --ca-file,
// --cert-file and --key-file flags; a bearer token from --api-token-file).
// Blocking commands poll the API (it has no watch).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { ApiMachine, ApiUnit, ApiUnitState, UnitOption } from '../api/index.js';
import type { CreateResult, DesiredState } from '../registry/index.js';
import { UnitExistsError, UnitNotFoundError } from '../registry/errors.js';
import { parseUnitFile, serializeUnitFile, type UnitFile } from '../unit/index.js';
import type { ClusterWatch, CtlDriver, DecisionInfo, MachineInfo, NewUnit, Observation, PendingInfo, StoredUnit, UnitInfo, UnitStateInfo } from './driver.js';
import { UNREACHABLE_CODES, describeApiFailure } from './api-failure.js';
import { DEFAULT_API_ENDPOINT, parseApiEndpoint, type Target } from './api-endpoint.js';
import { CtlError } from './errors.js';
import { cmp } from './util.js';

export { DEFAULT_API_ENDPOINT, parseApiEndpoint };

const PAGE = 10_000;
const CONCURRENCY = 8;

export interface ApiDriverOptions {
  endpoints: readonly string[];
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  tokenFile?: string | undefined;
  requestTimeoutMs: number;
  /** How often a blocking command polls (ms). */
  pollMs?: number | undefined;
}

/** The API's error, with its HTTP status. */
export class ApiRequestError extends CtlError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}


export class ApiDriver implements CtlDriver {
  private readonly targets: Target[];
  private readonly agent: http.Agent;
  private readonly tlsAgent: https.Agent | undefined;
  private readonly token: string | undefined;
  private current = 0;

  constructor(private readonly opts: ApiDriverOptions) {
    this.targets = opts.endpoints.map(parseApiEndpoint);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    if (this.targets.some((t) => t.tls)) {
      const read = (f: string | undefined, what: string): Buffer | undefined => {
        if (!f) return undefined;
        try {
          return readFileSync(f);
        } catch (err) {
          throw new CtlError(`cannot read ${what} ${f}: ${(err as Error).message}`);
        }
      };
      const ca = read(opts.caFile, 'CA file');
      const cert = read(opts.certFile, 'certificate file');
      const key = read(opts.keyFile, 'key file');
      this.tlsAgent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
    }
    if (opts.tokenFile) {
      try {
        this.token = readFileSync(opts.tokenFile, 'utf8').trim();
      } catch (err) {
        throw new CtlError(`cannot read the API token file ${opts.tokenFile}: ${(err as Error).message}`);
      }
    }
  }

  // ---- HTTP ------------------------------------------------------------

  /** One request; the next endpoint is tried when one cannot be reached. */
  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T | undefined }> {
    const causes: string[] = [];
    for (let i = 0; i < this.targets.length; i++) {
      const idx = (this.current + i) % this.targets.length;
      const t = this.targets[idx]!;
      try {
        const res = await this.send<T>(t, method, path, body);
        this.current = idx;
        return res;
      } catch (err) {
        if (err instanceof CtlError || !(err instanceof Error)) throw err;
        const cause = describeApiFailure(err, { url: t.url, socketPath: t.socketPath, timeoutMs: this.opts.requestTimeoutMs });
        // Not a failure to connect (a TLS or protocol problem): the next endpoint would not fix it.
        if (!UNREACHABLE_CODES.has((err as NodeJS.ErrnoException).code ?? '')) throw new CtlError(`the flotilla API at ${t.url} failed: ${cause}`);
        causes.push(this.targets.length > 1 ? `${t.url}: ${cause}` : cause);
      }
    }
    const where = this.targets.length > 1 ? '' : ` at ${this.targets[0]?.url ?? ''}`;
    throw new CtlError(`the flotilla API is unreachable${where}: ${causes.join('; ')}`);
  }

  private send<T>(t: Target, method: string, path: string, body: unknown): Promise<{ status: number; json: T | undefined }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers['Authorization'] = `Bearer ${this.token}`;
    const basePath = t.base.pathname.replace(/\/+$/, '');
    const common = { method, path: `${basePath}${path}`, headers, timeout: this.opts.requestTimeoutMs };
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          if (text !== '') {
            try {
              json = JSON.parse(text);
            } catch {
              reject(new CtlError(`the server at ${t.url} is not the flotilla API (it answered HTTP ${res.statusCode} with something other than JSON); check the endpoint`));
              return;
            }
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const msg = (json as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${status}`;
            reject(new ApiRequestError(status, msg));
            return;
          }
          resolve({ status, json: json as T | undefined });
        });
      };
      const req = t.socketPath
        ? http.request({ ...common, socketPath: t.socketPath, agent: this.agent }, onResponse)
        : t.tls
          ? https.request({ ...common, host: t.base.hostname, port: t.base.port || 443, agent: this.tlsAgent }, onResponse)
          : http.request({ ...common, host: t.base.hostname, port: t.base.port || 80, agent: this.agent }, onResponse);
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.opts.requestTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Every item of a paged collection. */
  private async all<T>(resource: string, field: string, query = ''): Promise<T[]> {
    const out: T[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams(query);
      q.set('pageSize', String(PAGE));
      if (token) q.set('nextPageToken', token);
      const { json } = await this.request<Record<string, unknown>>('GET', `/fleet/v1/${resource}?${q}`);
      out.push(...((json?.[field] as T[] | undefined) ?? []));
      token = json?.['nextPageToken'] as string | undefined;
    } while (token);
    return out;
  }

  // ---- CtlDriver -------------------------------------------------------

  async listUnits(): Promise<UnitInfo[]> {
    return (await this.all<ApiUnit>('units', 'units')).map(toUnitInfo).sort((a, b) => cmp(a.name, b.name));
  }

  async getUnits(names: readonly string[]): Promise<Map<string, UnitInfo>> {
    const unique = [...new Set(names)];
    const out = new Map<string, UnitInfo>();
    if (unique.length > 16) {
      const wanted = new Set(unique);
      for (const u of await this.listUnits()) if (wanted.has(u.name)) out.set(u.name, u);
      return out;
    }
    await inParallel(unique, async (name) => {
      try {
        const { json } = await this.request<ApiUnit>('GET', `/fleet/v1/units/${encodeURIComponent(name)}`);
        if (json) out.set(name, toUnitInfo(json));
      } catch (err) {
        if (!(err instanceof ApiRequestError && err.status === 404)) throw err;
      }
    });
    return out;
  }

  async getStoredUnits(names: readonly string[]): Promise<Map<string, StoredUnit>> {
    const out = new Map<string, StoredUnit>();
    for (const [n, u] of await this.getUnits(names)) out.set(n, { name: u.name, text: u.text, hash: u.hash, global: u.global, desiredState: u.desiredState });
    return out;
  }

  async listMachines(): Promise<MachineInfo[]> {
    return (await this.all<ApiMachine>('machines', 'machines')).map(toMachineInfo).sort((a, b) => cmp(a.id, b.id));
  }

  async listStates(): Promise<UnitStateInfo[]> {
    return (await this.all<ApiUnitState>('state', 'states')).map(toStateInfo).sort((a, b) => cmp(a.unit, b.unit) || cmp(a.machine, b.machine));
  }

  async listPending(): Promise<PendingInfo[]> {
    return (await this.listUnits()).flatMap((u) => (u.pending ? [u.pending] : []));
  }

  async createUnits(units: readonly NewUnit[], opts: { replace: boolean; allowUnknownKeys?: boolean | undefined }): Promise<Map<string, CreateResult>> {
    const unique = [...new Map(units.map((u) => [u.name, u])).values()];
    // Checked before anything is written, as the etcd driver does.
    const existing = await this.getStoredUnits(unique.map((u) => u.name));
    if (!opts.replace) {
      const refused = unique.find((u) => existing.has(u.name) && existing.get(u.name)!.hash !== u.hash);
      if (refused) throw new UnitExistsError(refused.name);
    }
    const results = new Map<string, CreateResult>();
    await inParallel(unique, async (u) => {
      const e = existing.get(u.name);
      if (e && e.hash === u.hash && e.global === u.global) {
        results.set(u.name, 'unchanged');
        return;
      }
      const query = opts.allowUnknownKeys === true ? '?allowUnknownKeys=true' : '';
      const { status } = await this.request('PUT', `/fleet/v1/units/${encodeURIComponent(u.name)}${query}`, {
        desiredState: e?.desiredState ?? 'inactive',
        options: optionsOf(u.text),
      });
      results.set(u.name, status === 201 ? 'created' : 'replaced');
    });
    return results;
  }

  async setDesiredState(names: readonly string[], state: DesiredState): Promise<void> {
    const unique = [...new Set(names)];
    const existing = await this.getStoredUnits(unique);
    const missing = unique.filter((n) => !existing.has(n));
    if (missing.length > 0) throw new UnitNotFoundError(missing);
    await inParallel(
      unique.filter((n) => existing.get(n)!.desiredState !== state),
      async (n) => {
        await this.request('PUT', `/fleet/v1/units/${encodeURIComponent(n)}`, { desiredState: state });
      },
    );
  }

  async destroyUnit(name: string): Promise<void> {
    try {
      await this.request('DELETE', `/fleet/v1/units/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 404) throw new UnitNotFoundError([name]);
      throw err;
    }
  }

  async watch(): Promise<ClusterWatch> {
    const w = new PollingWatch(this, this.opts.pollMs ?? 200);
    await w.start();
    return w;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.tlsAgent?.destroy();
  }
}

/** A view of the cluster refreshed by polling the API. */
class PollingWatch implements ClusterWatch {
  private units = new Map<string, UnitInfo>();
  private states = new Map<string, UnitStateInfo[]>();
  private machines = new Map<string, MachineInfo>();
  private last = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly driver: ApiDriver,
    private readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.refresh()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.pollMs);
  }

  private async refresh(): Promise<void> {
    const [units, states, machines] = await Promise.all([this.driver.listUnits(), this.driver.listStates(), this.driver.listMachines()]);
    const snapshot = JSON.stringify([units, states, machines]);
    if (snapshot === this.last) return;
    this.last = snapshot;
    this.units = new Map(units.map((u) => [u.name, u]));
    this.states = new Map();
    for (const s of states) {
      const list = this.states.get(s.unit);
      if (list) list.push(s);
      else this.states.set(s.unit, [s]);
    }
    this.machines = new Map(machines.map((m) => [m.id, m]));
    for (const fn of this.listeners) fn();
  }

  observe(unit: string): Observation {
    const u = this.units.get(unit) as (UnitInfo & { decision?: DecisionInfo }) | undefined;
    return { decisions: u?.decision ? [u.decision] : [], states: this.states.get(unit) ?? [], pending: u?.pending };
  }

  machine(id: string): MachineInfo | undefined {
    return this.machines.get(id);
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.listeners.clear();
  }
}

function optionsOf(text: string): UnitOption[] {
  return parseUnitFile(text).sections.flatMap((s) => s.entries.map((e) => ({ section: s.name, name: e.key, value: e.value })));
}

function textOf(options: readonly UnitOption[]): string {
  const sections = new Map<string, { key: string; value: string }[]>();
  for (const o of options) {
    let entries = sections.get(o.section);
    if (!entries) sections.set(o.section, (entries = []));
    entries.push({ key: o.name, value: o.value });
  }
  const file: UnitFile = { sections: [...sections].map(([name, entries]) => ({ name, entries })) };
  return serializeUnitFile(file);
}

function toUnitInfo(u: ApiUnit): UnitInfo & { decision?: DecisionInfo } {
  const info: UnitInfo & { decision?: DecisionInfo } = {
    name: u.name,
    text: textOf(u.options),
    hash: u.hash,
    global: u.global,
    desiredState: u.desiredState,
    currentState: u.currentState,
  };
  if (u.machineID && !u.global) info.machine = u.machineID;
  if (u.pending) info.pending = { unit: u.name, reason: u.pending.reason, since: u.pending.since };
  if (u.scheduled) info.decision = { unit: u.name, machine: u.scheduled.machineID, hash: u.scheduled.hash, state: u.scheduled.state };
  return info;
}

function toMachineInfo(m: ApiMachine): MachineInfo {
  const info: MachineInfo = { id: m.id, publicIp: m.primaryIP, hostname: m.hostname ?? '', metadata: { ...m.metadata }, version: m.version ?? '', since: m.since ?? '' };
  if (typeof m.apiURL === 'string') info.apiUrl = m.apiURL;
  if (Array.isArray(m.duplicates) && m.duplicates.length > 0) {
    info.duplicates = m.duplicates.map((d) => ({ hostname: d.hostname, publicIp: d.primaryIP, since: d.since }));
  }
  return info;
}

function toStateInfo(s: ApiUnitState): UnitStateInfo {
  return {
    unit: s.name,
    machine: s.machineID,
    hash: s.hash,
    loadState: s.systemdLoadState,
    activeState: s.systemdActiveState,
    subState: s.systemdSubState,
    since: s.since ?? '',
  };
}

async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}
