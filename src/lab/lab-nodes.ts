// The nodes of a running lab, one at a time: booting one with what it needs
// to run flotillad (its files, the secure lab's credentials, the API and DNS
// ports), adding one to a running lab, killing or stopping one, and finding
// one for exec and logs. Each command takes the lab's lock and keeps lab.json
// up to date.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { FLOTILLAD_UNIT, flotilladFiles, flotilladScript } from './flotillad-files.js';
import { LabError, readApiToken, requireState } from './lab-folder.js';
import { withLabLock } from './lab-lock.js';
import { checkMetadataNodes, metadataFor, parseMetadataSpecs } from './lab-metadata.js';
import { readCredentials, secureNodeFiles } from './lab-secure.js';
import { labLayout, writeLabState, type LabLayout, type LabNodeRecord, type LabState } from './lab-state.js';
import { waitRegistered } from './lab-status.js';
import { etcdAlive } from './lab-sweep.js';
import { unmountAll } from './mounts.js';
import { addHost, labNetwork, nodeIndexOf, nodeIp, removeHost } from './network.js';
import { attachNode, bootNode, type LabNode } from './node.js';
import { signal, waitForExit } from './proc.js';

export interface AddOptions {
  metadata?: string[];
  log?: (line: string) => void;
  /** How long to wait for the node's flotillad to register in etcd. */
  registerTimeoutMs?: number;
}

/** Boots one more node, with the next free address, into the running lab. */
export async function addNode(dir: string, name: string | undefined, opts: AddOptions = {}): Promise<LabNodeRecord> {
  const layout = labLayout(dir);
  return withLabLock(layout.dir, async () => {
    const state = requireState(layout);
    if (!state.etcd.members.some((m) => etcdAlive(layout, m))) throw new LabError(`the lab's etcd is not running; 'flotilla-lab down' and 'up' again`);
    const net = labNetwork(layout.dir);
    const index = Math.max(0, ...state.nodes.map((n) => nodeIndexOf(net, n.ip) ?? 0)) + 1;
    const nodeName = name ?? `n${index}`;
    if (state.nodes.some((n) => n.name === nodeName)) throw new LabError(`the lab has a node ${nodeName} already`);
    // etcd members go by etcd1, etcd2, ... in cut, heal, partition and slow.
    if (/^etcd\d+$/.test(nodeName)) throw new LabError(`node name ${nodeName} is taken by the lab's etcd members; choose another`);
    if (index > 244) throw new LabError('the lab has no address left for another node (at most 244)');
    const specs = parseMetadataSpecs(opts.metadata ?? []);
    checkMetadataNodes(specs, [nodeName]);
    const record = await bootLabNode(layout, state, nodeName, nodeIp(net, index), metadataFor(specs, nodeName));
    // Like up: the node counts as added once its machine is in the cluster.
    if (existsSync(flotilladScript(state.checkout))) {
      const registered = await waitRegistered({ ...state, nodes: [record] }, opts.registerTimeoutMs ?? 30_000);
      if (registered.length === 0) opts.log?.(`warning: node ${record.name}'s machine did not register in etcd; see 'flotilla-lab logs ${record.name}'`);
    }
    return record;
  });
}

/**
 * Machine death: SIGKILL to the node's systemd ends every process in it at
 * once. Its overlay is unmounted; its folder (upper layer, console log) stays
 * until down.
 */
export async function killNode(dir: string, name: string): Promise<void> {
  await endNode(dir, name, 'killed', async (node) => node.kill());
}

/** Clean power-off (SIGTERM to nspawn: the node's systemd stops every unit; the machine expires after agent_ttl). */
export async function stopNode(dir: string, name: string, timeoutMs = 30_000): Promise<void> {
  await endNode(dir, name, 'stopped', async (node) => {
    if (node.nspawnAlive()) {
      signal(node.nspawnPid, 'SIGTERM');
      await waitForExit(node.nspawnPid, timeoutMs);
    }
    await node.kill(); // whatever did not stop in time
  });
}

async function endNode(dir: string, name: string, disposition: 'killed' | 'stopped', end: (node: LabNode) => Promise<void>): Promise<void> {
  const layout = labLayout(dir);
  await withLabLock(layout.dir, async () => {
    const state = requireState(layout);
    const record = state.nodes.find((n) => n.name === name);
    if (record === undefined) throw new LabError(`no node ${name} in the lab (nodes: ${state.nodes.map((n) => n.name).join(', ') || 'none'})`);
    const node = attachNode(record.dir);
    if (node === undefined || !node.initAlive()) throw new LabError(`node ${name} is not running (${record.disposition})`);
    await end(node);
    await unmountAll(node.root);
    record.disposition = disposition;
    writeLabState(layout, state);
  });
}

/** A handle on a running node, for exec and logs. */
export function runningNode(dir: string, name: string): LabNode {
  const layout = labLayout(dir);
  const state = requireState(layout);
  const record = state.nodes.find((n) => n.name === name);
  if (record === undefined) throw new LabError(`no node ${name} in the lab (nodes: ${state.nodes.map((n) => n.name).join(', ') || 'none'})`);
  const node = attachNode(record.dir);
  if (node === undefined || !node.initAlive()) throw new LabError(`node ${name} is not running (${record.disposition})`);
  return node;
}

/** The folder and console log of a node, running or not. */
export function nodeRecord(dir: string, name: string): LabNodeRecord & { logFile: string } {
  const state = requireState(labLayout(dir));
  const record = state.nodes.find((n) => n.name === name);
  if (record === undefined) throw new LabError(`no node ${name} in the lab`);
  return { ...record, logFile: path.join(record.dir, 'nspawn.log') };
}

/** Port of flotillad's API on each node's address: 7480, FLOTILLA_LAB_API_PORT to change, 'off' for none. */
export const DEFAULT_LAB_API_PORT = 7480;
function labApiPort(): number | undefined {
  const v = process.env['FLOTILLA_LAB_API_PORT'] ?? String(DEFAULT_LAB_API_PORT);
  if (v === 'off' || v === '') return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new LabError(`FLOTILLA_LAB_API_PORT=${v} is not a port (or 'off')`);
  return port;
}

/** flotillad's DNS front in each node: port 53 on the node's address, FLOTILLA_LAB_DNS_PORT to change, 'off' for none. */
function labDnsPort(): number | undefined {
  const v = process.env['FLOTILLA_LAB_DNS_PORT'] ?? '53';
  if (v === 'off' || v === '') return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new LabError(`FLOTILLA_LAB_DNS_PORT=${v} is not a port (or 'off')`);
  return port;
}

/** Boots a node into the lab, in a network namespace of its own, and records it in lab.json. */
export async function bootLabNode(
  layout: LabLayout,
  state: LabState,
  name: string,
  ip: string,
  metadata: Record<string, string>,
): Promise<LabNodeRecord> {
  mkdirSync(layout.nodesDir, { recursive: true });
  const files = flotilladFiles({
    checkout: state.checkout,
    nodeBinary: process.execPath,
    etcdEndpoints: state.etcd.endpoints,
    ip,
    metadata,
    dnsPort: labDnsPort(),
    apiPort: labApiPort(),
    apiToken: readApiToken(layout),
  });
  const secured = securedFiles(layout, files);
  const net = labNetwork(layout.dir);
  const netns = await addHost(net, name, ip);
  let node: LabNode;
  try {
    node = await bootNode({ stateDir: layout.nodesDir, name, ip, netns, wants: [FLOTILLAD_UNIT], ...secured });
  } catch (err) {
    await removeHost(net, name, ip);
    throw err;
  }
  const record: LabNodeRecord = {
    name,
    machineId: node.machineId,
    ip,
    metadata,
    dir: node.dir,
    disposition: 'running',
    bootMs: node.bootMs,
  };
  state.nodes.push(record);
  writeLabState(layout, state);
  return record;
}

// A secure lab's node also gets the etcd credentials (src/lab/lab-secure.ts).
function securedFiles(layout: LabLayout, files: Record<string, string>): { files: Record<string, string>; privateFiles?: string[] } {
  const creds = readCredentials(layout.dir);
  return creds ? secureNodeFiles(files, creds) : { files };
}
