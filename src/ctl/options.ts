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
  /** Other spellings fleetctl accepted (its deprecated --etcd-keyfile for --key-file), as flags and as variables. */
  aliases?: readonly string[];
  /** A value in fleetctl's spelling turned into flotctl's (`--driver API`). */
  coerce?: (value: string) => string;
  /** false: no FLOTCTL_* variable (--version acts only when given on the command line). */
  env?: false;
}

/** fleetctl v1.0.0's flags for SSH, which flotctl does not use yet (status and journal ask flotillad's API). */
const NO_SSH_YET = "fleetctl's; accepted, no effect: flotctl opens no SSH connection yet";

/** The global flags, in the order help shows them. */
export const GLOBAL_FLAGS: readonly GlobalFlag[] = [
  {
    flag: 'endpoint',
    type: 'string',
    describe: `etcd client URLs, comma separated (default ${DEFAULT_ENDPOINT}); with --driver api, flotillad's API (default ${DEFAULT_API_ENDPOINT})`,
  },
  {
    flag: 'driver',
    type: 'string',
    default: 'etcd',
    choices: DRIVERS,
    // fleetctl spelled its default driver "API"
    coerce: (v) => (v === 'API' ? 'api' : v),
    describe: 'how to reach the cluster: etcd (directly) or api (flotillad\'s API; its endpoint defaults to unix:///run/flotilla/flotilla.sock)',
  },
  { flag: 'etcd-key-prefix', type: 'string', default: DEFAULT_PREFIX, describe: 'key prefix of the cluster in etcd' },
  { flag: 'key-file', type: 'string', aliases: ['etcd-keyfile'], describe: 'TLS client key file (PEM)' },
  { flag: 'cert-file', type: 'string', aliases: ['etcd-certfile'], describe: 'TLS client certificate file (PEM)' },
  { flag: 'ca-file', type: 'string', aliases: ['etcd-cafile'], describe: 'TLS CA file (PEM)' },
  { flag: 'username', type: 'string', describe: 'etcd user name' },
  { flag: 'password', type: 'string', describe: 'etcd password' },
  { flag: 'api-token-file', type: 'string', describe: "file holding the bearer token for flotillad's API (--driver api, status, journal)" },
  { flag: 'request-timeout', type: 'number', default: 3, describe: 'seconds one request may take' },
  { flag: 'debug', type: 'boolean', default: false, describe: 'print stack traces of errors' },
  { flag: 'version', type: 'boolean', env: false, describe: 'print the version and exit' },
  { flag: 'experimental-api', type: 'boolean', default: true, describe: "fleetctl's, deprecated there; accepted, no effect" },
  { flag: 'tunnel', type: 'string', describe: "fleetctl's SSH bastion for every request; not supported yet: refused when given (use --endpoint)" },
  { flag: 'ssh-username', type: 'string', default: 'core', describe: NO_SSH_YET },
  { flag: 'ssh-port', type: 'number', default: 22, describe: `${NO_SSH_YET} (fleetctl's status, journal and ssh had it)` },
  { flag: 'ssh-timeout', type: 'number', default: 10, describe: NO_SSH_YET },
  { flag: 'known-hosts-file', type: 'string', describe: NO_SSH_YET },
  { flag: 'strict-host-key-checking', type: 'boolean', default: true, describe: NO_SSH_YET },
];

/** Global flags that take a value, aliases included (for finding the command word). */
export const GLOBAL_VALUE_FLAGS: ReadonlySet<string> = new Set(GLOBAL_FLAGS.filter((f) => f.type !== 'boolean').flatMap((f) => [f.flag, ...(f.aliases ?? [])]));
/** Every global flag's names, aliases included. */
export const GLOBAL_FLAG_NAMES: readonly string[] = GLOBAL_FLAGS.flatMap((f) => [f.flag, ...(f.aliases ?? [])]);

/** `etcd-key-prefix` → `FLOTCTL_ETCD_KEY_PREFIX`. */
export function envName(flag: string, prefix: 'FLOTCTL_' | 'FLEETCTL_' = 'FLOTCTL_'): string {
  return `${prefix}${flag.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * The variable that sets a flag, and its value: FLOTCTL_<FLAG>, else
 * fleetctl's FLEETCTL_<FLAG>, each also under the flag's aliases
 * (FLEETCTL_ETCD_KEYFILE); FLOTCTL_ wins. Undefined when none is set.
 */
export function envValue(f: Pick<GlobalFlag, 'flag' | 'aliases' | 'env'>, env: Readonly<Record<string, string | undefined>>): { name: string; raw: string } | undefined {
  if (f.env === false) return undefined;
  for (const prefix of ['FLOTCTL_', 'FLEETCTL_'] as const) {
    for (const flag of [f.flag, ...(f.aliases ?? [])]) {
      const name = envName(flag, prefix);
      const raw = env[name];
      if (raw !== undefined) return { name, raw };
    }
  }
  return undefined;
}

const TRUE = new Set(['1', 'true', 'yes', 'on', 't']);
const FALSE = new Set(['0', 'false', 'no', 'off', 'f', '']);

/** A boolean variable's value; undefined when it is neither true nor false. */
export function envBoolean(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : undefined;
}

/** A flag's default, from its environment variable when set there. */
export function envDefault(f: GlobalFlag, env: Readonly<Record<string, string | undefined>>): string | number | boolean | undefined {
  const found = envValue(f, env);
  if (found === undefined) return f.default;
  const { name, raw } = found;
  switch (f.type) {
    case 'string':
      return f.coerce ? f.coerce(raw) : raw;
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${name}=${raw} is not a number`);
      return n;
    }
    case 'boolean': {
      const v = envBoolean(raw);
      if (v === undefined) throw new UsageError(`${name}=${raw} is not a boolean (use true or false)`);
      return v;
    }
  }
}

/**
 * Checks what validateGlobals does not see: numbers that are not (the SSH
 * flags are accepted but still checked), and fleetctl's flags flotctl
 * cannot honour yet where ignoring them would do something else than asked:
 * --tunnel would reach the local or configured endpoint instead of the
 * cluster behind the bastion.
 */
export function checkGlobalFlags(argv: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): void {
  for (const f of GLOBAL_FLAGS) {
    if (f.type === 'number' && typeof argv[f.flag] === 'number' && !Number.isFinite(argv[f.flag])) throw new UsageError(`--${f.flag} must be a number`);
  }
  const tunnel = argv['tunnel'];
  if (typeof tunnel !== 'string' || tunnel === '') return;
  const fromEnv = envValue({ flag: 'tunnel' }, env);
  const where = fromEnv !== undefined && fromEnv.raw === tunnel ? `${fromEnv.name}=${tunnel}` : `--tunnel ${tunnel}`;
  throw new UsageError(`${where}: SSH tunnels are not supported by flotctl yet; reach the cluster with --endpoint (etcd, or flotillad's API with --driver api)`);
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
