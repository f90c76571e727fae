// The layout of a lab's state directory and its state file, lab.json: what
// a running lab is made of (etcd members, nodes, their PIDs), written as the
// lab changes so that any later CLI process (status, kill, down) finds it.
// lab.json is a convenience: down also cleans a lab whose lab.json is gone.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Default state directory; FLOTILLA_LAB_DIR or --dir override it. */
export const DEFAULT_LAB_DIR = '/var/lib/flotilla-lab';

/** etcd's client port on every member's own address (src/lab/network.ts). */
export const DEFAULT_ETCD_PORT = 2379;
/** etcd's peer port on every member's own address. */
export const ETCD_PEER_PORT = 2380;

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
  /** etcd1, etcd2, ...: also its name for cut, heal, partition and slow. */
  name: string;
  /** Its address on the lab's bridge, in its own network namespace. */
  ip: string;
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
  /** The lab's bridge and range (src/lab/network.ts; derived from dir). */
  network: { subnet: string; bridge: string; hostIp: string };
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
