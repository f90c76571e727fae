// A local flotilla cluster of real systemd nodes (flotilla-lab): etcd (1 or
// 3 members) and systemd-nspawn nodes, each running flotillad as a systemd
// service, each in a network namespace of its own on the lab's bridge
// (network.ts). Everything lives in one folder; the
// processes run detached, so the lab outlives the command that started it,
// and every later command finds them through lab.json, verifying each PID
// against the kernel's records before it signals it. This module brings a
// whole lab up and down; lab-nodes.ts handles single nodes, lab-status.ts
// reports, lab-folder.ts owns the state folder.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanup } from './cleanup.js';
import { EtcdCluster } from './etcd.js';
import { findCheckout, flotilladScript } from './flotillad-files.js';
import { apiEnvText, apiTokenFile, assertLabFolder, envFileText, LabError, markDir } from './lab-folder.js';
import { withLabLock } from './lab-lock.js';
import { enableAuth, etcdTls, makeCredentials } from './lab-secure.js';
import { checkMetadataNodes, metadataFor, parseMetadataSpecs } from './lab-metadata.js';
import { bootLabNode } from './lab-nodes.js';
import { DEFAULT_ETCD_PORT, ETCD_PEER_PORT, labLayout, readLabState, writeLabState, type EtcdMemberRecord, type LabLayout, type LabState } from './lab-state.js';
import { waitRegistered } from './lab-status.js';
import { etcdAlive, labProcesses } from './lab-sweep.js';
import { mountsUnder, unmountAll } from './mounts.js';
import { addHost, checkRangeFree, createBridge, etcdIp, etcdName, labNetwork, nodeIp, removeNetwork } from './network.js';
import { attachNode } from './node.js';
import { isAlive, signal, startTime, waitForExit } from './proc.js';
import { nodeSupport } from './support.js';

export interface UpOptions {
  dir: string;
  nodes?: number;
  etcdMembers?: number;
  /** etcd's client port, on every member's own address. */
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
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new LabError(`--etcd-port must be a port, not ${port}`);
  const net = labNetwork(layout.dir);
  // What a lab in this folder left (its folder deleted by hand, say) is ours to remove.
  await removeNetwork(net);
  await checkRangeFree(net);
  markDir(layout);

  const state: LabState = {
    version: 1,
    dir: layout.dir,
    createdAt: new Date().toISOString(),
    checkout,
    network: { subnet: net.subnet, bridge: net.bridge, hostIp: net.hostIp },
    etcd: { endpoints: [], members: [] },
    nodes: [],
  };
  try {
    return await withLabLock(layout.dir, async () => {
      writeLabState(layout, state);
      log(`network: bridge ${net.bridge} with ${net.hostIp} in ${net.subnet}`);
      await createBridge(net);
      const hosts = Array.from({ length: members }, (_, i) => etcdIp(net, i + 1));
      const netns: string[] = [];
      for (const [i, host] of hosts.entries()) netns.push(await addHost(net, etcdName(i + 1), host));
      log(`etcd: starting ${members} member(s) on ${hosts.map((h) => `${h}:${port}`).join(',')}${opts.secure ? ' (TLS, client certificates, authentication)' : ''}`);
      const creds = opts.secure ? await makeCredentials(layout.dir, hosts) : undefined;
      const etcd = await EtcdCluster.start({
        dir: layout.etcdDir,
        members,
        clientPorts: hosts.map(() => port),
        peerPorts: hosts.map(() => ETCD_PEER_PORT),
        network: { hosts, netns },
        namePrefix: 'etcd',
        detached: true,
        tls: creds && etcdTls(creds),
      });
      state.etcd = { endpoints: etcd.endpoints, members: etcd.members.map((m, i) => memberRecord(m, hosts[i] ?? '')) };
      writeLabState(layout, state);
      if (creds) await enableAuth(creds, etcd.endpoints);
      writeFileSync(layout.envFile, envFileText(state.etcd.endpoints, creds), { mode: 0o600 });
      // The bearer token of every node's API on TCP (status, journal), root only.
      writeFileSync(apiTokenFile(layout), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      appendFileSync(layout.envFile, apiEnvText(apiTokenFile(layout)));

      for (let i = 1; i <= count; i++) {
        if (opts.aborted?.()) throw new LabError('interrupted');
        const record = await bootLabNode(layout, state, `n${i}`, nodeIp(net, i), metadataFor(specs, `n${i}`));
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

export interface DownReport {
  /** PIDs sent SIGKILL. */
  killed: number[];
  unmounted: string[];
  /** Network namespaces and links removed. */
  network: string[];
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
  const report: DownReport = { killed: [], unmounted: [], network: [], existed: existsSync(layout.dir) };
  if (!report.existed) {
    // Only a network left by a lab whose folder is gone (deleted by hand).
    const net = await removeNetwork(labNetwork(layout.dir));
    report.network.push(...net.namespaces, ...net.links);
    return report;
  }
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

  // Once no process of the lab is left in them.
  const net = await removeNetwork(labNetwork(layout.dir));
  report.network.push(...net.namespaces, ...net.links);

  report.unmounted.push(...mountsUnder(layout.dir));
  await unmountAll(layout.dir);
  const swept = await cleanup(layout.dir);
  report.killed.push(...swept.killed);
  if (mountsUnder(layout.dir).length > 0) throw new LabError(`still mounted under ${layout.dir}: ${mountsUnder(layout.dir).join(', ')}`);
  rmSync(layout.dir, { recursive: true, force: true });
  report.killed = [...new Set(report.killed)];
  return report;
}

function memberRecord(m: EtcdCluster['members'][number], ip: string): EtcdMemberRecord {
  return {
    name: m.name,
    ip,
    clientUrl: m.clientUrl,
    peerUrl: m.peerUrl,
    pid: m.pid,
    pidStart: m.pid === undefined ? undefined : startTime(m.pid),
    dataDir: m.dataDir,
    logFile: m.logFile,
  };
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

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir).map((e) => path.join(dir, e)).filter((p) => statSync(p).isDirectory());
  } catch {
    return [];
  }
}
