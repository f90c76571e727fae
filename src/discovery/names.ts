// Names in discovery: a service name is one DNS label (so `<service>.<domain>`
// resolves), an instance name is anything that fits in one etcd key segment.
import type { EndpointRecord } from '../registry/index.js';
import { surrogateFaultOf } from '../utf8.js';

/** An announcement's lease TTL in seconds, by default and at least (here, not in announcer.ts, so flotctl's help needs no etcd client). */
export const DEFAULT_TTL_SECONDS = 10;
export const MIN_TTL_SECONDS = 2;

/** The label of the DNS front's own name, `ns.<domain>` (its NS record names it). */
export const NAME_SERVER_LABEL = 'ns';

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class DiscoveryNameError extends Error {
  override readonly name = 'DiscoveryNameError';
}

/** Refuses a service name that is not a lower-case DNS label (letters, digits, inner hyphens, at most 63). */
export function checkService(service: string): string {
  if (!SERVICE.test(service)) {
    throw new DiscoveryNameError(
      `service name ${JSON.stringify(service)} must be a DNS label: lower-case letters, digits and inner '-', at most 63 characters`,
    );
  }
  if (service === NAME_SERVER_LABEL) {
    throw new DiscoveryNameError(`service name "${service}" is reserved: ${service}.<domain> names the DNS front itself`);
  }
  return service;
}

/** Refuses an instance name with a '/', white space or control characters, or longer than 200. */
export function checkInstance(instance: string): string {
  if (instance === '' || instance.length > 200 || /[/\s\p{Cc}]/u.test(instance)) {
    throw new DiscoveryNameError(`instance name ${JSON.stringify(instance)} must be 1 to 200 characters without '/' or white space`);
  }
  return instance;
}

export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DiscoveryNameError(`port ${port} is not between 1 and 65535`);
  return port;
}

/** The default instance name of an endpoint: `host:port` (IPv6 hosts in brackets). */
export function defaultInstance(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `HOST:PORT` or `[V6]:PORT` → host and port. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]\s]+):(\d+)$/.exec(s);
  if (!m) throw new DiscoveryNameError(`${JSON.stringify(s)} is not HOST:PORT (or [IPv6]:PORT)`);
  return { host: m[1]!, port: checkPort(Number(m[2])) };
}

/**
 * The DNS label that names one endpoint under its service (SRV targets):
 * the instance name lower-cased, every run of other characters turned into
 * '-', at most 63 characters.
 */
export function instanceLabel(instance: string): string {
  const s = instance
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return s === '' ? 'endpoint' : s;
}

/** Endpoints in a stable order: by instance name. */
export function sortEndpoints(list: EndpointRecord[]): EndpointRecord[] {
  return list.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
}

/**
 * Refuses an endpoint with text UTF-8 cannot hold (a lone surrogate, which
 * turns into U+FFFD wherever it is written out: DNS, flotctl), naming the field. Bytes that were not UTF-8
 * never get this far: flotctl refuses such arguments (src/process-text.ts).
 */
export function checkEndpointText(e: EndpointRecord): EndpointRecord {
  const fields: [string, string | undefined][] = [
    ['host', e.host],
    ['instance name', e.instance],
    ['unit', e.unit],
    ['machine', e.machine],
    ...Object.entries(e.attributes).flatMap(([k, v]): [string, string][] => [
      [`attribute name ${JSON.stringify(k)}`, k],
      [`attribute ${JSON.stringify(k)}`, v],
    ]),
  ];
  for (const [what, text] of fields) {
    const fault = text === undefined ? undefined : surrogateFaultOf(text);
    if (fault) throw new DiscoveryNameError(`${what} is ${fault.message}`);
  }
  return e;
}
