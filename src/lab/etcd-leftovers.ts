// Sweeping etcd clusters that an earlier run of the harness (src/lab/etcd.ts)
// left behind when it crashed: the files a cluster's folder keeps to prove
// which processes are its own, and the sweep itself.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/** In each member's folder: its PID and data directory. */
export const PID_FILE = 'etcd.pid';
/** In the cluster's folder: the PID of the process that started it. */
export const OWNER_FILE = 'owner.pid';

/**
 * Kills the etcd processes and removes the folders of clusters left under
 * root by an earlier run that crashed. A PID is only killed when its command
 * line names that member's data directory, so a reused PID is never touched.
 */
export function cleanupEtcdLeftovers(root: string): number {
  if (!existsSync(root)) return 0;
  let killed = 0;
  for (const cluster of readdirSync(root)) {
    const clusterDir = path.join(root, cluster);
    if (ownerAlive(clusterDir)) continue; // another test run, still going
    for (const member of safeReaddir(clusterDir)) {
      const pidFile = path.join(clusterDir, member, PID_FILE);
      if (!existsSync(pidFile)) continue;
      const [pidText, dataDir] = readFileSync(pidFile, 'utf8').split('\n');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 1 && dataDir && cmdlineOf(pid).includes(dataDir)) {
        try {
          process.kill(pid, 'SIGKILL');
          killed++;
        } catch {
          // already gone
        }
      }
    }
    rmSync(clusterDir, { recursive: true, force: true });
  }
  return killed;
}

function ownerAlive(clusterDir: string): boolean {
  let owner: number;
  try {
    owner = Number(readFileSync(path.join(clusterDir, OWNER_FILE), 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(owner) || owner <= 1 || owner === process.pid) return false;
  try {
    process.kill(owner, 0);
    return true;
  } catch {
    return false;
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
