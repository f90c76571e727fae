// flotillad's configuration: an INI-style file (fleet.conf keys accepted),
// FLOTILLA_<OPTION> environment variables over it, and flags over both.
// Every value is checked here, so a bad one is reported with its source and
// the daemon never starts half-configured.
import { readFileSync } from 'node:fs';
import { ApiConfigError, checkTcpOptions } from '../api/options.js';
import { isIP } from 'node:net';
import { utf8FaultOf } from '../utf8.js';

export interface DaemonConfig {
  etcdServers: string[];
  etcdUsername: string | undefined;
  etcdPassword: string | undefined;
  etcdKeyFile: string | undefined;
  etcdCertFile: string | undefined;
  etcdCaFile: string | undefined;
  etcdKeyPrefix: string;
  /** Seconds. */
  etcdRequestTimeout: number;
  publicIp: string | undefined;
  metadata: Record<string, string>;
  /** Seconds. */
  agentTtl: number;
  /**
   * Seconds cut off from etcd after which the agent stops its non-global
   * units (self-fencing), and which the engine waits out before placing them
   * elsewhere; undefined: off (fleet's behaviour, units keep running).
   */
  agentFenceAfter: number | undefined;
  /** Seconds. */
  engineTtl: number;
  disableEngine: boolean;
  verbosity: number;
  /** Where unit files are written (as the local systemd sees it). */
  unitDir: string;
  /** File holding this machine's ID. */
  machineIdFile: string;
  /** The API's unix socket; undefined serves none. */
  apiSocket: string | undefined;
  /** host:port the API listens on over TCP; undefined: no TCP. */
  apiListen: string | undefined;
  apiCaFile: string | undefined;
  apiCertFile: string | undefined;
  apiKeyFile: string | undefined;
  apiTokenFile: string | undefined;
  /** Plain or unauthenticated TCP, warned about at every start. */
  apiInsecure: boolean;
  /** Where the DNS front listens (`HOST[:PORT]`, port 53 by default); undefined: no DNS front. */
  dnsListen: string | undefined;
  /** Domain the DNS front answers for. */
  dnsDomain: string;
  /** Seconds: TTL of DNS answers. */
  dnsTtl: number;
  /**
   * What SIGTERM/SIGINT does to this machine's units: keep (they run on and
   * the next run adopts them) or drain (stopped and unloaded, the machine
   * withdrawn, so they move).
   */
  shutdown: ShutdownMode;
}

export type ShutdownMode = 'keep' | 'drain';

export const DEFAULT_CONFIG_FILE = '/etc/flotilla/flotilla.conf';

export const DEFAULTS: DaemonConfig = {
  etcdServers: ['http://127.0.0.1:2379'],
  etcdUsername: undefined,
  etcdPassword: undefined,
  etcdKeyFile: undefined,
  etcdCertFile: undefined,
  etcdCaFile: undefined,
  etcdKeyPrefix: '/flotilla/',
  etcdRequestTimeout: 3,
  publicIp: undefined,
  metadata: {},
  agentTtl: 30,
  agentFenceAfter: undefined,
  engineTtl: 10,
  disableEngine: false,
  verbosity: 0,
  unitDir: '/run/flotilla/units',
  machineIdFile: '/etc/machine-id',
  apiSocket: '/run/flotilla/flotilla.sock',
  apiListen: undefined,
  apiCaFile: undefined,
  apiCertFile: undefined,
  apiKeyFile: undefined,
  apiTokenFile: undefined,
  apiInsecure: false,
  dnsListen: undefined,
  dnsDomain: 'flotilla.local.',
  dnsTtl: 5,
  shutdown: 'keep',
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** How one option of the file is read: the field it sets and its parser. */
interface OptionSpec<K extends keyof DaemonConfig = keyof DaemonConfig> {
  field: K;
  parse: (raw: string, where: string) => DaemonConfig[K];
}

type AnyOptionSpec = { [K in keyof DaemonConfig]: OptionSpec<K> }[keyof DaemonConfig];

const option = <K extends keyof DaemonConfig>(field: K, parse: (raw: string, where: string) => DaemonConfig[K]): OptionSpec<K> => ({ field, parse });

/** Option name (as in the file) -> the field it sets and how to read it. */
const OPTIONS: Record<string, AnyOptionSpec> = {
  etcd_servers: option('etcdServers', list),
  etcd_username: option('etcdUsername', (v) => v || undefined),
  etcd_password: option('etcdPassword', (v) => v || undefined),
  etcd_keyfile: option('etcdKeyFile', (v) => v || undefined),
  etcd_certfile: option('etcdCertFile', (v) => v || undefined),
  etcd_cafile: option('etcdCaFile', (v) => v || undefined),
  etcd_key_prefix: option('etcdKeyPrefix', nonEmpty),
  etcd_request_timeout: option('etcdRequestTimeout', seconds),
  public_ip: option('publicIp', (v) => v || undefined),
  metadata: option('metadata', metadata),
  agent_ttl: option('agentTtl', seconds),
  agent_fence_after: option('agentFenceAfter', fenceAfter),
  engine_ttl: option('engineTtl', seconds),
  disable_engine: option('disableEngine', bool),
  verbosity: option('verbosity', integer),
  unit_dir: option('unitDir', absolute),
  machine_id_file: option('machineIdFile', absolute),
  api_socket: option('apiSocket', (v, w) => (v === '' ? undefined : absolute(v, w))),
  api_listen: option('apiListen', (v) => v || undefined),
  api_cafile: option('apiCaFile', (v, w) => (v === '' ? undefined : absolute(v, w))),
  api_certfile: option('apiCertFile', (v, w) => (v === '' ? undefined : absolute(v, w))),
  api_keyfile: option('apiKeyFile', (v, w) => (v === '' ? undefined : absolute(v, w))),
  api_token_file: option('apiTokenFile', (v, w) => (v === '' ? undefined : absolute(v, w))),
  api_insecure: option('apiInsecure', bool),
  dns_listen: option('dnsListen', dnsListen),
  dns_domain: option('dnsDomain', dnsDomain),
  dns_ttl: option('dnsTtl', wholeSeconds),
  shutdown: option('shutdown', shutdownMode),
};

/** fleet.conf keys flotilla reads but ignores (they had no meaning beyond fleet). */
const IGNORED_FLEET_KEYS = new Set([
  'authorized_keys_file',
  'enable_grpc',
  'engine_reconcile_interval',
  'token_limit',
  'verify_units',
  'etcd_request_timeout_ms',
  'disable_watches',
]);

export const OPTION_NAMES = Object.keys(OPTIONS);

/** The option name (as in the file) that sets a field of DaemonConfig (the field's own name if none does). */
export function optionName(field: keyof DaemonConfig): string {
  return Object.entries(OPTIONS).find(([, spec]) => spec.field === field)?.[0] ?? field;
}

export interface LoadOptions {
  /** Config file; missing is fine only when it is the default one. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values by option name (e.g. { public_ip: '127.0.0.11' }). */
  flags?: Record<string, string | undefined>;
  /** Receives warnings (unknown keys). */
  warn?: (message: string) => void;
}

export function loadConfig(opts: LoadOptions = {}): DaemonConfig {
  const file = opts.file ?? DEFAULT_CONFIG_FILE;
  let bytes: Buffer | undefined;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!(code === 'ENOENT' && opts.file === undefined)) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
    }
  }
  // Strictly: 'utf8' would turn bad bytes into U+FFFD, and metadata would carry them to etcd.
  const fault = bytes && utf8FaultOf(bytes);
  if (fault) throw new ConfigError(`configuration file ${file} is ${fault.message}`);
  const text = bytes?.toString('utf8');
  const warn = opts.warn ?? (() => undefined);
  let config: DaemonConfig = { ...DEFAULTS, metadata: {} };
  if (text !== undefined) {
    for (const [key, value, line] of parseConfigFile(text, file)) {
      config = apply(config, key, value, `${file} line ${line}`, warn);
    }
  }
  const env = opts.env ?? process.env;
  for (const key of OPTION_NAMES) {
    const v = env[`FLOTILLA_${key.toUpperCase()}`];
    if (v !== undefined) config = apply(config, key, v, `environment FLOTILLA_${key.toUpperCase()}`, warn);
  }
  for (const [key, v] of Object.entries(opts.flags ?? {})) {
    if (v !== undefined) config = apply(config, key, v, `flag --${key.replaceAll('_', '-')}`, warn);
  }
  checkApi(config);
  return config;
}

/** The API's TCP options must make a secure whole (or say api_insecure). */
function checkApi(c: DaemonConfig): void {
  if (c.apiListen === undefined) {
    const stray = (['apiCaFile', 'apiCertFile', 'apiKeyFile', 'apiTokenFile'] as const).filter((k) => c[k] !== undefined);
    if (stray.length > 0 || c.apiInsecure) throw new ConfigError(`api_listen: the API's TCP options are set but api_listen is not`);
    return;
  }
  try {
    checkTcpOptions({
      listen: c.apiListen,
      caFile: c.apiCaFile,
      certFile: c.apiCertFile,
      keyFile: c.apiKeyFile,
      tokenFile: c.apiTokenFile,
      insecure: c.apiInsecure,
    });
  } catch (err) {
    if (err instanceof ApiConfigError) throw new ConfigError(err.message);
    throw err;
  }
}

function apply(config: DaemonConfig, key: string, value: string, where: string, warn: (m: string) => void): DaemonConfig {
  const spec = OPTIONS[key];
  if (!spec) {
    if (!IGNORED_FLEET_KEYS.has(key)) warn(`${where}: unknown option ${key} ignored`);
    return config;
  }
  return { ...config, [spec.field]: spec.parse(value.trim(), `${where} (${key})`) };
}

/** `key = value` or `key="value"` lines; `#` and `;` comments; `[section]` headers ignored. */
export function parseConfigFile(text: string, file: string): [string, string, number][] {
  const out: [string, string, number][] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || /^\[.*\]$/.test(line)) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${file} line ${i + 1}: expected key=value, found ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim().toLowerCase().replaceAll('-', '_');
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'")))) {
      value = value.slice(1, -1);
    }
    out.push([key, value, i + 1]);
  });
  return out;
}

function list(v: string, where: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new ConfigError(`${where}: needs at least one value`);
  for (const item of items) {
    if (!/^(https?|unix|unixs):\/\//.test(item)) {
      throw new ConfigError(`${where}: ${JSON.stringify(item)} is not a URL such as http://127.0.0.1:2379`);
    }
  }
  return items;
}

function nonEmpty(v: string, where: string): string {
  if (v === '') throw new ConfigError(`${where}: must not be empty`);
  return v;
}

function absolute(v: string, where: string): string {
  if (!v.startsWith('/')) throw new ConfigError(`${where}: must be an absolute path`);
  return v;
}

/** Seconds, as a number ("1.5") or a duration ("30s", "500ms", "2m", "1m30s"). */
export function seconds(v: string, where: string): number {
  let n: number;
  if (/^\d+(\.\d+)?$/.test(v)) n = Number(v);
  else {
    const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) {
      throw new ConfigError(`${where}: ${JSON.stringify(v)} is not a duration such as 30s, 500ms or 2m`);
    }
    const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
    n = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
  }
  if (!(n > 0)) throw new ConfigError(`${where}: must be more than zero`);
  return n;
}

function bool(v: string, where: string): boolean {
  const s = v.toLowerCase();
  if (['true', 'yes', '1', 'on', 't', 'y'].includes(s)) return true;
  if (['false', 'no', '0', 'off', 'f', 'n', ''].includes(s)) return false;
  throw new ConfigError(`${where}: ${JSON.stringify(v)} is not a boolean (true or false)`);
}

function integer(v: string, where: string): number {
  if (!/^-?\d+$/.test(v)) throw new ConfigError(`${where}: ${JSON.stringify(v)} is not an integer`);
  return Number(v);
}

/** `k=v,k2=v2` (fleet's form). */
export function metadata(v: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of v.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${where}: ${JSON.stringify(pair)} is not key=value`);
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new ConfigError(`${where}: metadata key ${JSON.stringify(key)} may use letters, digits, _ . - only`);
    out[key] = value;
  }
  return out;
}

/** `HOST`, `HOST:PORT` or `[V6]:PORT` with an IP address; empty or `off`: no DNS front. */
function dnsListen(v: string, where: string): string | undefined {
  if (v === '' || v.toLowerCase() === 'off') return undefined;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(v) ?? /^([^:[\]\s]+)(?::(\d+))?$/.exec(v);
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!m || !isIP(m[1]!) || port < 0 || port > 65535) {
    throw new ConfigError(`${where}: ${JSON.stringify(v)} is not an address to listen on such as 127.0.0.1:53 (or off)`);
  }
  return v;
}

function dnsDomain(v: string, where: string): string {
  const d = v.toLowerCase().replace(/\.+$/, '');
  if (d === '' || d.split('.').some((l) => !/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) {
    throw new ConfigError(`${where}: ${JSON.stringify(v)} is not a DNS domain such as flotilla.local.`);
  }
  return `${d}.`;
}

function wholeSeconds(v: string, where: string): number {
  const n = seconds(v, where);
  if (!Number.isInteger(n)) throw new ConfigError(`${where}: must be a whole number of seconds`);
  return n;
}

/** A duration, or `off` / `0` / empty: no fencing. */
function fenceAfter(v: string, where: string): number | undefined {
  if (v === '' || v === '0' || v.toLowerCase() === 'off') return undefined;
  return seconds(v, where);
}

function shutdownMode(v: string, where: string): ShutdownMode {
  if (v === 'keep' || v === 'drain') return v;
  throw new ConfigError(`${where}: ${JSON.stringify(v)} is neither keep nor drain`);
}
