// A local flotilla cluster of real systemd nodes (flotilla-lab): etcd (1 or
// 3 members) on host loopback and systemd-nspawn nodes, each running
// flotillad as a systemd service. Everything lives in one folder; the
// processes run detached, so the lab outlives the command that started it,
// and every later command finds them through lab.json, verifying each PID
// against the kernel's records before it signals it.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { machinePresence, Registry } from '../registry/index.js';
import { cleanup } from './cleanup.js';
import { EtcdCluster, isHealthy } from './etcd.js';
import { FLOTILLAD_UNIT, findCheckout, flotilladFiles, flotilladScript } from './flotillad-files.js';
import { withLabLock } from './lab-lock.js';
import { clientOptions, credentialsEnvText, enableAuth, etcdTls, makeCredentials, readCredentials, secureNodeFiles, type LabCredentials } from './lab-secure.js';
import { checkMetadataNodes, configuredMetadata, metadataFor, parseMetadataSpecs } from './lab-metadata.js';
import {
  DEFAULT_ETCD_PORT,
  labLayout,
  nodeIndexOf,
  nodeIp,
  readLabState,
  writeLabState,
  type EtcdMemberRecord,
  type LabLayout,
  type LabNodeRecord,
  type LabState,
} from './lab-state.js';
import { isEtcdIn, labProcesses } from './lab-sweep.js';
import { mountsUnder, unmountAll } from './mounts.js';
import { attachNode, bootNode, type LabNode } from './node.js';
import { nodeLayout } from './state.js';
import { cmdline, isAlive, signal, startTime, waitForExit } from './proc.js';
import { nodeSupport } from './support.js';

/** A refusal or failure worth one clear line to the user. */
export class LabError extends Error {
  override readonly name = 'LabError';
}

/** Marks a folder as a lab's, so down never deletes a folder that is not. */
const MARKER = '.flotilla-lab';

export interface UpOptions {
  dir: string;
  nodes?: number;
  etcdMembers?: number;
  /** Client port of the first etcd member; the others take the next ones. */
  etcdPort?: number;
  /** `k=v,...` for every node or `NODE=k=v,...` for one. */
  metadata?: string[];
  /** Progress lines. */
  log?: (line: string) => void;
  /** Checked between steps: true stops `up` and tears down what it built. */
  aborted?: () => boolean;
  /** How long to wait for every node's flotillad to register in etcd. */
  registerTimeoutMs?: number;
  /** etcd with TLS, client certificates and authentication (src/lab/lab-secure.ts). */
  secure?: boolean;
}

export interface UpResult {
  state: LabState;
  /** Milliseconds from the start of `up` until every node was booted (and registered, if built). */
  ms: number;
  /** Machine IDs that registered in etcd within the wait; undefined when flotillad is not built. */
  registered: string[] | undefined;
}

/** Brings up a new lab in opts.dir; on any failure, tears down what it built. */
export async function up(opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const layout = labLayout(opts.dir);
  const log = opts.log ?? (() => undefined);
  const members = opts.etcdMembers ?? 1;
  const count = opts.nodes ?? 3;
  if (![1, 3].includes(members)) throw new LabError(`--etcd-members must be 1 or 3, not ${members}`);
  if (!Number.isInteger(count) || count < 0 || count > 244) throw new LabError(`--nodes must be 0-244, not ${count}`);
  const specs = parseMetadataSpecs(opts.metadata ?? []);
  checkMetadataNodes(specs, Array.from({ length: count }, (_, i) => `n${i + 1}`));
  preflight();
  const checkout = findCheckout();
  checkVisibleInNodes(checkout);
  if (!existsSync(flotilladScript(checkout))) {
    log(`warning: ${flotilladScript(checkout)} is missing (run 'npm run build'): nodes boot without flotillad`);
  }

  await clearDir(layout, log);
  const port = opts.etcdPort ?? DEFAULT_ETCD_PORT;
  const clientPorts = Array.from({ length: members }, (_, i) => port + i);
  await checkPortsFree(clientPorts);
  markDir(layout);

  const state: LabState = {
    version: 1,
    dir: layout.dir,
    createdAt: new Date().toISOString(),
    checkout,
    etcd: { endpoints: [], members: [] },
    nodes: [],
  };
  try {
    return await withLabLock(layout.dir, async () => {
      writeLabState(layout, state);
      log(`etcd: starting ${members} member(s) on 127.0.0.1:${clientPorts.join(',')}${opts.secure ? ' (TLS, client certificates, authentication)' : ''}`);
      const creds = opts.secure ? await makeCredentials(layout.dir) : undefined;
      const etcd = await EtcdCluster.start({ dir: layout.etcdDir, members, clientPorts, detached: true, tls: creds && etcdTls(creds) });
      state.etcd = { endpoints: etcd.endpoints, members: etcd.members.map(memberRecord) };
      writeLabState(layout, state);
      if (creds) await enableAuth(creds, etcd.endpoints);
      writeFileSync(layout.envFile, envFileText(state.etcd.endpoints, creds), { mode: 0o600 });
      // The bearer token of every node's API on TCP (status, journal), root only.
      writeFileSync(apiTokenFile(layout), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      appendFileSync(layout.envFile, apiEnvText(apiTokenFile(layout)));

      for (let i = 1; i <= count; i++) {
        if (opts.aborted?.()) throw new LabError('interrupted');
        const record = await bootLabNode(layout, state, `n${i}`, nodeIp(i), metadataFor(specs, `n${i}`));
        log(`node ${record.name}: ${record.ip}, machine ${record.machineId}, booted in ${(record.bootMs / 1000).toFixed(1)} s`);
      }
      const registered = existsSync(flotilladScript(checkout))
        ? await waitRegistered(state, opts.registerTimeoutMs ?? 30_000, opts.aborted)
        : undefined;
      return { state, ms: Date.now() - started, registered };
    });
  } catch (err) {
    log(`up failed (${(err as Error).message.split('\n')[0]}); tearing down`);
    await down(layout.dir).catch((e: unknown) => log(`teardown: ${(e as Error).message}`));
    throw err;
  }
}

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
    const index = Math.max(0, ...state.nodes.map((n) => nodeIndexOf(n.ip) ?? 0)) + 1;
    const nodeName = name ?? `n${index}`;
    if (state.nodes.some((n) => n.name === nodeName)) throw new LabError(`the lab has a node ${nodeName} already`);
    const specs = parseMetadataSpecs(opts.metadata ?? []);
    checkMetadataNodes(specs, [nodeName]);
    const record = await bootLabNode(layout, state, nodeName, nodeIp(index), metadataFor(specs, nodeName));
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

/** Clean power-off (SIGTERM to nspawn: the node's systemd stops every unit, flotillad withdraws). */
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

export interface DownReport {
  /** PIDs sent SIGKILL. */
  killed: number[];
  unmounted: string[];
  /** False when there was nothing to take down. */
  existed: boolean;
}

/**
 * Ends every process of the lab, unmounts every mount under its folder and
 * deletes the folder. Works from lab.json, and without it by scanning /proc
 * (lab-sweep), so it also cleans after a crash. Idempotent.
 */
export async function down(dir: string): Promise<DownReport> {
  const layout = labLayout(dir);
  const report: DownReport = { killed: [], unmounted: [], existed: existsSync(layout.dir) };
  if (!report.existed) return report;
  assertLabFolder(layout);
  const state = readLabState(layout);
  const kill = (pid: number): void => {
    signal(pid, 'SIGKILL');
    report.killed.push(pid);
  };

  // Nodes first (their flotillad would only complain about a missing etcd):
  // SIGKILL each node's init, found from its record in the node's folder.
  const nodeDirs = new Set([...(state?.nodes.map((n) => n.dir) ?? []), ...listDirs(layout.nodesDir)]);
  for (const nodeDir of nodeDirs) {
    const node = attachNode(nodeDir);
    if (node === undefined) continue;
    const before = node.processes();
    await node.kill().catch(() => undefined);
    report.killed.push(...before.filter((pid) => !isAlive(pid)));
  }
  for (const member of state?.etcd.members ?? []) {
    if (member.pid !== undefined && etcdAlive(layout, member)) kill(member.pid);
  }
  // Whatever the records missed: processes the kernel shows to be the lab's.
  // Processes inside nodes first; nspawn goes by itself once its init is gone.
  const deadline = Date.now() + 15_000;
  for (let round = 0; ; round++) {
    const found = labProcesses(layout.dir);
    if (found.length === 0) break;
    if (Date.now() > deadline) throw new LabError(`processes of the lab did not end: ${found.map((p) => `${p.pid} (${p.kind})`).join(', ')}`);
    for (const p of found) if (p.kind !== 'nspawn' || round >= 20) kill(p.pid);
    await sleep(100);
  }
  for (const pid of state?.etcd.members.map((m) => m.pid) ?? []) if (pid !== undefined) await waitForExit(pid, 5_000);

  report.unmounted.push(...mountsUnder(layout.dir));
  await unmountAll(layout.dir);
  const swept = await cleanup(layout.dir);
  report.killed.push(...swept.killed);
  if (mountsUnder(layout.dir).length > 0) throw new LabError(`still mounted under ${layout.dir}: ${mountsUnder(layout.dir).join(', ')}`);
  rmSync(layout.dir, { recursive: true, force: true });
  report.killed = [...new Set(report.killed)];
  return report;
}

export interface NodeStatus {
  name: string;
  machineId: string;
  ip: string;
  metadata: Record<string, string>;
  /** running; stopped or killed by the lab; dead: ended by something else. */
  state: 'running' | 'stopped' | 'killed' | 'dead';
  /** `systemctl is-active flotillad` in the node, or '-' when the node is not running. */
  flotillad: string;
  /** Whether etcd holds the machine's presence key; undefined when etcd did not answer. */
  registered: boolean | undefined;
}

export interface EtcdMemberStatus {
  name: string;
  clientUrl: string;
  pid: number | undefined;
  state: 'healthy' | 'unhealthy' | 'down';
}

export interface LabStatus {
  dir: string;
  /** False when there is no lab in dir. */
  exists: boolean;
  endpoints: string[];
  etcd: EtcdMemberStatus[];
  nodes: NodeStatus[];
  /** etcd requires TLS client certificates and a password (up --secure). */
  secure?: boolean;
}

export async function status(dir: string): Promise<LabStatus> {
  const layout = labLayout(dir);
  const state = readLabState(layout);
  if (state === undefined) return { dir: layout.dir, exists: false, endpoints: [], etcd: [], nodes: [] };
  const creds = readCredentials(layout.dir);
  const etcd = await Promise.all(
    state.etcd.members.map(async (m): Promise<EtcdMemberStatus> => {
      const alive = etcdAlive(layout, m);
      const healthy = alive && (await isHealthy(m.clientUrl, creds && etcdTls(creds)));
      return { name: m.name, clientUrl: m.clientUrl, pid: alive ? m.pid : undefined, state: healthy ? 'healthy' : alive ? 'unhealthy' : 'down' };
    }),
  );
  const machines = etcd.some((m) => m.state === 'healthy') ? await registeredMachines(state.etcd.endpoints, creds) : undefined;
  const nodes: NodeStatus[] = [];
  for (const record of state.nodes) {
    const node = attachNode(record.dir);
    const running = node?.initAlive() ?? false;
    let flotillad = '-';
    if (running && node) {
      const result = await node.exec(['systemctl', 'is-active', FLOTILLAD_UNIT], { timeoutMs: 10_000 }).catch(() => undefined);
      flotillad = result?.stdout.trim() || 'unknown';
    }
    nodes.push({
      name: record.name,
      machineId: record.machineId,
      ip: record.ip,
      // As applied: the machine record flotillad keeps in etcd (a SIGHUP
      // updates it), else the node's flotilla.conf, else what it booted with.
      metadata: machines?.get(record.machineId) ?? configuredMetadata(nodeLayout(record.dir).upper) ?? record.metadata,
      state: running ? 'running' : record.disposition === 'running' ? 'dead' : record.disposition,
      flotillad,
      registered: machines?.has(record.machineId),
    });
  }
  return { dir: layout.dir, exists: true, endpoints: state.etcd.endpoints, etcd, nodes, secure: creds !== undefined };
}

/** `export` lines that point flotctl at the lab (with the credentials of a secure lab). */
export function envFileText(endpoints: readonly string[], creds?: LabCredentials): string {
  return `export FLOTCTL_ENDPOINT=${endpoints.join(',')}\nexport FLOTILLA_ETCD_SERVERS=${endpoints.join(',')}\n${creds ? credentialsEnvText(creds) : ''}`;
}

/** The `export` line that gives flotctl the nodes' API token (status, journal). */
export function apiEnvText(tokenFile: string): string {
  return `export FLOTCTL_API_TOKEN_FILE=${tokenFile}\n`;
}

/** The lab's API bearer token (random, mode 0600), in its state folder. */
export function apiTokenFile(layout: LabLayout): string {
  return path.join(layout.dir, 'api-token');
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

function readApiToken(layout: LabLayout): string | undefined {
  try {
    return readFileSync(apiTokenFile(layout), 'utf8').trim() || undefined;
  } catch {
    return undefined; // a lab made before the API token: its nodes serve no API on TCP
  }
}

/** flotillad's DNS front in each node: port 53 on the node's address, FLOTILLA_LAB_DNS_PORT to change, 'off' for none. */
function labDnsPort(): number | undefined {
  const v = process.env['FLOTILLA_LAB_DNS_PORT'] ?? '53';
  if (v === 'off' || v === '') return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new LabError(`FLOTILLA_LAB_DNS_PORT=${v} is not a port (or 'off')`);
  return port;
}

async function bootLabNode(
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
  const node = await bootNode({ stateDir: layout.nodesDir, name, ip, wants: [FLOTILLAD_UNIT], ...secured });
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

// Until every running node's machine has its presence key in etcd.
async function waitRegistered(state: LabState, timeoutMs: number, aborted?: () => boolean): Promise<string[]> {
  const want = state.nodes.filter((n) => n.disposition === 'running').map((n) => n.machineId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = (await registeredMachines(state.etcd.endpoints, readCredentials(state.dir))) ?? new Set<string>();
    const done = want.filter((id) => seen.has(id));
    if (done.length === want.length || Date.now() > deadline || aborted?.()) return done;
    await sleep(250);
  }
}

// Machine ID -> metadata of every machine with a presence key (undefined
// for a record this version cannot read: status shows the configured
// metadata), or undefined when etcd does not answer.
async function registeredMachines(endpoints: readonly string[], creds?: LabCredentials): Promise<Map<string, Record<string, string> | undefined> | undefined> {
  const registry = Registry.connect({ endpoints: [...endpoints], requestTimeoutMs: 2_000, ...clientOptions(creds) });
  try {
    const found = await Promise.race([machinePresence(registry), sleep(3_000, undefined, { ref: false }).then(() => undefined)]);
    if (found === undefined) return undefined;
    return new Map([...found].map(([id, record]) => [id, record?.metadata]));
  } catch {
    return undefined;
  } finally {
    registry.close();
  }
}

function memberRecord(m: EtcdCluster['members'][number]): EtcdMemberRecord {
  return {
    name: m.name,
    clientUrl: m.clientUrl,
    peerUrl: m.peerUrl,
    pid: m.pid,
    pidStart: m.pid === undefined ? undefined : startTime(m.pid),
    dataDir: m.dataDir,
    logFile: m.logFile,
  };
}

// The recorded etcd still runs: same PID and start time, and its command
// line names its data directory inside the lab.
function etcdAlive(layout: LabLayout, m: EtcdMemberRecord): boolean {
  if (m.pid === undefined || !isAlive(m.pid) || startTime(m.pid) !== m.pidStart) return false;
  const argv = cmdline(m.pid);
  return isEtcdIn(argv, layout.dir) && argv.includes(m.dataDir);
}

function requireState(layout: LabLayout): LabState {
  const state = readLabState(layout);
  if (state === undefined) throw new LabError(`no lab in ${layout.dir} (start one with 'flotilla-lab up')`);
  return state;
}

// The lab's folder must be new or empty, or one of ours (marker). A folder
// with a lab still running is refused; leftovers of a crashed lab are removed.
async function clearDir(layout: LabLayout, log: (line: string) => void): Promise<void> {
  if (!existsSync(layout.dir) || readdirSync(layout.dir).length === 0) return;
  assertLabFolder(layout);
  if (labProcesses(layout.dir).length > 0) {
    throw new LabError(`a lab is running in ${layout.dir}: see 'flotilla-lab status', or 'flotilla-lab down' first`);
  }
  log(`removing leftovers of an earlier lab in ${layout.dir}`);
  await down(layout.dir);
}

function markDir(layout: LabLayout): void {
  mkdirSync(layout.dir, { recursive: true });
  writeFileSync(path.join(layout.dir, MARKER), 'flotilla-lab state folder: flotilla-lab down removes it\n');
}

function assertLabFolder(layout: LabLayout): void {
  const entries = readdirSync(layout.dir);
  if (entries.length > 0 && !entries.includes(MARKER) && !entries.includes('lab.json')) {
    throw new LabError(`${layout.dir} is not a flotilla-lab folder (no ${MARKER}); refusing to touch it`);
  }
}

function preflight(): void {
  const support = nodeSupport();
  if (!support.ok) throw new LabError(support.reason);
}

// Nodes see the host's root file system only: a checkout on another mount
// would be missing inside them.
function checkVisibleInNodes(checkout: string): void {
  if (statSync(checkout).dev !== statSync('/').dev) {
    throw new LabError(`the checkout ${checkout} is on another file system than /, so lab nodes (overlays of /) cannot see it`);
  }
}

async function checkPortsFree(ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) {
      throw new LabError(`etcd client port ${port} on 127.0.0.1 is taken (another etcd or lab?); choose other ports with --etcd-port`);
    }
  }
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir).map((e) => path.join(dir, e)).filter((p) => statSync(p).isDirectory());
  } catch {
    return [];
  }
}
