// The lab's own network: a bridge on the host and, for every node and every
// etcd member, a network namespace joined to it by a veth pair. Everything is
// named from the lab's folder (a hash of its path), so two labs in different
// folders get different ranges and names, and `down` or a crash clean-up
// finds what a lab made from its folder alone. The range is a /24 in
// 10.0.0.0/8; the host end of the bridge takes .1, etcd members .2-.4,
// nodes .11-.254. Node namespaces get no default route: the range is all
// they reach (and the host, through the bridge; ip_forward stays as it is).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { run, runOk } from './exec.js';

export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

export interface LabNetwork {
  /** The lab folder (resolved). */
  dir: string;
  /** sha256 of the folder's path, hex. */
  id: string;
  /** e.g. 10.23.171.0/24 */
  subnet: string;
  /** The host's end of the bridge, e.g. 10.23.171.1 */
  hostIp: string;
  /** The bridge on the host, e.g. flab-17ab */
  bridge: string;
}

/** Where `ip netns` keeps the namespaces it names. */
const NETNS_DIR = '/run/netns';
/** Link aliases (ip link ... alias) mark the lab's bridge and host-side veths as its own. */
const ALIAS_PREFIX = 'flotilla-lab:';

export function labNetwork(dir: string): LabNetwork {
  const abs = path.resolve(dir);
  const id = createHash('sha256').update(abs).digest('hex');
  const a = parseInt(id.slice(0, 2), 16);
  const b = parseInt(id.slice(2, 4), 16);
  return { dir: abs, id, subnet: `10.${a}.${b}.0/24`, hostIp: `10.${a}.${b}.1`, bridge: `flab-${id.slice(0, 4)}` };
}

function octets(net: LabNetwork): string {
  return net.hostIp.slice(0, net.hostIp.lastIndexOf('.') + 1);
}

/** The address of the i-th node (1-based): .11, .12, ... */
export function nodeIp(net: LabNetwork, index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 244) throw new NetworkError(`node index ${index} out of range 1-244`);
  return `${octets(net)}${10 + index}`;
}

/** The index nodeIp() gave ip, or undefined for another address. */
export function nodeIndexOf(net: LabNetwork, ip: string): number | undefined {
  if (!ip.startsWith(octets(net))) return undefined;
  const last = Number(ip.slice(octets(net).length));
  return Number.isInteger(last) && last >= 11 && last <= 254 ? last - 10 : undefined;
}

/** The address of etcd member i (1-based): .2, .3, .4 */
export function etcdIp(net: LabNetwork, index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 3) throw new NetworkError(`etcd member index ${index} out of range 1-3`);
  return `${octets(net)}${1 + index}`;
}

/** The lab's name for etcd member i (1-based), usable wherever a node's name is (cut, partition, ...). */
export function etcdName(index: number): string {
  return `etcd${index}`;
}

/** The network namespace of a node or etcd member (by its name in the lab). */
export function netnsName(net: LabNetwork, host: string): string {
  return `flab-${net.id.slice(0, 12)}-${host}`;
}

export function netnsPath(net: LabNetwork, host: string): string {
  return path.join(NETNS_DIR, netnsName(net, host));
}

/** The host's end of the veth pair of the host (node or member) at ip; the other end is eth0 in its namespace. */
export function vethName(net: LabNetwork, ip: string): string {
  return `${net.bridge}-${ip.slice(ip.lastIndexOf('.') + 1)}`;
}

/**
 * Refuses a range that any route of the host covers or is covered by (the
 * host's own network, another lab's bridge, a VPN): the lab's addresses must
 * mean the lab's namespaces and nothing else.
 */
export async function checkRangeFree(net: LabNetwork): Promise<void> {
  const routes = JSON.parse((await runOk(['ip', '-4', '-j', 'route', 'show', 'table', 'all'])).stdout || '[]') as { dst?: string; dev?: string; table?: string }[];
  for (const r of routes) {
    if (r.dst === undefined || r.dst === 'default' || r.table === 'local') continue;
    if (overlaps(r.dst, net.subnet)) {
      throw new NetworkError(
        `the lab's network ${net.subnet} (derived from --dir ${net.dir}) overlaps the host's route ${r.dst}${r.dev ? ` on ${r.dev}` : ''}; ` +
          `use another --dir (another lab may run there: 'flotilla-lab status --dir ...')`,
      );
    }
  }
}

/** Creates the bridge with the host's address on it. */
export async function createBridge(net: LabNetwork): Promise<void> {
  await ip('link', 'add', net.bridge, 'type', 'bridge');
  await ip('link', 'set', net.bridge, 'alias', alias(net));
  await ip('addr', 'add', `${net.hostIp}/24`, 'dev', net.bridge);
  await ip('link', 'set', net.bridge, 'up');
}

/**
 * Makes the namespace of a node or etcd member: lo up, eth0 with its
 * address, the host end on the bridge. Returns the namespace's path (for
 * systemd-nspawn's --network-namespace-path and nsenter --net).
 */
export async function addHost(net: LabNetwork, host: string, address: string): Promise<string> {
  const ns = netnsName(net, host);
  const veth = vethName(net, address);
  await ip('netns', 'add', ns);
  try {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ip('link', 'set', veth, 'alias', alias(net));
    await ip('link', 'set', veth, 'master', net.bridge);
    await ip('link', 'set', veth, 'up');
    await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
  } catch (err) {
    await removeHost(net, host, address);
    throw err;
  }
  return netnsPath(net, host);
}

/** Removes one host's namespace and veth pair (whatever of them exists). */
export async function removeHost(net: LabNetwork, host: string, address: string): Promise<void> {
  await run(['ip', 'netns', 'delete', netnsName(net, host)]);
  // Deleting the namespace takes its end of the pair with it, and so the host end; in case it lingers:
  await run(['ip', 'link', 'delete', vethName(net, address)]);
}

export interface NetworkReport {
  namespaces: string[];
  links: string[];
}

/**
 * Removes every namespace, veth and the bridge the lab in net.dir made:
 * namespaces by their name, links only when their alias names this lab.
 * Idempotent; call it once the lab's processes have ended.
 */
export async function removeNetwork(net: LabNetwork): Promise<NetworkReport> {
  const report: NetworkReport = { namespaces: labNamespaces(net), links: [] };
  for (const ns of report.namespaces) await run(['ip', 'netns', 'delete', ns]);
  const links = await labLinks(net);
  // veths first: deleting the bridge only detaches them.
  for (const link of [...links.filter((l) => l !== net.bridge), ...links.filter((l) => l === net.bridge)]) {
    const r = await run(['ip', 'link', 'delete', link]);
    if (r.code === 0) report.links.push(link);
  }
  const left = [...labNamespaces(net), ...(await labLinks(net))];
  if (left.length > 0) throw new NetworkError(`could not remove the lab's ${left.join(', ')}`);
  return report;
}

/** The lab's namespaces that exist now. */
export function labNamespaces(net: LabNetwork): string[] {
  const prefix = netnsName(net, '');
  return existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix)) : [];
}

/** The lab's links on the host (bridge, host ends of veths), by their alias. */
export async function labLinks(net: LabNetwork): Promise<string[]> {
  return (await hostLinks()).filter((l) => l.alias === alias(net)).map((l) => l.name);
}

/** Folders of every lab with a bridge on this host (from the bridges' aliases). */
export async function labNetworkDirs(): Promise<string[]> {
  const dirs = (await hostLinks()).filter((l) => l.kind === 'bridge' && l.alias.startsWith(ALIAS_PREFIX)).map((l) => l.alias.slice(ALIAS_PREFIX.length));
  return [...new Set(dirs)];
}

interface HostLink {
  name: string;
  alias: string;
  kind: string | undefined;
}

async function hostLinks(): Promise<HostLink[]> {
  const out = (await runOk(['ip', '-j', '-d', 'link', 'show'])).stdout;
  const links = JSON.parse(out || '[]') as { ifname: string; ifalias?: string; linkinfo?: { info_kind?: string } }[];
  return links.map((l) => ({ name: l.ifname, alias: l.ifalias ?? '', kind: l.linkinfo?.info_kind }));
}

// The alias holds the folder itself, so a crash clean-up can tell whose a
// bridge is even once its folder is gone (IFALIASZ: 256 bytes).
function alias(net: LabNetwork): string {
  return `${ALIAS_PREFIX}${net.dir}`.slice(0, 255);
}

async function ip(...args: string[]): Promise<void> {
  await runOk(['ip', ...args], { timeoutMs: 10_000 });
}

/** True when the IPv4 prefixes a and b (CIDR, or a bare address) share an address. */
export function overlaps(a: string, b: string): boolean {
  const [na, la] = prefix(a);
  const [nb, lb] = prefix(b);
  const len = Math.min(la, lb);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((na & mask) >>> 0) === ((nb & mask) >>> 0);
}

function prefix(cidr: string): [number, number] {
  const [addr = '', len] = cidr.split('/');
  const n = addr.split('.').reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
  return [n, len === undefined ? 32 : Number(len)];
}
