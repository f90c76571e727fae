// A cgroup subtree of each node's own. nspawn runs with --keep-unit and no
// machined, so it puts the node's systemd in `payload` under the cgroup
// nspawn itself was started in: started from one cgroup, every node would
// share one tree, and `system.slice/NAME.service` of one node would be the
// same host cgroup as another's. So the boot script moves itself into a
// cgroup made for the node before it execs nspawn (src/lab/nspawn.ts), in
// each hierarchy the node's systemd manages: name=systemd (v1) and cgroup2.
// The v1 controller hierarchies (memory, pids, ...) are left alone: nspawn
// mounts them read-only in the node, and moving a node there would take it
// out of the limits the host put on the lab's own cgroup.
//
// Names: /flotilla-lab-<hash of the folder holding the node folders>/<node>,
// so two labs (or test runs) in different folders never share one, and
// cleanup can name a lab's cgroups from its folder alone. Only cgroups so
// named are ever removed, and only by rmdir, which the kernel refuses for a
// cgroup that still holds a process.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Mount points of the hierarchies a node's systemd manages, from
 * /proc/self/mountinfo text: the v1 hierarchy named `systemd` and cgroup2
 * (both on a hybrid host, one on a legacy or a unified host).
 */
export function systemdHierarchies(mountinfo: string): string[] {
  let named: string | undefined;
  let unified: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    const point = before?.split(' ')[4];
    const [fsType, , superOptions = ''] = after?.split(' ') ?? [];
    if (point === undefined) continue;
    const target = point.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (fsType === 'cgroup2') unified ??= target;
    else if (fsType === 'cgroup' && superOptions.split(',').includes('name=systemd')) named ??= target;
  }
  return [named, unified].filter((p) => p !== undefined);
}

function hostHierarchies(): string[] {
  const found = systemdHierarchies(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (found.length === 0) throw new Error('no name=systemd or cgroup2 hierarchy is mounted: a node\'s systemd cannot run here');
  return found;
}

/** The cgroup (relative to each hierarchy's root) of every node whose folder is in stateDir. */
export function labCgroup(stateDir: string): string {
  const hash = createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16);
  return `/flotilla-lab-${hash}`;
}

/** The node's own cgroup: nspawn makes `supervisor` (itself) and `payload` (the node) under it. */
export function nodeCgroup(nodeDir: string): string {
  const dir = path.resolve(nodeDir);
  return `${labCgroup(path.dirname(dir))}/${path.basename(dir)}`;
}

/**
 * Makes the node's cgroup in every hierarchy and returns their folders, for
 * the boot script to move itself into. One left empty by a crashed node of
 * the same folder is removed first; one that still holds processes is an
 * error.
 */
export function createNodeCgroups(nodeDir: string): string[] {
  const cgroup = nodeCgroup(nodeDir);
  const dirs: string[] = [];
  for (const hierarchy of hostHierarchies()) {
    const dir = path.join(hierarchy, cgroup);
    if (/\s/.test(dir)) throw new Error(`cannot use the cgroup ${dir}: it holds a blank`);
    if (removeTree(dir).length > 0) throw new Error(`cgroup ${dir} still holds processes of an earlier node: run cleanup() first`);
    mkdirSync(dir, { recursive: true });
    dirs.push(dir);
  }
  return dirs;
}

/**
 * Removes the node's cgroup with everything its systemd made under it, then
 * the lab's if no other node is left in it. Call it once the node's
 * processes are gone; a process that lingers (an exiting one not yet out of
 * its cgroup) is waited for up to timeoutMs, then reported by an error.
 */
export async function removeNodeCgroups(nodeDir: string, timeoutMs = 5_000): Promise<void> {
  const dir = path.resolve(nodeDir);
  await removeUntil(nodeCgroup(dir), timeoutMs);
  for (const hierarchy of hostHierarchies()) rmdirIfEmpty(path.join(hierarchy, labCgroup(path.dirname(dir))));
}

/** Removes every cgroup of the nodes whose folders are (or were) in stateDir; for cleanup after a crash. */
export async function removeLabCgroups(stateDir: string, timeoutMs = 5_000): Promise<void> {
  await removeUntil(labCgroup(stateDir), timeoutMs);
}

/**
 * Every process in a cgroup of the nodes whose folders are in stateDir, in
 * any hierarchy: the lab made those cgroups for its nodes, so what is in
 * them is the nodes' (cleanup ends them when the node records are lost).
 */
export function labCgroupPids(stateDir: string): number[] {
  const cgroup = labCgroup(stateDir);
  const pids = new Set<number>();
  const visit = (dir: string): void => {
    for (const pid of readOr(path.join(dir, 'cgroup.procs')).split('\n')) if (Number(pid) > 0) pids.add(Number(pid));
    for (const sub of subdirs(dir)) visit(path.join(dir, sub));
  };
  for (const hierarchy of hostHierarchies()) visit(path.join(hierarchy, cgroup));
  return [...pids];
}

/** The cgroups of the lab in stateDir that exist in any hierarchy (for tests and status). */
export function existingLabCgroups(stateDir: string): string[] {
  const cgroup = labCgroup(stateDir);
  return hostHierarchies()
    .map((h) => path.join(h, cgroup))
    .filter((dir) => isDir(dir));
}

/** True when pid is in a cgroup of the lab in stateDir, in any hierarchy (a kernel record of whose it is). */
export function inLabCgroup(pid: number, stateDir: string): boolean {
  const cgroup = labCgroup(stateDir);
  return readOr(`/proc/${pid}/cgroup`).split('\n').some((line) => {
    const p = line.split(':').slice(2).join(':');
    return p === cgroup || p.startsWith(cgroup + '/');
  });
}

async function removeUntil(cgroup: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = hostHierarchies().flatMap((h) => removeTree(path.join(h, cgroup)));
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cgroups still hold processes, not removed: ${busy.join(', ')}`);
    await sleep(50);
  }
}

// rmdir of dir and every cgroup below it, deepest first (a cgroup's files
// go with it). Returns the deepest ones the kernel refused: still in use.
function removeTree(dir: string): string[] {
  const busy = subdirs(dir).flatMap((name) => removeTree(path.join(dir, name)));
  if (busy.length > 0) return busy;
  try {
    rmdirSync(dir);
    return [];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return [dir];
    throw err;
  }
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw err;
  }
}

// The child cgroups of dir; none when dir is gone.
function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function isDir(dir: string): boolean {
  try {
    readdirSync(dir);
    return true;
  } catch {
    return false;
  }
}
