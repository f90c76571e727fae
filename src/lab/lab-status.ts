// What a lab is doing: `flotilla-lab status` (each etcd member's health,
// each node's state, flotillad and metadata) and whether the nodes' machines
// have registered in etcd, which up and add wait for. etcd is read through
// the registry (src/registry/), with the lab's TLS and password options.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { machinePresence, Registry } from '../registry/index.js';
import { isHealthy } from './etcd.js';
import { faultsOf } from './faults.js';
import { FLOTILLAD_UNIT } from './flotillad-files.js';
import { configuredMetadata } from './lab-metadata.js';
import { clientOptions, etcdTls, readCredentials, type LabCredentials } from './lab-secure.js';
import { labLayout, readLabState, type LabState } from './lab-state.js';
import { etcdAlive } from './lab-sweep.js';
import { attachNode } from './node.js';
import { nodeLayout } from './state.js';

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
  /** Network faults in force (flotilla-lab cut, partition, slow); empty when none. */
  faults: string[];
}

export interface EtcdMemberStatus {
  name: string;
  clientUrl: string;
  pid: number | undefined;
  state: 'healthy' | 'unhealthy' | 'down';
  faults: string[];
}

export interface LabStatus {
  dir: string;
  /** False when there is no lab in dir. */
  exists: boolean;
  endpoints: string[];
  /** The lab's range and bridge (src/lab/network.ts); the host's end of the bridge is hostIp. */
  network?: { subnet: string; bridge: string; hostIp: string };
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
  const faults = await faultsOf(layout.dir, state);
  const etcd = await Promise.all(
    state.etcd.members.map(async (m): Promise<EtcdMemberStatus> => {
      const alive = etcdAlive(layout, m);
      // Without the lab's bridge its range has no route of its own: a probe would leave by the default route.
      const reachable = state.network === undefined || existsSync(`/sys/class/net/${state.network.bridge}`);
      const healthy = alive && reachable && (await isHealthy(m.clientUrl, creds && etcdTls(creds)));
      return { name: m.name, clientUrl: m.clientUrl, pid: alive ? m.pid : undefined, state: healthy ? 'healthy' : alive ? 'unhealthy' : 'down', faults: faults.get(m.name) ?? [] };
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
      faults: faults.get(record.name) ?? [],
    });
  }
  return { dir: layout.dir, exists: true, endpoints: state.etcd.endpoints, network: state.network, etcd, nodes, secure: creds !== undefined };
}

/** Machine IDs of the lab's running nodes that have their presence key in etcd, once all do or the time is up. */
export async function waitRegistered(state: LabState, timeoutMs: number, aborted?: () => boolean): Promise<string[]> {
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
