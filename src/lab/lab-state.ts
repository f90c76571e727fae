// The layout of a lab's state directory and its state file, lab.json: what
// a running lab is made of (etcd members, nodes, their PIDs), written as the
// lab changes so that any later CLI process (status, kill, down) finds it.
// lab.json is a convenience: down also cleans a lab whose lab.json is gone.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Default state directory; FLOTILLA_LAB_DIR or --dir override it. */
export const DEFAULT_LAB_DIR = '/var/lib/flotilla-lab';

/** Well-known client port of the first etcd member, so flotctl's default finds the lab. */
export const DEFAULT_ETCD_PORT = 2379;

export interface LabLayout {
  dir: string;
  stateFile: string;
  /** One folder per node (the harness's node folder: upper, work, root, nspawn.log, node.json). */
  nodesDir: string;
  /** EtcdCluster's folder: m1/, m2/, ... with data, etcd.log and etcd.pid. */
  etcdDir: string;
  /** Shell-sourceable variables pointing flotctl at the lab. */
  envFile: string;
}

export function labLayout(dir: string): LabLayout {
  const abs = path.resolve(dir);
  return {
    dir: abs,
    stateFile: path.join(abs, 'lab.json'),
    nodesDir: path.join(abs, 'nodes'),
    etcdDir: path.join(abs, 'etcd'),
    envFile: path.join(abs, 'env'),
  };
}

export interface EtcdMemberRecord {
  name: string;
  clientUrl: string;
  peerUrl: string;
  pid: number | undefined;
  /** Start time of pid (clock ticks since boot): with the PID, names that one process. */
  pidStart: number | undefined;
  dataDir: string;
  logFile: string;
}

/** running: booted; stopped: powered off cleanly by `stop`; killed: its init was SIGKILLed by `kill`. */
export type NodeDisposition = 'running' | 'stopped' | 'killed';

export interface LabNodeRecord {
  name: string;
  machineId: string;
  ip: string;
  metadata: Record<string, string>;
  /** The node's folder (see attachNode). */
  dir: string;
  disposition: NodeDisposition;
  bootMs: number;
}

export interface LabState {
  version: 1;
  dir: string;
  createdAt: string;
  /** The flotilla checkout whose dist/ the nodes run. */
  checkout: string;
  etcd: { endpoints: string[]; members: EtcdMemberRecord[] };
  nodes: LabNodeRecord[];
}

export function readLabState(layout: LabLayout): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(layout.stateFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as Partial<LabState>;
    if (state.version !== 1 || !Array.isArray(state.nodes) || !state.etcd) return undefined;
    return state as LabState;
  } catch {
    return undefined;
  }
}

/** Writes lab.json whole or not at all (rename), so a crash never leaves half a file. */
export function writeLabState(layout: LabLayout, state: LabState): void {
  mkdirSync(layout.dir, { recursive: true });
  const tmp = `${layout.stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, layout.stateFile);
}

/** The address of the i-th node (1-based): 127.0.0.11, .12, ... */
export function nodeIp(index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > 244) throw new Error(`node index ${index} out of range 1-244`);
  return `127.0.0.${10 + index}`;
}

/** The index nodeIp() gave ip, or undefined for another address. */
export function nodeIndexOf(ip: string): number | undefined {
  const match = /^127\.0\.0\.(\d+)$/.exec(ip);
  const last = match?.[1] === undefined ? NaN : Number(match[1]);
  return last >= 11 && last <= 254 ? last - 10 : undefined;
}
