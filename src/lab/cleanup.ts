// Removing what an earlier run left under a state root after it crashed:
// the nodes' processes, their cgroups, their overlay mounts, their folders. A process is
// only ended when the kernel's own records prove it is that node's (its
// command line names the node's root, or it lives in the node's PID
// namespace), so a PID reused by something unrelated is never touched.
// Lab networks (network.ts) whose folder lies under the root go too.
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { labCgroupPids, removeLabCgroups, removeNodeCgroups } from './cgroup.js';
import { mountsUnder, unmountAll } from './mounts.js';
import { isNspawnOf } from './nspawn.js';
import { isEtcdIn } from './lab-sweep.js';
import { labNetwork, labNetworkDirs, removeNetwork } from './network.js';
import { allPids, childrenOf, cmdline, isAlive, pidNamespace, pidsInNamespace, signal, waitForExit } from './proc.js';
import { hasLiveOwner, isNodeDir, nodeLayout, readRecord } from './state.js';

export interface CleanupReport {
  /** PIDs sent SIGKILL. */
  killed: number[];
  /** Mount points unmounted. */
  unmounted: string[];
  /** Network namespaces and links of labs under the root, removed. */
  network: string[];
  /** Folders deleted. */
  removed: string[];
  /** Run folders left alone because the process that owns them still runs. */
  kept: string[];
}

/**
 * Ends every node under stateRoot, removes their cgroups, unmounts every
 * mount under it and deletes everything in it, except run folders
 * (makeRunDir) whose owner still runs. Idempotent; stateRoot itself stays.
 */
export async function cleanup(stateRoot: string): Promise<CleanupReport> {
  const root = path.resolve(stateRoot);
  const report: CleanupReport = { killed: [], unmounted: [], network: [], removed: [], kept: [] };
  if (!isDir(root)) return report;
  const { nodes, kept, stateDirs } = survey(root);
  report.kept = kept;
  const isKept = (p: string): boolean => kept.some((k) => p === k || p.startsWith(k + '/'));

  for (const dir of nodes) {
    report.killed.push(...(await endNode(dir)));
    await removeNodeCgroups(dir);
  }
  // Also nodes whose records are gone: their cgroups are named after the
  // folder that held them (src/lab/cgroup.ts); what is left in them is
  // ended, then they are removed.
  for (const dir of stateDirs) {
    const pids = labCgroupPids(dir);
    for (const pid of pids) signal(pid, 'SIGKILL');
    for (const pid of pids) await waitForExit(pid, 5_000);
    report.killed.push(...pids);
    await removeLabCgroups(dir);
  }
  report.killed.push(...(await endEtcds(root, isKept)));
  // Found by their bridges, which name their lab's folder: also once it is gone.
  for (const dir of await labNetworkDirs()) {
    if (!dir.startsWith(root + '/') || isKept(dir)) continue;
    const removed = await removeNetwork(labNetwork(dir));
    report.network.push(...removed.namespaces, ...removed.links);
  }

  for (const target of new Set(mountsUnder(root).filter((t) => !isKept(t)))) {
    await unmountAll(target);
    report.unmounted.push(target);
  }

  for (const entry of safeReaddir(root)) await prune(path.join(root, entry), kept, report.removed);
  return report;
}

// Node folders under root, run folders with a live owner (not entered), and
// the other folders, where nodes may have been.
function survey(root: string): { nodes: string[]; kept: string[]; stateDirs: string[] } {
  const nodes: string[] = [];
  const kept: string[] = [];
  const stateDirs: string[] = [];
  const visit = (dir: string, depth: number): void => {
    if (dir !== root && hasLiveOwner(dir)) {
      kept.push(dir);
    } else if (isNodeDir(dir)) {
      nodes.push(dir);
    } else if (depth < 4) {
      stateDirs.push(dir);
      for (const entry of safeReaddir(dir)) {
        const child = path.join(dir, entry);
        if (isDir(child)) visit(child, depth + 1);
      }
    }
  };
  visit(root, 0);
  return { nodes, kept, stateDirs };
}

// Ends one node's processes, proven to be its own; returns the PIDs killed.
async function endNode(dir: string): Promise<number[]> {
  const layout = nodeLayout(dir);
  const record = readRecord(layout);
  const killed: number[] = [];
  const kill = (pid: number): void => {
    signal(pid, 'SIGKILL');
    killed.push(pid);
  };

  const nspawnPid = readPid(layout.pidFile) ?? record?.nspawnPid;
  const nspawn = nspawnPid !== undefined && isAlive(nspawnPid) && isNspawnOf(cmdline(nspawnPid), layout.root)
    ? nspawnPid
    : undefined;

  // The node's systemd first: its death ends the whole node. It is found as
  // the child of the proven nspawn, or, if nspawn died and the init was
  // adopted, as the recorded PID still in the recorded PID namespace.
  const inits = new Set(nspawn === undefined ? [] : childrenOf(nspawn));
  const ns = record?.pidNamespace;
  if (record?.initPid !== undefined && ns !== undefined && pidNamespace(record.initPid) === ns) inits.add(record.initPid);
  // The namespaces of the proven inits, read while they live: a recorded
  // namespace whose init is gone may have been reused by another node.
  const namespaces = new Set([...inits].map(pidNamespace).filter((n) => n !== undefined));
  for (const pid of inits) kill(pid);

  if (nspawn !== undefined && !(await waitForExit(nspawn, 10_000))) kill(nspawn);
  if (nspawn !== undefined) await waitForExit(nspawn, 5_000);

  // Anything still in the node's PID namespace (it goes with its init).
  for (const n of namespaces) {
    for (const pid of pidsInNamespace(n)) kill(pid);
    const deadline = Date.now() + 10_000;
    while (pidsInNamespace(n).length > 0 && Date.now() < deadline) await sleep(50);
  }
  return killed;
}

// etcd members of a lab (flotilla-lab) under root, proven by their data
// directory on the command line; a kept run's are spared.
async function endEtcds(root: string, isKept: (p: string) => boolean): Promise<number[]> {
  const pids = allPids().filter((pid) => {
    const argv = cmdline(pid);
    return isEtcdIn(argv, root) && !isKept(argv[argv.indexOf('--data-dir') + 1] ?? '');
  });
  for (const pid of pids) signal(pid, 'SIGKILL');
  for (const pid of pids) await waitForExit(pid, 5_000);
  return pids;
}

// Deletes p unless it is a kept run folder; one that holds kept folders
// loses only its other entries.
async function prune(p: string, kept: readonly string[], removed: string[]): Promise<void> {
  if (kept.includes(p)) return;
  if (kept.some((k) => k.startsWith(p + '/'))) {
    for (const entry of safeReaddir(p)) await prune(path.join(p, entry), kept, removed);
    return;
  }
  // rm descends into mounts: a mount left here (unmount failed) stops us.
  const mounted = mountsUnder(p);
  if (mounted.length > 0) throw new Error(`cannot delete ${p}: still mounted: ${mounted.join(', ')}`);
  await rm(p, { recursive: true, force: true });
  removed.push(p);
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
