// What makes a lab node a flotilla machine: units/flotillad.service as
// installed on a real machine, a drop-in that runs the checkout's build
// instead (the node sees the host's files through its overlay), and the
// node's /etc/flotilla/flotilla.conf (with the DNS front on the node's
// address), and flotctl on the node's PATH for sidekick units.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMetadata } from './lab-metadata.js';

export const FLOTILLAD_UNIT = 'flotillad.service';

export interface FlotilladSetup {
  /** The flotilla checkout (holds units/ and dist/). */
  checkout: string;
  /** The node binary on the host, visible at the same path in the node. */
  nodeBinary: string;
  etcdEndpoints: readonly string[];
  ip: string;
  metadata: Readonly<Record<string, string>>;
  /** Seconds; short in the lab so that a killed node's units move quickly. */
  agentTtl?: number;
  engineTtl?: number;
  /** Port of flotillad's DNS front on the node's address; undefined: none. */
  dnsPort?: number | undefined;
  /** Port of flotillad's API on TCP on the node's address (status, journal); undefined: none. */
  apiPort?: number | undefined;
  /** The lab's API bearer token, written into the node as NODE_API_TOKEN_FILE. */
  apiToken?: string | undefined;
}

/** Where a lab node's flotillad and flotctl read the API token. */
export const NODE_API_TOKEN_FILE = '/etc/flotilla/api-token';

/** The checkout this module belongs to: the nearest folder up with flotilla's package.json. */
export function findCheckout(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'flotilla') return dir;
    if (dir === path.dirname(dir)) throw new Error(`no flotilla checkout (package.json) above ${from}`);
  }
}

/** The compiled daemon the nodes run. */
export function flotilladScript(checkout: string): string {
  return path.join(checkout, 'dist', 'cli', 'flotillad.js');
}

/** Files to write into a node before it boots, by path inside the node. */
export function flotilladFiles(setup: FlotilladSetup): Record<string, string> {
  const unit = readFileSync(path.join(setup.checkout, 'units', FLOTILLAD_UNIT), 'utf8');
  const script = flotilladScript(setup.checkout);
  const api = setup.apiPort !== undefined && setup.apiToken !== undefined;
  const dropIn = [
    '# flotilla-lab: run the checkout\'s build, seen through the node\'s overlay,',
    '# instead of an installed /usr/local/bin/flotillad.',
    '[Unit]',
    // Not built yet: the service is skipped (inactive), not restarted forever.
    `ConditionPathExists=${unitPath(script)}`,
    '',
    '[Service]',
    'ExecStart=',
    `ExecStart=${unitPath(setup.nodeBinary)} ${unitPath(script)}`,
    ...(api ? [`ExecStartPre=/bin/chmod 0600 ${NODE_API_TOKEN_FILE}`] : []),
    '',
  ].join('\n');
  const conf = [
    '# Written by flotilla-lab for this node.',
    `etcd_servers=${setup.etcdEndpoints.join(',')}`,
    `public_ip=${setup.ip}`,
    `metadata=${formatMetadata(setup.metadata)}`,
    `agent_ttl=${setup.agentTtl ?? 5}`,
    `engine_ttl=${setup.engineTtl ?? 5}`,
    ...(setup.dnsPort !== undefined ? [`dns_listen=${setup.ip}:${setup.dnsPort}`] : []),
    // The API on TCP, for flotctl status and journal from any machine: plain
    // HTTP on the host's loopback, with a bearer token. A real deployment
    // serves it with TLS (api_certfile, api_keyfile; docs/api.md).
    ...(api ? [`api_listen=${setup.ip}:${setup.apiPort}`, `api_token_file=${NODE_API_TOKEN_FILE}`, 'api_insecure=true'] : []),
    '',
  ].join('\n');
  // flotctl on the PATH, pointed at the lab's etcd, as sidekick units expect
  // (units/web-announce@.service runs /usr/local/bin/flotctl announce).
  const flotctl = `#!/bin/sh\nexec ${unitPath(setup.nodeBinary)} ${unitPath(path.join(setup.checkout, 'dist', 'cli', 'flotctl.js'))} "$@"\n`;
  return {
    [`/etc/systemd/system/${FLOTILLAD_UNIT}`]: unit,
    [`/etc/systemd/system/${FLOTILLAD_UNIT}.d/lab.conf`]: dropIn,
    '/etc/flotilla/flotilla.conf': conf,
    '/etc/flotilla/flotctl.env': `FLOTCTL_ENDPOINT=${setup.etcdEndpoints.join(',')}\n${api ? `FLOTCTL_API_TOKEN_FILE=${NODE_API_TOKEN_FILE}\n` : ''}`,
    '/usr/local/bin/flotctl': flotctl,
    ...(api ? { [NODE_API_TOKEN_FILE]: `${setup.apiToken}\n` } : {}),
  };
}

// systemd would read blanks, quotes, '%' and '$' in a path as syntax.
function unitPath(p: string): string {
  if (!/^\/[A-Za-z0-9/._+@-]*$/.test(p)) throw new Error(`cannot name ${p} in a unit file: use a path of letters, digits and / . _ + @ -`);
  return p;
}
