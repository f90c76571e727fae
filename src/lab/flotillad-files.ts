// What makes a lab node a flotilla machine, written by vagrant/provision.sh
// exactly as for a Vagrant VM: units/flotillad.service, a drop-in that runs
// the checkout's build (the node sees it through its overlay), the node's
// /etc/flotilla/flotilla.conf (DNS front and API on the node's address), and
// flotctl on the node's PATH for sidekick units.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatMetadata } from './lab-metadata.js';
import { findCheckout } from '../version.js';

export { findCheckout };

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

/** The compiled daemon the nodes run. */
export function flotilladScript(checkout: string): string {
  return path.join(checkout, 'dist', 'cli', 'flotillad.js');
}

/** vagrant/provision.sh: the one provisioning path of lab nodes and Vagrant VMs. */
export function provisionScript(checkout: string): string {
  return path.join(checkout, 'vagrant', 'provision.sh');
}

/**
 * Files to write into a node before it boots, by path inside the node: what
 * vagrant/provision.sh writes for a VM (run with --root into a scratch tree),
 * so the lab tests the path VMs take. Its symlinks (multi-user.target.wants)
 * are left out: lab nodes boot lab-node.target, which wants flotillad. The
 * API token is written here, never passed on a command line.
 */
export function flotilladFiles(setup: FlotilladSetup): Record<string, string> {
  const api = setup.apiPort !== undefined && setup.apiToken !== undefined;
  const tree = mkdtempSync(path.join(os.tmpdir(), 'flotilla-provision-'));
  try {
    const args = [
      provisionScript(setup.checkout),
      '--root', tree,
      '--ip', setup.ip,
      '--etcd-servers', setup.etcdEndpoints.join(','),
      '--metadata', formatMetadata(setup.metadata),
      '--agent-ttl', String(setup.agentTtl ?? 5),
      '--engine-ttl', String(setup.engineTtl ?? 5),
      '--flotilla-dir', unitPath(setup.checkout),
      '--node', unitPath(setup.nodeBinary),
      '--dropin', 'lab.conf',
      ...(setup.dnsPort !== undefined ? ['--dns-listen', `${setup.ip}:${setup.dnsPort}`] : []),
      // The API on TCP, for flotctl status and journal from any machine:
      // plain HTTP on the host's loopback with a bearer token; a real
      // deployment serves it with TLS (docs/api.md).
      ...(api
        ? [
            '--conf', `api_listen=${setup.ip}:${setup.apiPort}`,
            '--conf', `api_token_file=${NODE_API_TOKEN_FILE}`,
            '--conf', 'api_insecure=true',
            '--flotctl-env', `FLOTCTL_API_TOKEN_FILE=${NODE_API_TOKEN_FILE}`,
            '--service-line', `ExecStartPre=/bin/chmod 0600 ${NODE_API_TOKEN_FILE}`,
          ]
        : []),
    ];
    try {
      execFileSync('bash', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`vagrant/provision.sh failed for node ${setup.ip}: ${stderr || (err as Error).message}`, { cause: err });
    }
    const files: Record<string, string> = {};
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) files[`/${path.relative(tree, full)}`] = readFileSync(full, 'utf8');
      }
    };
    walk(tree);
    if (api) files[NODE_API_TOKEN_FILE] = `${setup.apiToken}\n`;
    return files;
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

// systemd would read blanks, quotes, '%' and '$' in a path as syntax.
function unitPath(p: string): string {
  if (!/^\/[A-Za-z0-9/._+@-]*$/.test(p)) throw new Error(`cannot name ${p} in a unit file: use a path of letters, digits and / . _ + @ -`);
  return p;
}
