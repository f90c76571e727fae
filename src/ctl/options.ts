// Global options: their flags, their FLOTCTL_* environment variables, and
// turning them into a driver. A driver's module is imported only when one is
// created: etcd3 with gRPC would cost every command most of its start
// (docs/flotctl.md, Speed; test/unit/ctl/lazy.test.ts).
import { DEFAULT_PREFIX } from '../registry/keys.js';
import type { Registry } from '../registry/index.js';
import type { CtlDriver } from './driver.js';
import { UsageError } from './errors.js';
import { DEFAULT_API_ENDPOINT, parseApiEndpoint } from './api-endpoint.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
export const DRIVERS = ['etcd', 'api'] as const;
export type DriverName = (typeof DRIVERS)[number];

export interface GlobalOptions {
  /** As given (flag or FLOTCTL_ENDPOINT); undefined: the driver's default (endpointsOf). */
  endpoint: string | undefined;
  driver: DriverName;
  etcdKeyPrefix: string;
  keyFile?: string | undefined;
  certFile?: string | undefined;
  caFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Bearer token for the API driver. */
  apiTokenFile?: string | undefined;
  /** Seconds. */
  requestTimeout: number;
  debug: boolean;
}

export interface GlobalFlag {
  flag: string;
  type: 'string' | 'number' | 'boolean';
  describe: string;
  default?: string | number | boolean;
  choices?: readonly string[];
  /** false: no FLOTCTL_* variable (--version acts only when given on the command line). */
  env?: false;
}

/** The global flags, in the order help shows them. */
export const GLOBAL_FLAGS: readonly GlobalFlag[] = [
  {
    flag: 'endpoint',
    type: 'string',
    describe: `etcd client URLs, comma separated (default ${DEFAULT_ENDPOINT}); with --driver api, flotillad's API (default ${DEFAULT_API_ENDPOINT})`,
  },
  { flag: 'driver', type: 'string', default: 'etcd', choices: DRIVERS, describe: 'how to reach the cluster: etcd (directly) or api (flotillad\'s API; its endpoint defaults to unix:///run/flotilla/flotilla.sock)' },
  { flag: 'etcd-key-prefix', type: 'string', default: DEFAULT_PREFIX, describe: 'key prefix of the cluster in etcd' },
  { flag: 'key-file', type: 'string', describe: 'TLS client key file (PEM)' },
  { flag: 'cert-file', type: 'string', describe: 'TLS client certificate file (PEM)' },
  { flag: 'ca-file', type: 'string', describe: 'TLS CA file (PEM)' },
  { flag: 'username', type: 'string', describe: 'etcd user name' },
  { flag: 'password', type: 'string', describe: 'etcd password' },
  { flag: 'api-token-file', type: 'string', describe: "file holding the bearer token for flotillad's API (--driver api, status, journal)" },
  { flag: 'request-timeout', type: 'number', default: 3, describe: 'seconds one request may take' },
  { flag: 'debug', type: 'boolean', default: false, describe: 'print stack traces of errors' },
  { flag: 'version', type: 'boolean', env: false, describe: 'print the version and exit' },
];

/** `etcd-key-prefix` → `FLOTCTL_ETCD_KEY_PREFIX`. */
export function envName(flag: string): string {
  return `FLOTCTL_${flag.toUpperCase().replaceAll('-', '_')}`;
}

const TRUE = new Set(['1', 'true', 'yes', 'on', 't']);
const FALSE = new Set(['0', 'false', 'no', 'off', 'f', '']);

/** A flag's default, from its environment variable when set there. */
export function envDefault(f: GlobalFlag, env: Readonly<Record<string, string | undefined>>): string | number | boolean | undefined {
  const name = envName(f.flag);
  const raw = f.env === false ? undefined : env[name];
  if (raw === undefined) return f.default;
  switch (f.type) {
    case 'string':
      return raw;
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${name}=${raw} is not a number`);
      return n;
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new UsageError(`${name}=${raw} is not a boolean (use true or false)`);
    }
  }
}

export function parseEndpoints(endpoint: string): string[] {
  const list = endpoint
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (list.length === 0) throw new UsageError('--endpoint needs at least one URL');
  for (const e of list) {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      throw new UsageError(`--endpoint ${JSON.stringify(e)} is not a URL such as ${DEFAULT_ENDPOINT}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`--endpoint ${JSON.stringify(e)}: only http:// and https:// URLs are supported`);
    }
  }
  return list;
}

export function validateGlobals(g: GlobalOptions): void {
  if (!(g.requestTimeout > 0)) throw new UsageError('--request-timeout must be a positive number of seconds');
  if (!(DRIVERS as readonly string[]).includes(g.driver)) throw new UsageError(`--driver must be one of ${DRIVERS.join(', ')}`);
  if (g.driver === 'api') apiEndpoints(g).forEach((e) => parseApiEndpoint(e));
  else parseEndpoints(etcdEndpoint(g));
}

/** The etcd endpoint(s): as given, else etcd's default. */
function etcdEndpoint(g: GlobalOptions): string {
  return g.endpoint ?? DEFAULT_ENDPOINT;
}

/**
 * The API driver's endpoints: as given (flag or FLOTCTL_ENDPOINT, whatever
 * the value, even etcd's default URL), else the local daemon's socket.
 */
export function apiEndpoints(g: GlobalOptions): string[] {
  if (g.endpoint === undefined) return [DEFAULT_API_ENDPOINT];
  const list = g.endpoint.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (list.length === 0) throw new UsageError('--endpoint needs at least one URL');
  return list;
}

/** Connects the chosen driver (connections are lazy: nothing is sent yet). */
export async function createDriver(g: GlobalOptions): Promise<CtlDriver> {
  if (g.driver === 'api') {
    const { ApiDriver } = await import('./api-driver.js');
    return new ApiDriver({
      endpoints: apiEndpoints(g),
      caFile: g.caFile || undefined,
      certFile: g.certFile || undefined,
      keyFile: g.keyFile || undefined,
      tokenFile: g.apiTokenFile || undefined,
      requestTimeoutMs: Math.round(g.requestTimeout * 1000),
    });
  }
  const { EtcdDriver } = await import('./etcd-driver.js');
  return new EtcdDriver(await registryFromGlobals(g));
}

/** The registry the global options name (the etcd driver, announce, services). */
export async function registryFromGlobals(g: GlobalOptions): Promise<Registry> {
  const { Registry } = await import('../registry/index.js');
  return Registry.connect({
    endpoints: parseEndpoints(etcdEndpoint(g)),
    prefix: g.etcdKeyPrefix,
    caFile: g.caFile || undefined,
    certFile: g.certFile || undefined,
    keyFile: g.keyFile || undefined,
    username: g.username || undefined,
    password: g.password || undefined,
    requestTimeoutMs: Math.round(g.requestTimeout * 1000),
  });
}
