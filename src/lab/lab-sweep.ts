// Finding a lab's processes without trusting its state file, for `down`
// after a crash (lab.json lost, PIDs never recorded): by what the kernel
// says about each process. Only these are ever taken as the lab's: an etcd
// whose --data-dir lies in the lab's folder, a systemd-nspawn (or its boot
// shell) booting a root in the lab's folder, and a process inside a node:
// one in a cgroup the lab made for its nodes (src/lab/cgroup.ts), or one in
// another PID namespace than ours whose root holds the machine ID of one of
// the lab's nodes.
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { inLabCgroup } from './cgroup.js';
import { labLayout, type EtcdMemberRecord, type LabLayout } from './lab-state.js';
import { isNspawnOf } from './nspawn.js';
import { allPids, cmdline, isAlive, pidNamespace, startTime } from './proc.js';
import { nodeLayout } from './state.js';

export interface LabProcess {
  pid: number;
  kind: 'etcd' | 'nspawn' | 'node';
}

/** Every live process that provably belongs to the lab in dir. */
export function labProcesses(dir: string): LabProcess[] {
  const root = path.resolve(dir);
  const machineIds = nodeMachineIds(root);
  const folders = nodeFolders(root);
  const nodeRoots = folders.map((d) => nodeLayout(d).root);
  // Where node folders are or were: the cgroups of their nodes are named after it.
  const stateDirs = [...new Set([labLayout(root).nodesDir, ...folders.map((d) => path.dirname(d))])];
  const ownNs = pidNamespace(process.pid);
  const found: LabProcess[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid || !isAlive(pid)) continue;
    const argv = cmdline(pid);
    if (isEtcdIn(argv, root)) {
      found.push({ pid, kind: 'etcd' });
    } else if (nodeRoots.some((r) => isNspawnOf(argv, r)) || isNspawnUnder(argv, root)) {
      found.push({ pid, kind: 'nspawn' });
    } else if (stateDirs.some((d) => inLabCgroup(pid, d))) {
      found.push({ pid, kind: 'node' });
    } else if (machineIds.size > 0 && pidNamespace(pid) !== ownNs && machineIds.has(rootMachineId(pid))) {
      found.push({ pid, kind: 'node' });
    }
  }
  return found;
}

/** True when argv is an etcd whose data directory is inside root. */
export function isEtcdIn(argv: readonly string[], root: string): boolean {
  if (path.basename(argv[0] ?? '') !== 'etcd') return false;
  const i = argv.indexOf('--data-dir');
  const dataDir = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
  return dataDir !== undefined && path.resolve(dataDir).startsWith(root + '/');
}

// nspawn booting some root inside the lab's folder, for a node whose folder
// is gone from the listing (its record deleted, say).
function isNspawnUnder(argv: readonly string[], root: string): boolean {
  if (!(argv[0]?.endsWith('systemd-nspawn') ?? false)) return false;
  const d = argv.indexOf('-D');
  const target = d >= 0 ? argv[d + 1] : undefined;
  return target !== undefined && path.resolve(target).startsWith(root + '/');
}

// Machine IDs of every node folder under root, from what the node itself
// keeps: the machine-id file in its upper layer (readable unmounted too).
function nodeMachineIds(root: string): Set<string> {
  const ids = new Set<string>();
  for (const dir of nodeFolders(root)) {
    const id = readOr(path.join(nodeLayout(dir).upper, 'etc', 'machine-id')).trim();
    if (/^[0-9a-f]{32}$/.test(id)) ids.add(id);
  }
  return ids;
}

// Folders one or two levels down that look like node folders (have an upper layer).
function nodeFolders(root: string): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number): void => {
    for (const entry of listDir(dir)) {
      const child = path.join(dir, entry);
      if (entry === 'upper') out.push(dir);
      else if (depth < 2 && isDirectory(child)) visit(child, depth + 1);
    }
  };
  visit(root, 0);
  return [...new Set(out)];
}

function rootMachineId(pid: number): string {
  return readOr(`/proc/${pid}/root/etc/machine-id`).trim();
}

function isDirectory(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Whether the etcd member lab.json records still runs: same PID and start
 * time, and its command line names its data directory inside the lab.
 */
export function etcdAlive(layout: LabLayout, m: EtcdMemberRecord): boolean {
  if (m.pid === undefined || !isAlive(m.pid) || startTime(m.pid) !== m.pidStart) return false;
  const argv = cmdline(m.pid);
  return isEtcdIn(argv, layout.dir) && argv.includes(m.dataDir);
}
