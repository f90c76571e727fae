// Where nodes live on the host and what each node's folder records about
// itself, so that a later run (cleanup) can tell the node's processes apart
// from unrelated ones that reused their PIDs.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive, startTime } from './proc.js';

/** The state root for test nodes: every test run makes a fresh folder under it (makeRunDir). */
export const NODE_TEST_ROOT = path.join(os.tmpdir(), 'flotilla-test', 'nodes');

/** The files and folders of one node's folder. */
export interface NodeLayout {
  dir: string;
  /** The overlay's upper layer: everything the node writes. */
  upper: string;
  /** overlayfs' scratch folder. */
  work: string;
  /** The mounted overlay the node boots from. */
  root: string;
  /** systemd-nspawn's output, including the node's console. */
  log: string;
  /** The PID of systemd-nspawn. */
  pidFile: string;
  /** NodeRecord as JSON. */
  recordFile: string;
}

export function nodeLayout(dir: string): NodeLayout {
  return {
    dir,
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    root: path.join(dir, 'root'),
    log: path.join(dir, 'nspawn.log'),
    pidFile: path.join(dir, 'nspawn.pid'),
    recordFile: path.join(dir, 'node.json'),
  };
}

/** What a node's folder says about the node; filled in as it boots. */
export interface NodeRecord {
  name: string;
  machineId: string;
  ip: string;
  nspawnPid?: number;
  /** Start time of nspawn (clock ticks since boot): with the PID, names that one process. */
  nspawnStart?: number;
  initPid?: number;
  /** The node's PID namespace; every process in it belongs to the node. */
  pidNamespace?: string;
}

export function writeRecord(layout: NodeLayout, record: NodeRecord): void {
  writeFileSync(layout.recordFile, JSON.stringify(record, null, 2) + '\n');
  if (record.nspawnPid !== undefined) writeFileSync(layout.pidFile, `${record.nspawnPid}\n`);
}

export function readRecord(layout: NodeLayout): NodeRecord | undefined {
  try {
    return JSON.parse(readFileSync(layout.recordFile, 'utf8')) as NodeRecord;
  } catch {
    return undefined;
  }
}

/** True when dir is (or was) a node's folder. */
export function isNodeDir(dir: string): boolean {
  const layout = nodeLayout(dir);
  return existsSync(layout.recordFile) || existsSync(layout.pidFile);
}

const OWNER_FILE = 'owner.json';

/**
 * Makes a fresh folder under root for one run's nodes, owned by this
 * process: cleanup() leaves it alone while this process lives, so a test run
 * never removes the nodes of another run going on at the same time.
 */
export function makeRunDir(root: string = NODE_TEST_ROOT): string {
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, 'run-'));
  writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }) + '\n');
  return dir;
}

/**
 * True when dir has an owner file naming another process that is still
 * alive (same PID and start time). A process's own runs are not protected
 * from its own cleanup() calls.
 */
export function hasLiveOwner(dir: string): boolean {
  let owner: { pid?: unknown; start?: unknown };
  try {
    owner = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as { pid?: unknown; start?: unknown };
  } catch {
    return false;
  }
  if (typeof owner.pid !== 'number' || owner.pid === process.pid) return false;
  return isAlive(owner.pid) && startTime(owner.pid) === owner.start;
}
