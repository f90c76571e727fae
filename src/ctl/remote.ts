// status and journal: flotctl finds the machine(s) a unit runs on (the
// engine's decision; every machine reporting it for a global unit) and asks
// the flotillad on each, at the apiUrl it advertises in its machine record,
// for `systemctl status` or the journal (docs/api.md, /flotilla/v1). The
// same TLS files and bearer token as the api driver are used.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { CtlDriver, MachineInfo, UnitInfo } from './driver.js';
import { describeApiFailure } from './api-failure.js';
import { CtlError } from './errors.js';
import { machineLegend } from './format.js';
import type { GlobalOptions } from './options.js';
import { cmp } from './util.js';

export interface UnitMachine {
  id: string;
  ip: string;
  /** `abcdef12.../10.0.0.1`, for headers and errors. */
  legend: string;
  apiUrl: string;
}

export interface UnitPlacement {
  unit: UnitInfo;
  machines: UnitMachine[];
}

/** The unit and the machines it runs on, each with its API address; a clear error for what is missing. */
export async function placeUnit(driver: CtlDriver, name: string, opts: { rejectInactive?: boolean } = {}): Promise<UnitPlacement> {
  const unit = (await driver.getUnits([name])).get(name);
  if (!unit) throw new CtlError(`Unit ${name} does not exist.`);
  if (opts.rejectInactive && unit.desiredState === 'inactive') {
    throw new CtlError(`Unit ${name} is inactive (desired state inactive): it does not run on any machine; start or load it first.`);
  }
  let ids: string[];
  if (unit.global) {
    ids = [...new Set((await driver.listStates()).filter((s) => s.unit === name).map((s) => s.machine))].sort(cmp);
  } else {
    ids = unit.machine ? [unit.machine] : [];
  }
  if (ids.length === 0) throw new CtlError(`Unit ${name} does not appear to be running.`);
  const known = new Map((await driver.listMachines()).map((m): [string, MachineInfo] => [m.id, m]));
  const machines = ids.map((id): UnitMachine => {
    const m = known.get(id);
    const legend = machineLegend(id, m?.publicIp, false);
    if (!m) throw new CtlError(`Unit ${name} is on machine ${legend}, which is not in the cluster now (down?).`);
    if (!m.apiUrl) {
      throw new CtlError(`machine ${legend} does not advertise an API address: its flotillad must serve the API on TCP (api_listen in flotilla.conf) for status and journal`);
    }
    return { id, ip: m.publicIp, legend, apiUrl: m.apiUrl };
  });
  return { unit, machines };
}

export interface RemoteRequest {
  /** Path under the machine's API, e.g. /flotilla/v1/units/a.service/status. */
  path: string;
  /** Called with each chunk of the body as it arrives. */
  onData: (chunk: string) => void;
  /** No timeout once the answer has started (a followed journal). */
  stream?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** Calls flotillad on other machines with flotctl's credentials. */
export class MachineClient {
  private token: string | undefined;
  private tlsAgent: https.Agent | undefined;

  constructor(private readonly g: GlobalOptions) {}

  private bearer(): string | undefined {
    if (this.token === undefined && this.g.apiTokenFile) {
      try {
        this.token = readFileSync(this.g.apiTokenFile, 'utf8').trim();
      } catch (err) {
        throw new CtlError(`cannot read the API token file ${this.g.apiTokenFile}: ${(err as Error).message}`);
      }
    }
    return this.token;
  }

  private agent(): https.Agent {
    if (!this.tlsAgent) {
      const read = (f: string | undefined, what: string): Buffer | undefined => {
        if (!f) return undefined;
        try {
          return readFileSync(f);
        } catch (err) {
          throw new CtlError(`cannot read ${what} ${f}: ${(err as Error).message}`);
        }
      };
      const ca = read(this.g.caFile, 'CA file');
      const cert = read(this.g.certFile, 'certificate file');
      const key = read(this.g.keyFile, 'key file');
      this.tlsAgent = new https.Agent({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
    }
    return this.tlsAgent;
  }

  /** GETs path from the machine; resolves when the body ends; rejects with the API's error message. */
  get(m: UnitMachine, r: RemoteRequest): Promise<void> {
    let base: URL;
    try {
      base = new URL(m.apiUrl);
    } catch {
      return Promise.reject(new CtlError(`machine ${m.legend} advertises an API address that is not a URL: ${JSON.stringify(m.apiUrl)}`));
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      return Promise.reject(new CtlError(`machine ${m.legend} advertises ${m.apiUrl}: only http:// and https:// are supported`));
    }
    const headers: Record<string, string> = { Accept: 'text/plain' };
    const token = this.bearer();
    if (token) headers['Authorization'] = `Bearer ${token}`;
    const timeout = Math.round(this.g.requestTimeout * 1000);
    const tls = base.protocol === 'https:';
    const opts = {
      method: 'GET',
      host: base.hostname.replace(/^\[|\]$/g, ''),
      port: base.port || (tls ? 443 : 80),
      path: `${base.pathname.replace(/\/+$/, '')}${r.path}`,
      headers,
      timeout,
      ...(r.signal ? { signal: r.signal } : {}),
    };
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage): void => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        if (status >= 400) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let msg = `HTTP ${status}`;
            try {
              msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? msg;
            } catch {
              // not JSON
            }
            const hint = status === 401 ? ' (give the API token with --api-token-file or FLOTCTL_API_TOKEN_FILE)' : '';
            reject(new CtlError(`machine ${m.legend}: ${msg}${hint}`));
          });
          return;
        }
        if (r.stream) req.setTimeout(0);
        res.on('data', (c: string) => r.onData(c));
        // An answer that closes before its end: the far side went away
        // ('error' is ECONNRESET "aborted" on Node 20; 'close' covers the rest).
        const cutOff = (): void => {
          if (!r.signal?.aborted) reject(wentAway(m, r.stream === true));
        };
        res.on('end', () => resolve());
        res.on('error', cutOff);
        res.on('close', () => {
          if (!res.complete) cutOff();
        });
      };
      const req = tls ? https.request({ ...opts, agent: this.agent() }, onResponse) : http.request(opts, onResponse);
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeout} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => {
        if ((e as Error).name === 'AbortError') resolve();
        else reject(new CtlError(`cannot reach flotillad on machine ${m.legend} at ${m.apiUrl}: ${describeApiFailure(e, { url: m.apiUrl, timeoutMs: timeout })}`));
      });
      req.end();
    });
  }

  close(): void {
    this.tlsAgent?.destroy();
  }
}

/** The error for an answer the machine stopped sending before its end: its flotillad, or the machine itself, went away. */
export function wentAway(m: UnitMachine, following: boolean): CtlError {
  return new CtlError(
    `machine ${m.legend} went away ${following ? 'while following' : 'in the middle of the answer'}: the connection to its flotillad closed (the machine or its flotillad stopped)`,
  );
}

/**
 * Follows a stream from a machine until it ends, or until the machine leaves
 * the cluster: a machine that vanishes without closing the connection (a
 * VM switched off, a cut network) would otherwise keep flotctl waiting
 * forever. Its presence is checked every intervalMs.
 */
export async function followWhilePresent(
  client: MachineClient,
  driver: CtlDriver,
  m: UnitMachine,
  r: Omit<RemoteRequest, 'signal' | 'stream'>,
  intervalMs = 2_000,
): Promise<void> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const left = new Promise<never>((_, reject) => {
    const check = async (): Promise<void> => {
      // An etcd hiccup is not the machine leaving: only its absence counts.
      const present = await driver.listMachines().then((list) => list.some((x) => x.id === m.id)).catch(() => true);
      if (ac.signal.aborted) return;
      if (!present) reject(new CtlError(`machine ${m.legend} went away while following: it left the cluster`));
      else timer = setTimeout(() => void check(), intervalMs);
    };
    timer = setTimeout(() => void check(), intervalMs);
  });
  try {
    await Promise.race([client.get(m, { ...r, stream: true, signal: ac.signal }), left]);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** Splits a stream into whole lines, each prefixed (journal -f of a global unit). */
export function linePrefixer(prefix: string, out: (text: string) => void): { write(chunk: string): void; flush(): void } {
  let rest = '';
  return {
    write(chunk) {
      const text = rest + chunk;
      const end = text.lastIndexOf('\n');
      if (end < 0) {
        rest = text;
        return;
      }
      rest = text.slice(end + 1);
      out(
        text
          .slice(0, end + 1)
          .split(/(?<=\n)/)
          .map((l) => prefix + l)
          .join(''),
      );
    },
    flush() {
      if (rest !== '') out(`${prefix}${rest}\n`);
      rest = '';
    },
  };
}
