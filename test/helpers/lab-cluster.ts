// A lab cluster for one e2e test file: etcd and N
// real systemd nodes (src/lab, as flotilla-lab up builds them) in a folder
// of this run, each running the compiled flotillad as a systemd service.
// Tests drive it with flotctl (in-process, runFlotctl) and read systemd's
// real state inside the nodes. close() takes down every process, mount and
// folder it made, also after a failed test; a process that dies without
// closing is covered by killLiveNodesSync (on exit) and the global sweep.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { captureIO } from '../../src/ctl/io.js';
import { down, up } from '../../src/lab/cluster.js';
import { apiTokenFile } from '../../src/lab/lab-folder.js';
import { cut, heal, partition, slow, type SlowSpec } from '../../src/lab/faults.js';
import { addNode, killNode, runningNode, stopNode } from '../../src/lab/lab-nodes.js';
import type { RunResult } from '../../src/lab/exec.js';
import { labLayout, readLabState, type LabNodeRecord } from '../../src/lab/lab-state.js';
import { cleanup, killLiveNodesSync, makeRunDir, mountsUnder, type LabNode } from '../../src/lab/nodes.js';
import { Registry } from '../../src/registry/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The lab's settings (src/lab/flotillad-files.ts), which failover timings depend on. */
export const AGENT_TTL_S = 5;
export const ENGINE_TTL_S = 5;

// Newest modification time of the .ts files under dir, in ms.
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Lab nodes run dist/cli/flotillad.js: build it unless it is newer than
 * every source file (tsc rewrites every output, so one build per run of
 * the suite, however many files call this).
 */
export function ensureBuilt(): void {
  const built = mtime(path.join(repo, 'dist', 'cli', 'flotillad.js'));
  const sources = Math.max(newestSource(path.join(repo, 'src')), newestSource(path.join(repo, 'cli')));
  if (built > sources) return;
  const result = spawnSync('npm', ['run', '-s', 'build'], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`npm run build failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
}

/** Polls check every 100 ms until it is true; throws after ms with what and the last detail. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 20_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

export interface FlotctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface LabClusterOptions {
  nodes?: number;
  /** As flotilla-lab's --metadata: `k=v,...` for every node or `NODE=k=v,...`. */
  metadata?: string[];
}

export class LabCluster {
  /** Local unit files are written here and submitted by path. */
  readonly unitDir: string;
  readonly registry: Registry;

  private constructor(
    readonly runDir: string,
    readonly dir: string,
    readonly endpoint: string,
    /** The host's address on the lab's bridge: what the nodes reach the host at. */
    readonly hostIp: string,
  ) {
    this.unitDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-units-'));
    this.registry = Registry.connect({ endpoints: [endpoint], requestTimeoutMs: 5_000 });
  }

  /** Builds if needed, then brings up etcd and the nodes one after another and waits until every machine registered. */
  static async start(opts: LabClusterOptions = {}): Promise<LabCluster> {
    ensureBuilt();
    process.once('exit', killLiveNodesSync);
    const runDir = makeRunDir();
    const dir = path.join(runDir, 'lab');
    try {
      const result = await up({ dir, nodes: opts.nodes ?? 3, etcdMembers: 1, metadata: opts.metadata ?? [] });
      const count = result.state.nodes.length;
      if (result.registered?.length !== count) {
        throw new Error(`only ${result.registered?.length ?? 0} of ${count} machines registered in etcd`);
      }
      return new LabCluster(runDir, dir, result.state.etcd.endpoints[0] ?? '', result.state.network.hostIp);
    } catch (err) {
      await down(dir).catch(() => undefined);
      await cleanup(runDir).catch(() => undefined);
      if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Every process, mount and folder of the cluster goes. */
  async close(): Promise<void> {
    this.registry.close();
    rmSync(this.unitDir, { recursive: true, force: true });
    try {
      await down(this.dir);
    } finally {
      await cleanup(this.runDir);
      if (mountsUnder(this.runDir).length === 0) rmSync(this.runDir, { recursive: true, force: true });
      process.off('exit', killLiveNodesSync);
    }
  }

  /** The lab's node records (every node ever booted, with its disposition). */
  records(): LabNodeRecord[] {
    return readLabState(labLayout(this.dir))?.nodes ?? [];
  }

  /** Names of the nodes that run. */
  running(): string[] {
    return this.records()
      .filter((n) => n.disposition === 'running')
      .map((n) => n.name);
  }

  record(name: string): LabNodeRecord {
    const r = this.records().find((n) => n.name === name);
    if (!r) throw new Error(`no node ${name}`);
    return r;
  }

  machineId(name: string): string {
    return this.record(name).machineId;
  }

  nameOf(machineId: string): string | undefined {
    return this.records().find((n) => n.machineId === machineId)?.name;
  }

  node(name: string): LabNode {
    return runningNode(this.dir, name);
  }

  exec(name: string, argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.node(name).exec(argv, opts);
  }

  async sh(name: string, ...argv: string[]): Promise<string> {
    return (await this.exec(name, argv)).stdout.trim();
  }

  /** `systemctl is-active UNIT` inside the node. */
  isActive(name: string, unit: string): Promise<string> {
    return this.sh(name, 'systemctl', 'is-active', unit);
  }

  /** One property of `systemctl show` inside the node. */
  show(name: string, unit: string, prop: string): Promise<string> {
    return this.sh(name, 'systemctl', 'show', '-p', prop, '--value', unit);
  }

  /** Running nodes on which systemd says the unit is active, in name order. */
  async activeOn(unit: string): Promise<string[]> {
    const names = this.running();
    const states = await Promise.all(names.map((n) => this.isActive(n, unit)));
    return names.filter((_, i) => states[i] === 'active');
  }

  /**
   * Running nodes whose systemd has the unit loaded from a file that is
   * there: LoadState=loaded and NeedDaemonReload=no. (systemd can keep an
   * unloaded unit's definition in memory, inactive, after its file is gone,
   * until it garbage-collects it or reloads; that one does not count.)
   */
  async loadedOn(unit: string): Promise<string[]> {
    const names = this.running();
    const states = await Promise.all(names.map((n) => this.sh(n, 'systemctl', 'show', '-p', 'LoadState,NeedDaemonReload', unit)));
    return names.filter((_, i) => /^LoadState=loaded$/m.test(states[i]!) && /^NeedDaemonReload=no$/m.test(states[i]!));
  }

  /** Waits until the unit is active on exactly one node (and not loaded elsewhere); returns that node. */
  async activeOnOne(unit: string, ms = 20_000): Promise<string> {
    let on: string[] = [];
    await eventually(async () => {
      on = await this.activeOn(unit);
      return on.length === 1 && (await this.loadedOn(unit)).length === 1;
    }, `${unit} active on exactly one node (now on: ${on.join(',') || 'none'})`, ms);
    return on[0]!;
  }

  /** The node the engine decided the unit onto, if any. */
  async scheduledOn(unit: string): Promise<string | undefined> {
    const d = (await this.registry.listDecisions()).find((x) => x.unit === unit);
    return d ? this.nameOf(d.machine) : undefined;
  }

  /** The engine leader's node. */
  async leader(): Promise<string | undefined> {
    const l = await this.registry.getLeader();
    return l ? this.nameOf(l.id) : undefined;
  }

  /** Writes a unit file into unitDir; returns its path. */
  writeUnit(name: string, text: string): string {
    const file = path.join(this.unitDir, name);
    writeFileSync(file, text);
    return file;
  }

  /** flotctl in-process against the lab, relative paths read from unitDir. */
  async flotctl(...args: string[]): Promise<FlotctlResult> {
    const io = captureIO({ cwd: this.unitDir, env: this.flotctlEnv() });
    const code = await runFlotctl(args, io);
    return { code, stdout: io.stdout, stderr: io.stderr };
  }

  /** The environment flotctl runs with against the lab (as the lab's env file sets it). */
  flotctlEnv(): Record<string, string> {
    return { FLOTCTL_ENDPOINT: this.endpoint, FLOTCTL_API_TOKEN_FILE: apiTokenFile(labLayout(this.dir)) };
  }

  /** flotctl that must succeed; returns stdout. */
  async ctl(...args: string[]): Promise<string> {
    const r = await this.flotctl(...args);
    if (r.code !== 0) throw new Error(`flotctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Unit names in the registry, as list-unit-files prints them. */
  async unitNames(): Promise<string[]> {
    const out = await this.ctl('list-unit-files', '--no-legend', '--fields', 'unit');
    return out.split('\n').filter(Boolean);
  }

  /**
   * Between scenarios: destroys every unit, then waits until no running
   * node's flotillad has a unit file left and systemd has none of them.
   */
  async destroyAll(): Promise<void> {
    const names = await this.unitNames();
    if (names.length > 0) await this.ctl('destroy', ...names);
    await eventually(async () => {
      for (const n of this.running()) {
        if ((await this.sh(n, 'sh', '-c', 'ls /run/flotilla/units 2>/dev/null | wc -l')) !== '0') return false;
      }
      if ((await this.registry.listStates()).length > 0) return false;
      for (const u of names) if ((await this.loadedOn(u)).length > 0 || (await this.activeOn(u)).length > 0) return false;
      return true;
    }, `every unit gone from every node's systemd (${names.join(', ')})`);
  }

  /** Machine death (SIGKILL to the node's systemd). */
  kill(name: string): Promise<void> {
    return killNode(this.dir, name);
  }

  /** Clean power-off of the node. */
  stop(name: string): Promise<void> {
    return stopNode(this.dir, name);
  }

  /** Cuts a node or etcd member (etcd1, ...) off the lab's network (src/lab/faults.ts). */
  cut(name: string): Promise<void> {
    return cut(this.dir, name);
  }

  /** Sides of nodes and etcd members that cannot reach each other. */
  partition(...sides: string[][]): Promise<void> {
    return partition(this.dir, sides);
  }

  slow(name: string, spec: SlowSpec): Promise<void> {
    return slow(this.dir, name, spec);
  }

  /** Undoes cut, partition and slow for the names (every node and member when none). */
  heal(...names: string[]): Promise<string[]> {
    return heal(this.dir, names);
  }

  /** Boots one more node and waits for its machine to register; returns its name. */
  async add(metadata: string[] = []): Promise<string> {
    return (await addNode(this.dir, undefined, { metadata })).name;
  }
}
