// npm run bench:schedule: the engine scheduling U units onto M hollow
// machines through a private etcd. Units: plain, instances of a template,
// 10% with MachineMetadata, 5% with Conflicts, 1% Global. Two scenarios per
// size (see run()); the headline placements_per_s is the backlog one, timed
// from after the last submit. Prints one JSON line per size
// (BENCH_SIZES="1000x10000,5000x100000"; BENCH_LIVE=0 skips the live run).
// The engine runs compiled (npm run bench:schedule builds it into
// dist-bench/), as flotillad does from dist/: tsx's loader would be measured too.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { Registry, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { HollowCluster } from '../helpers/hollow.js';

const SIZES = (process.env['BENCH_SIZES'] ?? '1000x10000').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const BATCH = 1_000;
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

function unitsFor(count: number): UnitRecord[] {
  const out: UnitRecord[] = [];
  const template = parseUnit('web@.service', '[Service]\nExecStart=/bin/sleep infinity\n');
  const make = (name: string, xfleet: string): UnitRecord => {
    const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n${xfleet ? `\n[X-Fleet]\n${xfleet}\n` : ''}`);
    return { name, text: p.text, hash: p.hash, global: p.requirements.global };
  };
  for (let i = 0; i < count; i++) {
    const k = i % 100;
    if (k === 0) out.push(make(`global-${i}.service`, 'Global=true'));
    else if (k <= 5) out.push(make(`conflict-${Math.floor(i / 1000)}-${i}.service`, `Conflicts=conflict-${Math.floor(i / 1000)}-*`));
    else if (k <= 15) out.push(make(`db-${i}.service`, 'MachineMetadata=role=db'));
    else if (k <= 55) out.push({ name: `web@${i}.service`, text: template.text, hash: template.hash, global: false });
    else out.push(make(`plain-${i}.service`, ''));
  }
  return out;
}

/** The run whose placements_per_s is the median (its other figures with it). */
function medianRun(runs: Record<string, unknown>[]): Record<string, unknown> {
  const sorted = [...runs].sort((a, b) => Number(a['placements_per_s']) - Number(b['placements_per_s']));
  const { scenario: _s, ...rest } = sorted[Math.floor(sorted.length / 2)]!;
  return rest;
}

/** CPU time (user + system) a process has used, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

interface EngineChild {
  pid: number;
  ask(): Promise<{ leading: boolean; stats: Record<string, number> | null; peakRssKiB: number }>;
  waitLeading(): Promise<void>;
  stop(): Promise<void>;
}

function startEngine(endpoints: string[], prefix: string): EngineChild {
  // BENCH_PROFILE=DIR writes a CPU profile of the engine there
  const profile = process.env['BENCH_PROFILE'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_PROFILE']}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'test/bench/engine-child.ts'], {
    env: { ...process.env, ENDPOINTS: endpoints.join(','), PREFIX: prefix },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const ask: EngineChild['ask'] = () =>
    new Promise((resolve) => {
      lines.once('line', (l) => resolve(JSON.parse(l)));
      child.stdin!.write('stats\n');
    });
  return {
    pid: child.pid!,
    ask,
    async waitLeading() {
      while (!(await ask()).leading) await new Promise((r) => setTimeout(r, 10));
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * One scenario. 'backlog': every unit is submitted launched before the
 * engine starts; timed from its election (after the last submit) until all
 * are placed and acknowledged. 'live': the engine runs while the units,
 * submitted inactive, are launched by one command; timed from the start of
 * that command, which also gives each unit's submit-to-decision latency.
 */
async function run(
  scenario: 'backlog' | 'live',
  machines: number,
  unitCount: number,
  endpoints: string[],
  runIndex: number,
  etcdPid: number,
): Promise<Record<string, unknown>> {
  const prefix = `/bench-${runIndex}-${scenario}/`;
  const registry = Registry.connect({ endpoints, prefix, requestTimeoutMs: 30_000 });
  const hollow = await HollowCluster.start(registry, {
    count: machines,
    ttlSeconds: 600,
    metadata: (i) => ({ role: i % 4 === 0 ? 'db' : 'web', zone: String.fromCharCode(97 + (i % 3)) }),
  });
  const units = unitsFor(unitCount);
  const placed = units.filter((u) => !u.global).map((u) => u.name);
  let engine: EngineChild | undefined;
  try {
    let t0: number;
    let launched: number;
    if (scenario === 'backlog') {
      for (let i = 0; i < units.length; i += BATCH) await registry.createUnits(units.slice(i, i + BATCH), { desiredState: 'launched' });
      engine = startEngine(endpoints, prefix);
      await engine.waitLeading();
      t0 = launched = performance.now();
    } else {
      engine = startEngine(endpoints, prefix);
      await engine.waitLeading();
      for (let i = 0; i < units.length; i += BATCH) await registry.createUnits(units.slice(i, i + BATCH));
      t0 = performance.now();
      await registry.setDesiredState(
        units.map((u) => u.name),
        'launched',
      );
      launched = performance.now();
    }
    const etcdCpu0 = cpuMs(etcdPid);
    const engineCpu0 = cpuMs(engine.pid);
    const benchCpu0 = process.cpuUsage();
    await hollow.waitAcked(placed, 900_000);
    const done = performance.now();
    const etcdCpu = cpuMs(etcdPid) - etcdCpu0;
    const engineCpu = cpuMs(engine.pid) - engineCpu0;
    const benchCpu = process.cpuUsage(benchCpu0);
    const s = await engine.ask();
    const latencies = placed.map((u) => (hollow.decidedAt.get(u) ?? done) - t0);
    const decisions = await registry.listDecisions();
    const pending = await registry.listPending();
    return {
      scenario,
      placed: placed.length,
      decisions: decisions.length,
      pending: pending.length,
      total_ms: Math.round(done - t0),
      ...(scenario === 'live'
        ? {
            launch_command_ms: Math.round(launched - t0),
            decision_latency_p50_ms: Math.round(percentile(latencies, 50)),
            decision_latency_p99_ms: Math.round(percentile(latencies, 99)),
          }
        : {}),
      placements_per_s: Math.round(placed.length / ((done - t0) / 1000)),
      txns_per_placement: s.stats ? Number(((s.stats['txns'] ?? 0) / placed.length).toFixed(4)) : null,
      engine_passes: s.stats?.['passes'] ?? null,
      engine_ms: s.stats
        ? Object.fromEntries(['listMs', 'buildMs', 'scheduleMs', 'commitMs', 'echoMs'].map((k) => [k, Math.round(s.stats![k] ?? 0)]))
        : null,
      engine_peak_rss_mb: Math.round(s.peakRssKiB / 1024),
      // CPU time over the timed part, per process: with 2 cores, a sum near
      // 2 x total_ms means the machine, not one component, is the limit
      cpu_ms: { etcd: etcdCpu, engine: engineCpu, hollow_machines: Math.round((benchCpu.user + benchCpu.system) / 1000) },
    };
  } finally {
    await engine?.stop();
    await hollow.stop();
    registry.close();
  }
}

async function main(): Promise<void> {
  const root = path.join(os.tmpdir(), 'flotilla-bench');
  mkdirSync(root, { recursive: true });
  const cluster = await EtcdCluster.start({
    dir: mkdtempSync(path.join(root, 'etcd-')),
    extraArgs: ['--quota-backend-bytes', String(4 * 1024 ** 3)],
  });
  try {
    let i = 0;
    for (const [m, u] of SIZES) {
      const backlog: Record<string, unknown>[] = [];
      const live: Record<string, unknown>[] = [];
      for (let r = 0; r < RUNS; r++) {
        backlog.push(await run('backlog', m, u, cluster.endpoints, i++, cluster.members[0]!.pid!));
        if (process.env['BENCH_LIVE'] !== '0') live.push(await run('live', m, u, cluster.endpoints, i++, cluster.members[0]!.pid!));
      }
      const b = medianRun(backlog);
      const l = live.length > 0 ? medianRun(live) : undefined;
      const liveFields = l ? Object.fromEntries(Object.entries(l).map(([k, v]) => [`live_${k}`, v])) : {};
      console.log(
        JSON.stringify({
          bench: 'schedule',
          machines: m,
          units: u,
          runs: RUNS,
          placements_per_s_runs: backlog.map((x) => x['placements_per_s']),
          ...b,
          ...liveFields,
        }),
      );
    }
  } finally {
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
