// A lab node: a real systemd, booted with systemd-nspawn over an overlay of
// the host root, with its own machine ID, host name and address (loopback, or
// its own on the lab's bridge, in a network namespace the lab prepared).
// Boot one with bootNode(); end it with stop() (clean power-off), kill()
// (abrupt machine death) and destroy() (remove every trace).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNodeCgroups, removeNodeCgroups } from './cgroup.js';
import { run, type RunResult } from './exec.js';
import { mountOverlay, mountsUnder, unmountAll } from './mounts.js';
import { findInit, startNspawn } from './nspawn.js';
import { childrenOf, isAlive, pidNamespace, pidsInNamespace, signal, startTime, waitForExit } from './proc.js';
import { prepareRoot, type NodeIdentity } from './rootfs.js';
import { nodeLayout, readRecord, writeRecord, type NodeLayout, type NodeRecord } from './state.js';

export interface BootOptions {
  /** Folder that holds the node's folder (stateDir/name). */
  stateDir: string;
  /** Machine name and host name: lower-case letters, digits and dashes. */
  name: string;
  /**
   * The node's own address: a loopback address (127.0.0.0/8; a random one
   * when absent), or, with netns, its address in that namespace.
   */
  ip?: string;
  /**
   * A network namespace prepared for the node (a path under /run/netns, see
   * src/lab/network.ts); without one the node shares the host's network.
   */
  netns?: string;
  /** 32 lower-case hex digits; a random one when absent. */
  machineId?: string;
  /** Units lab-node.target wants, started at boot (flotillad, say). */
  wants?: string[];
  /** Extra files written into the node's root before boot, by absolute path inside the node. */
  files?: Record<string, string>;
  /** Of files, those written with mode 0600 (keys, passwords). */
  privateFiles?: readonly string[];
  /**
   * Read-only folders laid over the host root in the node's overlay, the
   * first on top: files the node sees as the host's (tests use it to stand
   * for units a host has enabled, without changing the host). Each must be
   * the root of a file system of its own, a tmpfs say: overlayfs refuses a
   * layer inside the host root (ELOOP).
   */
  hostLayers?: readonly string[];
  /** How long boot may take until `running` or `degraded`; default 60 s. */
  bootTimeoutMs?: number;
}

export interface ExecOptions {
  input?: string;
  /** Default 30 s; the command is killed after it. */
  timeoutMs?: number;
  /** Extra environment on top of the node's plain one. */
  env?: Record<string, string>;
}

export class NodeBootError extends Error {
  override readonly name = 'NodeBootError';
}

/** Boots a node and waits until its systemd says `running` or `degraded`. */
export async function bootNode(opts: BootOptions): Promise<LabNode> {
  const identity: NodeIdentity = {
    name: checkName(opts.name),
    machineId: checkMachineId(opts.machineId ?? randomBytes(16).toString('hex')),
    ip: opts.netns === undefined ? checkLoopback(opts.ip ?? randomLoopback()) : checkIpv4(opts.ip),
  };
  const stateDir = path.resolve(opts.stateDir);
  await mkdir(stateDir, { recursive: true });
  const layout = nodeLayout(path.join(stateDir, identity.name));
  // Not recursive: a folder left by an earlier node must be destroyed, not reused.
  await mkdir(layout.dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    throw new NodeBootError(`node folder ${layout.dir} exists already: destroy that node or run cleanup() first`);
  });
  const record: NodeRecord = { ...identity };
  writeRecord(layout, record);
  const node = new LabNode(identity, layout);
  const started = Date.now();
  try {
    await Promise.all([mkdir(layout.upper), mkdir(layout.work), mkdir(layout.root)]);
    await mountOverlay({ upper: layout.upper, work: layout.work, target: layout.root, lower: opts.hostLayers });
    await prepareRoot(layout.root, identity, { wants: opts.wants ?? [], files: opts.files ?? {}, privateFiles: opts.privateFiles ?? [] });
    const nspawn = startNspawn(layout.root, identity.name, layout.log, createNodeCgroups(layout.dir), opts.netns);
    Object.assign(record, { nspawnPid: nspawn.pid, nspawnStart: startTime(nspawn.pid) });
    writeRecord(layout, record);
    node.attachNspawn(nspawn.pid, record.nspawnStart);
    live.add(node);

    const deadline = started + (opts.bootTimeoutMs ?? 60_000);
    const initPid = await waitForInit(node, nspawn.pid, deadline);
    const ns = pidNamespace(initPid);
    if (ns === undefined) throw await node.bootError('the node\'s systemd ended right after it started');
    Object.assign(record, { initPid, pidNamespace: ns });
    writeRecord(layout, record);
    node.attachInit(initPid, ns);
    await waitForBoot(node, deadline);
    node.bootMs = Date.now() - started;
    return node;
  } catch (err) {
    await node.destroy().catch(() => undefined);
    throw err;
  }
}

/**
 * A handle on a node booted earlier, maybe by another process (flotilla-lab's
 * CLI), from the record in its folder; undefined when dir holds no record.
 * Whether it still runs is for initAlive()/nspawnAlive() to say.
 */
export function attachNode(dir: string): LabNode | undefined {
  const layout = nodeLayout(path.resolve(dir));
  const record = readRecord(layout);
  if (record === undefined) return undefined;
  const node = new LabNode({ name: record.name, machineId: record.machineId, ip: record.ip }, layout);
  if (record.nspawnPid !== undefined) node.attachNspawn(record.nspawnPid, record.nspawnStart);
  if (record.initPid !== undefined && record.pidNamespace !== undefined) node.attachInit(record.initPid, record.pidNamespace);
  return node;
}

// Nodes of this process not yet destroyed, for killLiveNodesSync().
const live = new Set<LabNode>();

/**
 * Last resort for a process that is exiting without having destroyed its
 * nodes (an interrupted test run): SIGKILL every node's systemd.
 * Synchronous, for process.on('exit'); mounts and folders are left for
 * cleanup().
 */
export function killLiveNodesSync(): void {
  for (const node of live) {
    if (node.initAlive()) signal(node.initPid, 'SIGKILL');
    // Before its systemd is known: nspawn's children (nspawn then exits).
    if (node.nspawnAlive()) for (const child of childrenOf(node.nspawnPid)) signal(child, 'SIGKILL');
  }
  live.clear();
}

/** A booted node. Its processes outlive this handle; destroy() or cleanup() ends them. */
export class LabNode {
  readonly name: string;
  readonly machineId: string;
  readonly ip: string;
  /** The node's folder: upper, work, root, nspawn.log, nspawn.pid, node.json. */
  readonly dir: string;
  /** The mounted overlay, the node's / seen from the host. */
  readonly root: string;
  readonly logFile: string;
  /** The PID of systemd-nspawn. */
  nspawnPid = 0;
  /** The PID (on the host) of the node's systemd, PID 1 inside the node. */
  initPid = 0;
  /** The node's PID namespace: every process in it belongs to the node. */
  pidNamespace = '';
  /** `running`, or `degraded` with the failed units in failedUnits. */
  bootState: 'running' | 'degraded' = 'running';
  failedUnits: string[] = [];
  /** Milliseconds from bootNode() until the node said running or degraded. */
  bootMs = 0;

  private nspawnStart: number | undefined;
  private destroyed = false;

  /**
   * The node's whole file system as its systemd sees it, from the host:
   * `root` lacks the tmpfs nspawn mounts on the node's /run and /tmp.
   */
  get hostRoot(): string {
    return `/proc/${this.initPid}/root`;
  }

  /** The node's system D-Bus, reachable from the host (to drive its systemd). */
  get busAddress(): string {
    return `unix:path=${this.hostRoot}/run/dbus/system_bus_socket`;
  }

  /** @internal bootNode() makes nodes. */
  constructor(identity: NodeIdentity, private readonly layout: NodeLayout) {
    this.name = identity.name;
    this.machineId = identity.machineId;
    this.ip = identity.ip;
    this.dir = layout.dir;
    this.root = layout.root;
    this.logFile = layout.log;
  }

  /** @internal */
  attachNspawn(pid: number, start: number | undefined): void {
    this.nspawnPid = pid;
    this.nspawnStart = start;
  }

  /** @internal */
  attachInit(pid: number, ns: string): void {
    this.initPid = pid;
    this.pidNamespace = ns;
  }

  /** Runs argv inside the node (its mount, UTS, IPC, PID and network namespaces). */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const command = this.enterCommand(argv, opts.env);
    return run(command.argv, { input: opts.input, timeoutMs: opts.timeoutMs, env: command.env });
  }

  /**
   * The host command line and environment that run argv inside the node, for
   * callers that run it themselves (an interactive `flotilla-lab exec`).
   */
  enterCommand(argv: readonly string[], env: Record<string, string> = {}): { argv: string[]; env: Record<string, string> } {
    if (!this.initAlive()) throw new Error(`node ${this.name} is not running`);
    const enter = ['nsenter', '-t', String(this.initPid), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--'];
    return { argv: [...enter, ...argv], env: { ...NODE_ENV, ...env } };
  }

  /** Every live process of the node on the host: nspawn and all in the node's PID namespace. */
  processes(): number[] {
    // Only while the node's init lives: once it is gone the kernel has ended
    // its namespace, and the namespace's number may already name another
    // node's (the kernel reuses them).
    const pids = this.initAlive() ? pidsInNamespace(this.pidNamespace) : [];
    return this.nspawnAlive() ? [this.nspawnPid, ...pids] : pids;
  }

  /** Powers the node off cleanly (SIGTERM to nspawn), then removes it (destroy()). */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (this.nspawnAlive()) {
      signal(this.nspawnPid, 'SIGTERM');
      await waitForExit(this.nspawnPid, timeoutMs);
    }
    await this.destroy();
  }

  /**
   * Machine death: SIGKILL to the node's systemd ends every process in the
   * node at once (SIGKILL to nspawn would not: the init would be adopted and
   * live on). Waits until nspawn has gone, then removes the node's cgroups;
   * the folder stays until destroy().
   */
  async kill(timeoutMs = 15_000): Promise<void> {
    await this.endProcesses(timeoutMs);
    await removeNodeCgroups(this.dir);
  }

  /** Ends whatever is left of the node, removes its cgroups, unmounts its overlay and deletes its folder. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.endProcesses(15_000);
    // A cgroup that cannot go (a process someone moved into it) is reported
    // after the rest is removed, not instead of it.
    const cgroupError = await removeNodeCgroups(this.dir).then(() => undefined, (err: unknown) => err);
    await unmountAll(this.dir);
    // rm would descend into a mount; unmountAll has thrown if one is left.
    if (mountsUnder(this.dir).length === 0) await rm(this.dir, { recursive: true, force: true });
    if (cgroupError !== undefined) throw cgroupError;
    this.destroyed = true;
    live.delete(this);
  }

  /** The last lines of nspawn's log (the node's console). */
  async logTail(lines = 30): Promise<string> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** @internal An error for a failed boot, with the log's tail. */
  async bootError(message: string): Promise<NodeBootError> {
    return new NodeBootError(`node ${this.name} (${this.dir}): ${message}; nspawn log tail:\n${await this.logTail()}`);
  }

  /** True while nspawn runs (the same process, not a reused PID). */
  nspawnAlive(): boolean {
    return this.nspawnPid > 0 && isAlive(this.nspawnPid) && startTime(this.nspawnPid) === this.nspawnStart;
  }

  /** True while the node's systemd runs (the same process, not a reused PID). */
  initAlive(): boolean {
    return this.initPid > 0 && isAlive(this.initPid) && pidNamespace(this.initPid) === this.pidNamespace;
  }

  // SIGKILL the node's systemd (the kernel then ends its whole PID
  // namespace) and any other child of nspawn (its set-up code, before the
  // systemd exists); nspawn then exits by itself. nspawn is killed only as a
  // last resort: killed first, it would leave its child running.
  private async endProcesses(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.initAlive()) signal(this.initPid, 'SIGKILL');
      if (this.nspawnAlive()) {
        for (const child of childrenOf(this.nspawnPid)) signal(child, 'SIGKILL');
        if (Date.now() > deadline) signal(this.nspawnPid, 'SIGKILL');
      }
      const left = this.processes();
      if (left.length === 0) return;
      if (Date.now() > deadline + 5_000) throw new Error(`node ${this.name}: processes ${left.join(' ')} did not end`);
      await sleep(50);
    }
  }
}

// A plain environment for commands in the node: nothing of the test
// runner's (NODE_OPTIONS, say) leaks in.
const NODE_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
};

async function waitForInit(node: LabNode, nspawnPid: number, deadline: number): Promise<number> {
  for (;;) {
    const init = findInit(nspawnPid);
    if (init !== undefined) return init;
    if (!isAlive(nspawnPid)) throw await node.bootError('systemd-nspawn exited before the node\'s systemd started');
    if (Date.now() > deadline) throw await node.bootError('the node\'s systemd did not start in time');
    await sleep(25);
  }
}

// Polls `systemctl is-system-running` until the boot is over. `starting`
// and `initializing` mean wait, and so does `offline` while the node's
// systemd lives: it says that until the manager's socket exists.
async function waitForBoot(node: LabNode, deadline: number): Promise<void> {
  for (;;) {
    if (!node.initAlive()) throw await node.bootError('the node\'s systemd ended during boot');
    const result = await node.exec(['systemctl', 'is-system-running'], { timeoutMs: 10_000 });
    const last = (result.stdout.trim() || result.stderr.trim()).split('\n')[0] ?? '';
    if (last === 'running') return;
    if (last === 'degraded') {
      node.bootState = 'degraded';
      node.failedUnits = await failedUnits(node);
      return;
    }
    if (last === 'maintenance' || last === 'stopping') {
      throw await node.bootError(`boot ended in state ${last}`);
    }
    if (Date.now() > deadline) throw await node.bootError(`not running in time (last state: ${last || 'none'})`);
    await sleep(100);
  }
}

async function failedUnits(node: LabNode): Promise<string[]> {
  const result = await node.exec(['systemctl', 'list-units', '--state=failed', '--plain', '--no-legend', '--no-pager']);
  return result.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

function checkName(name: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
    throw new Error(`node name ${JSON.stringify(name)} must be a host name: lower-case letters, digits, inner dashes`);
  }
  return name;
}

function checkMachineId(id: string): string {
  if (!/^[0-9a-f]{32}$/.test(id) || /^0+$/.test(id)) {
    throw new Error(`machine ID ${JSON.stringify(id)} must be 32 lower-case hex digits, not all zero`);
  }
  return id;
}

// Without a namespace of its own a node serves on loopback only: the lab sends no traffic elsewhere.
function checkLoopback(ip: string): string {
  const parts = ip.split('.').map(Number);
  const valid = parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255);
  if (!valid || parts[0] !== 127 || ip !== parts.join('.')) {
    throw new Error(`node address ${JSON.stringify(ip)} must be a loopback address in 127.0.0.0/8`);
  }
  return ip;
}

function checkIpv4(ip: string | undefined): string {
  const parts = (ip ?? '').split('.').map(Number);
  if (ip === undefined || parts.length !== 4 || !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) || ip !== parts.join('.')) {
    throw new Error(`node address ${JSON.stringify(ip)} must be an IPv4 address in the node's network namespace`);
  }
  return ip;
}

// 127.x.y.z avoiding .0, .255 and 127.0.0.x, where the host's own services sit.
function randomLoopback(): string {
  const [a = 1, b = 1, c = 1] = randomBytes(3);
  return `127.${a === 0 ? 1 : a}.${b}.${Math.min(Math.max(c, 1), 254)}`;
}
