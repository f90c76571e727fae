// npm run bench:e2e: the whole loop on a 3-node lab (flotilla-lab's library:
// etcd on a free loopback port, three systemd-nspawn nodes running the
// compiled flotillad, agent_ttl=5), driven through flotctl as a user would.
// It measures, from the flotctl call until systemd inside the nodes says so:
//   - submit-to-active latency of 50 units started one at a time (p50, p99),
//     with flotctl run in-process (runFlotctl, --no-block), and for a few
//     units as a spawned `node dist/cli/flotctl.js` (process start counted),
//   - 100 units started by one command until all are active (3 runs),
//   - destroy of those 100 until none is loaded on any node (3 runs),
//   - etcd requests per unit started: every client's unary calls handled plus
//     messages received on streams (etcd's /metrics, by gRPC method), from
//     the call until the states are published, less the idle rate (leases):
//     per unit of the 100-unit start, and per one-at-a-time start,
//   - failover: a node (not the engine leader) is SIGKILLed; time until each
//     of its units is active on another node.
// systemd's states come as D-Bus signals from every node's own systemd
// (PropertiesChanged of each unit, UnitRemoved), timestamped on arrival in
// this process; nothing polls. Prints one JSON line.
// BENCH_SINGLE (50), BENCH_SPAWNED (10), BENCH_UNITS (100), BENCH_RUNS (3) adjust it;
// BENCH_TRACE=1 also prints, per 100-unit run, when (ms after the flotctl
// call) the first and last key of each kind was written to etcd (seen by a
// watch of the bench's own: its few requests then count too) and when
// systemd reported the first and last unit, and the CPU time each kind of
// process (etcd, systemd, dbus-daemon, flotillad, this one) spent: where the
// time goes.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { captureIO } from '../../src/ctl/io.js';
import { down, up } from '../../src/lab/cluster.js';
import { killNode } from '../../src/lab/lab-nodes.js';
import { freePorts } from '../../src/lab/etcd.js';
import { attachNode, cleanup, makeRunDir, mountsUnder } from '../../src/lab/nodes.js';
import { Registry } from '../../src/registry/index.js';
import type { Watcher } from 'etcd3';
import { BusConnection, type Signal } from '../../src/systemd/bus.js';
import { UNIT_PATH_PREFIX, unitNameOfPath } from '../../src/systemd/object-paths.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SINGLE = Number(process.env['BENCH_SINGLE'] ?? 50);
const SPAWNED = Number(process.env['BENCH_SPAWNED'] ?? 10);
const UNITS = Number(process.env['BENCH_UNITS'] ?? 100);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const AGENT_TTL_S = 5; // the lab's agent_ttl (src/lab/flotillad-files.ts)
const TRACE = process.env['BENCH_TRACE'] === '1';
// Each unit's file differs (its Description), as real units do: an agent
// caches files by hash, so identical files would be read from etcd once.
const unitText = (name: string): string => `[Unit]\nDescription=bench unit ${name}\n\n[Service]\nExecStart=/bin/sleep infinity\n`;

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const PROPERTIES = 'org.freedesktop.DBus.Properties';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest rank: p99 of 50 samples is the largest. */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
}

const ms = (x: number): number => Math.round(x);

/**
 * One node's systemd, seen from here over its own system bus: which bench
 * units are loaded and in which ActiveState, and when each last became
 * active or was removed (performance.now() at the signal's arrival).
 */
class NodeWatch {
  readonly loaded = new Set<string>();
  readonly state = new Map<string, string>();
  readonly activeAt = new Map<string, number>();
  readonly removedAt = new Map<string, number>();
  dead = false;

  private constructor(
    readonly name: string,
    readonly machineId: string,
    private readonly conn: BusConnection,
    private readonly notify: () => void,
  ) {}

  static async open(name: string, machineId: string, initPid: number, notify: () => void): Promise<NodeWatch> {
    const conn = await BusConnection.open(`unix:path=/proc/${initPid}/root/run/dbus/system_bus_socket`, { connectTimeoutMs: 10_000 });
    const w = new NodeWatch(name, machineId, conn, notify);
    conn.setSignalHandler((s) => w.onSignal(s));
    conn.onClose(() => {
      w.dead = true;
      notify();
    });
    const rule = (member: string): string => `type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER}',member='${member}'`;
    await Promise.all([
      conn.addMatch(
        `type='signal',sender='${SYSTEMD}',interface='${PROPERTIES}',member='PropertiesChanged',path_namespace='${UNIT_PATH_PREFIX}',arg0='org.freedesktop.systemd1.Unit'`,
      ),
      conn.addMatch(rule('UnitNew')),
      conn.addMatch(rule('UnitRemoved')),
    ]);
    await conn.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'Subscribe' }).catch(() => undefined);
    return w;
  }

  private onSignal(s: Signal): void {
    const now = performance.now();
    if (s.interface === PROPERTIES) {
      const name = unitNameOfPath(s.path);
      const props = s.body[1] as Record<string, unknown> | undefined;
      const active = props?.['ActiveState'];
      if (name === undefined || !name.startsWith('bench-') || typeof active !== 'string') return;
      this.loaded.add(name);
      if (active === 'active' && this.state.get(name) !== 'active') this.activeAt.set(name, now);
      this.state.set(name, active);
    } else if (s.member === 'UnitNew' || s.member === 'UnitRemoved') {
      const name = s.body[0];
      if (typeof name !== 'string' || !name.startsWith('bench-')) return;
      if (s.member === 'UnitNew') {
        this.loaded.add(name);
      } else {
        this.loaded.delete(name);
        this.state.delete(name);
        this.removedAt.set(name, now);
      }
    } else {
      return;
    }
    this.notify();
  }

  isActive(unit: string): boolean {
    return !this.dead && this.state.get(unit) === 'active';
  }

  /** Loaded bench units matching a glob, straight from systemd (ListUnitsByPatterns). */
  async listLoaded(pattern: string): Promise<string[]> {
    const [rows] = await this.conn.call({
      destination: SYSTEMD,
      path: MANAGER_PATH,
      interface: MANAGER,
      member: 'ListUnitsByPatterns',
      signature: 'asas',
      body: [[], [pattern]],
    });
    return (rows as unknown[][]).map((r) => String(r[0]));
  }

  close(): void {
    this.conn.close();
  }
}

/** Resolves when check() holds, re-checked on every signal from any node. */
class Waiter {
  private waiters = new Set<() => void>();
  readonly notify = (): void => {
    for (const w of [...this.waiters]) w();
  };

  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = (): void => {
        if (!check()) return;
        this.waiters.delete(test);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }
}

/** etcd requests so far, by gRPC method: unary calls handled, plus messages received on streams. */
async function etcdRequests(clientUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const out = new Map<string, number>();
  const add = (method: string, v: number): void => void out.set(method, (out.get(method) ?? 0) + v);
  for (const m of text.matchAll(/^grpc_server_handled_total\{([^}]*)\} (\S+)$/gm)) {
    if (/grpc_type="unary"/.test(m[1]!)) add(/grpc_method="([^"]+)"/.exec(m[1]!)![1]!, Number(m[2]));
  }
  for (const m of text.matchAll(/^grpc_server_msg_received_total\{([^}]*)\} (\S+)$/gm)) {
    if (!/grpc_type="unary"/.test(m[1]!)) add(/grpc_method="([^"]+)"/.exec(m[1]!)![1]!, Number(m[2]));
  }
  return out;
}

function diff(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0);
  return out;
}

const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** CPU time (user + system, ms) of every process of the lab and of this one, summed by command name. */
function cpuByCommand(labDir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const inLab = cmd.includes(labDir) || Number(pid) === process.pid || nodePids.has(Number(pid));
      if (!inLab) continue;
      const key = Number(pid) === process.pid ? 'bench' : cmd.includes('flotillad') ? 'flotillad' : comm;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
const nodePids = new Set<number>();

let teardown: (() => Promise<void>) | undefined;

async function main(): Promise<void> {
  const runDir = makeRunDir();
  const labDir = path.join(runDir, 'lab');
  const unitDir = path.join(runDir, 'units');
  mkdirSync(unitDir);
  const watches: NodeWatch[] = [];
  let registry: Registry | undefined;
  let tornDown = false;
  teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    for (const w of watches) w.close();
    registry?.close();
    await down(labDir).catch((err: unknown) => console.error(`down: ${String(err)}`));
    await cleanup(runDir);
    if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
  };

  try {
    const [port = 0] = await freePorts('127.0.0.1', 1);
    const t = performance.now();
    const lab = await up({ dir: labDir, nodes: 3, etcdMembers: 1, etcdPort: port });
    if (lab.registered?.length !== 3) {
      const n1 = attachNode(lab.state.nodes[0]!.dir);
      const log = await n1?.exec(['journalctl', '-u', 'flotillad', '-n', '15', '--no-pager']).catch(() => undefined);
      throw new Error(`only ${lab.registered?.length ?? 0} of 3 machines registered; n1's flotillad:\n${log?.stdout ?? '?'}`);
    }
    const upMs = performance.now() - t;
    const endpoint = lab.state.etcd.endpoints[0]!;
    const waiter = new Waiter();
    for (const rec of lab.state.nodes) {
      const node = attachNode(rec.dir);
      if (!node) throw new Error(`node ${rec.name} has no record`);
      watches.push(await NodeWatch.open(rec.name, rec.machineId, node.initPid, waiter.notify));
    }
    // BENCH_TRACE: etcd writes by kind (units, desired, schedule, states, ...), timestamped on arrival.
    const writes: { t: number; kind: string; put: boolean }[] = [];
    let traceWatch: Watcher | undefined;
    if (TRACE) {
      registry = Registry.connect({ endpoints: [endpoint], prefix: '/flotilla/', requestTimeoutMs: 10_000 });
      traceWatch = await registry.client.watch().prefix('/flotilla/').create();
      traceWatch.on('put', (kv) => void writes.push({ t: performance.now(), kind: kv.key.toString().split('/')[2]!, put: true }));
      traceWatch.on('delete', (kv) => void writes.push({ t: performance.now(), kind: kv.key.toString().split('/')[2]!, put: false }));
    }
    const trace = (what: string, t0: number, names: readonly string[], at: (n: string) => number | undefined): void => {
      if (!TRACE) return;
      const span = (xs: number[]): string => (xs.length ? `${ms(Math.min(...xs) - t0)}..${ms(Math.max(...xs) - t0)} (${xs.length})` : '-');
      const kinds = new Map<string, number[]>();
      for (const w of writes) if (w.t >= t0) kinds.set(`${w.kind}${w.put ? '' : '-del'}`, [...(kinds.get(`${w.kind}${w.put ? '' : '-del'}`) ?? []), w.t]);
      const sd = names.map(at).filter((x): x is number => x !== undefined);
      console.error(`${what}: ${[...kinds].map(([k, xs]) => `${k} ${span(xs)}`).join(', ')}, systemd ${span(sd)}`);
    };
    const activeOn = (unit: string): NodeWatch | undefined => watches.find((w) => w.isActive(unit));
    const loadedAnywhere = (unit: string): boolean => watches.some((w) => !w.dead && w.loaded.has(unit));
    const unitFile = (name: string): string => {
      const file = path.join(unitDir, name);
      writeFileSync(file, unitText(name));
      return file;
    };
    const flotctl = async (...args: string[]): Promise<void> => {
      const io = captureIO({ cwd: unitDir, env: {} });
      const code = await runFlotctl(['--endpoint', endpoint, ...args], io);
      if (code !== 0) throw new Error(`flotctl ${args.slice(0, 3).join(' ')}… exited ${code}: ${io.stderr.trim()}`);
    };

    // 1. one unit at a time, in-process flotctl
    const single: number[] = [];
    const singleCli: number[] = [];
    const singleSteps: { t0: number; cli: number; active: number }[] = [];
    const singleReq0 = await etcdRequests(endpoint);
    const singleT0 = performance.now();
    for (let i = 0; i < SINGLE; i++) {
      const name = `bench-s-${i}.service`;
      const file = unitFile(name);
      const t0 = performance.now();
      await flotctl('start', '--no-block', file);
      singleCli.push(performance.now() - t0);
      await waiter.until(() => activeOn(name) !== undefined, 30_000, `${name} active`);
      single.push(activeOn(name)!.activeAt.get(name)! - t0);
      if (TRACE) singleSteps.push({ t0, cli: singleCli.at(-1)! + t0, active: activeOn(name)!.activeAt.get(name)! });
    }
    // one more second for the last unit's state to be published
    await new Promise((r) => setTimeout(r, 1_000));
    const singleReq = diff(await etcdRequests(endpoint), singleReq0);
    const singleWindowS = (performance.now() - singleT0) / 1000;
    if (TRACE) {
      // per unit: the last write of each kind before the next unit's call
      const steps = new Map<string, number[]>();
      singleSteps.forEach((u, i) => {
        const end = singleSteps[i + 1]?.t0 ?? Infinity;
        const last = new Map<string, number>([['cli-returned', u.cli], ['systemd-active', u.active]]);
        for (const w of writes) if (w.t >= u.t0 && w.t < end) last.set(w.kind, w.t);
        for (const [k, t] of last) steps.set(k, [...(steps.get(k) ?? []), t - u.t0]);
      });
      console.error(`single units, median ms after the call: ${[...steps].map(([k, xs]) => `${k} ${ms(median(xs))}`).join(', ')}`);
    }

    // 1b. the same through a spawned flotctl process (node start counted)
    const spawned: number[] = [];
    const cliJs = path.join(repo, 'dist/cli/flotctl.js');
    for (let i = 0; i < SPAWNED; i++) {
      const name = `bench-p-${i}.service`;
      const file = unitFile(name);
      const t0 = performance.now();
      const child = spawn(process.execPath, [cliJs, '--endpoint', endpoint, 'start', '--no-block', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await waiter.until(() => activeOn(name) !== undefined, 30_000, `${name} active`);
      spawned.push(activeOn(name)!.activeAt.get(name)! - t0);
      const code = await exited;
      if (code !== 0) throw new Error(`spawned flotctl exited ${code}: ${stderr.trim()}`);
    }

    // 2. 100 units by one command, then destroyed by one command; 3 runs
    const idle0 = await etcdRequests(endpoint);
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const idleReqPerS = total(diff(await etcdRequests(endpoint), idle0)) / ((performance.now() - idleT0) / 1000);
    const startAll: number[] = [];
    const startCli: number[] = [];
    const destroyAll: number[] = [];
    const destroyCli: number[] = [];
    const perUnit: number[] = [];
    const perUnitRaw: number[] = [];
    const byMethod: Record<string, number>[] = [];
    const spread: number[][] = [];
    for (let run = 0; run < RUNS; run++) {
      const names = Array.from({ length: UNITS }, (_, i) => `bench-r${run}-${i}.service`);
      const files = names.map(unitFile);
      const req0 = await etcdRequests(endpoint);
      if (TRACE) for (const rec of lab.state.nodes) for (const pid of attachNode(rec.dir)?.processes() ?? []) nodePids.add(pid);
      const cpu0 = TRACE ? cpuByCommand(labDir) : new Map<string, number>();
      const t0 = performance.now();
      await flotctl('start', '--no-block', ...files);
      startCli.push(performance.now() - t0);
      await waiter.until(() => names.every((n) => activeOn(n) !== undefined), 60_000, `${UNITS} units active`);
      startAll.push(Math.max(...names.map((n) => activeOn(n)!.activeAt.get(n)!)) - t0);
      spread.push(watches.map((w) => names.filter((n) => w.isActive(n)).length));
      // Agents publish the states after systemd reports them: let that land.
      await new Promise((r) => setTimeout(r, 1_500));
      trace(`start run ${run}`, t0, names, (n) => activeOn(n)?.activeAt.get(n));
      if (TRACE) console.error(`  cpu ms: ${JSON.stringify(Object.fromEntries([...cpuByCommand(labDir)].map(([k, v]) => [k, v - (cpu0.get(k) ?? 0)]).filter(([, v]) => Number(v) > 0)))}`);
      const windowS = (performance.now() - t0) / 1000;
      const d = diff(await etcdRequests(endpoint), req0);
      byMethod.push(d);
      perUnitRaw.push(total(d) / UNITS);
      perUnit.push((total(d) - idleReqPerS * windowS) / UNITS);

      const t1 = performance.now();
      await flotctl('destroy', '--no-block', ...names);
      destroyCli.push(performance.now() - t1);
      await waiter.until(() => names.every((n) => !loadedAnywhere(n)), 60_000, `${UNITS} units unloaded`);
      destroyAll.push(Math.max(...names.map((n) => Math.max(0, ...watches.map((w) => w.removedAt.get(n) ?? 0)))) - t1);
      await new Promise((r) => setTimeout(r, TRACE ? 500 : 0));
      trace(`destroy run ${run}`, t1, names, (n) => Math.max(0, ...watches.map((w) => w.removedAt.get(n) ?? 0)) || undefined);
      for (const w of watches) {
        const left = await w.listLoaded(`bench-r${run}-*`);
        if (left.length > 0) throw new Error(`node ${w.name} still has ${left.length} units loaded after destroy: ${left.slice(0, 3).join(', ')}`);
      }
    }

    // 3. failover: kill a node that is not the engine leader; its units (the
    //    one-at-a-time ones still run) must become active elsewhere.
    await traceWatch?.cancel();
    registry ??= Registry.connect({ endpoints: [endpoint], prefix: '/flotilla/', requestTimeoutMs: 10_000 });
    const leader = (await registry.getLeader())?.id;
    const candidates = watches.filter((w) => w.machineId !== leader);
    const victim = candidates.sort((a, b) => [...b.state.values()].filter((s) => s === 'active').length - [...a.state.values()].filter((s) => s === 'active').length)[0]!;
    const moving = [...victim.state.entries()].filter(([, s]) => s === 'active').map(([n]) => n);
    if (moving.length === 0) throw new Error(`node ${victim.name} runs no units to fail over`);
    const tk = performance.now();
    await killNode(labDir, victim.name);
    await waiter.until(() => moving.every((n) => activeOn(n) !== undefined), 60_000, `${moving.length} units of ${victim.name} active elsewhere`);
    const failoverMs = Math.max(...moving.map((n) => activeOn(n)!.activeAt.get(n)!)) - tk;

    const runs = (xs: number[]): number[] => xs.map(ms);
    const medianRun = byMethod[perUnit.indexOf([...perUnit].sort((a, b) => a - b)[Math.floor(perUnit.length / 2)]!)]!;
    console.log(
      JSON.stringify({
        bench: 'e2e',
        nodes: 3,
        agent_ttl_s: AGENT_TTL_S,
        lab_up_ms: ms(upMs),
        single_units: SINGLE,
        single_start_active_p50_ms: ms(percentile(single, 50)),
        single_start_active_p99_ms: ms(percentile(single, 99)),
        single_start_active_max_ms: ms(Math.max(...single)),
        single_cli_return_p50_ms: ms(percentile(singleCli, 50)),
        spawned_units: SPAWNED,
        spawned_start_active_p50_ms: ms(percentile(spawned, 50)),
        spawned_start_active_max_ms: ms(Math.max(...spawned)),
        units: UNITS,
        runs: RUNS,
        start_all_active_ms: ms(median(startAll)),
        start_all_active_ms_runs: runs(startAll),
        start_cli_return_ms: ms(median(startCli)),
        start_spread_per_node: spread[0],
        destroy_none_loaded_ms: ms(median(destroyAll)),
        destroy_none_loaded_ms_runs: runs(destroyAll),
        destroy_cli_return_ms: ms(median(destroyCli)),
        etcd_requests_per_unit: Number(median(perUnit).toFixed(2)),
        etcd_requests_per_single_start: Number(((total(singleReq) - idleReqPerS * singleWindowS) / SINGLE).toFixed(2)),
        etcd_requests_by_method_single: Object.fromEntries(Object.entries(singleReq).map(([k, v]) => [k, Number((v / SINGLE).toFixed(2))])),
        etcd_requests_per_unit_raw: Number(median(perUnitRaw).toFixed(2)),
        etcd_idle_requests_per_s: Number(idleReqPerS.toFixed(2)),
        etcd_requests_by_method: medianRun,
        failover_ms: ms(failoverMs),
        failover_units: moving.length,
        failover_killed: victim.name,
      }),
    );
  } finally {
    await teardown();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`${sig}: tearing the lab down`);
    void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
