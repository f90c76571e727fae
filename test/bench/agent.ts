// npm run bench:agent: one lab node runs flotillad (compiled, engine
// disabled) against a private etcd. The benchmark, holding the engine's
// leader key, writes 100 decisions to the node at once and measures:
//   - time from that write until systemd reports all 100 active (through the
//     states the agent publishes, confirmed with systemctl at the end),
//   - daemon-reloads systemd performed meanwhile (its journal),
//   - the agent's CPU over 60 s idle with the 100 units, and its RSS,
//   - etcd requests per second while idle, by gRPC method (etcd's metrics).
// Prints one JSON line. BENCH_UNITS, BENCH_IDLE_S and BENCH_RUNS adjust it.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { bootNode, cleanup, makeRunDir, mountsUnder, type LabNode } from '../../src/lab/nodes.js';
import { Informer, Registry, decode, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNITS = Number(process.env['BENCH_UNITS'] ?? 100);
const IDLE_S = Number(process.env['BENCH_IDLE_S'] ?? 60);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
let lastNode: LabNode | undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function sh(node: LabNode, ...argv: string[]): Promise<string> {
  return (await node.exec(argv)).stdout.trim();
}

/** etcd's gRPC messages received so far, by method. */
async function etcdRequests(clientUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^grpc_server_msg_received_total\{[^}]*grpc_method="([^"]+)"[^}]*\} (\S+)$/gm)) {
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

async function reloadsSoFar(node: LabNode): Promise<number> {
  const out = await sh(node, 'sh', '-c', "journalctl _PID=1 -o cat --no-pager | grep -c '^Reloading' || true");
  return Number(out) || 0;
}

async function main(): Promise<void> {
  const runDir = makeRunDir();
  const etcd = await EtcdCluster.start({ dir: path.join(runDir, 'etcd') });
  const prefix = '/bench-agent/';
  const registry = Registry.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 10_000 });
  let node: LabNode | undefined;
  try {
    node = await bootNode({
      stateDir: runDir,
      name: 'bench1',
      ip: '127.0.0.31',
      wants: ['flotillad.service'],
      files: {
        '/etc/systemd/system/flotillad.service': readFileSync(path.join(repo, 'units/flotillad.service'), 'utf8'),
        // BENCH_NODE_OPTIONS replaces the service's NODE_OPTIONS, to compare V8 settings
        '/etc/systemd/system/flotillad.service.d/bench.conf': `[Service]\nExecStart=\nExecStart=/usr/bin/node ${repo}/dist/cli/flotillad.js\n${
          process.env['BENCH_NODE_OPTIONS'] !== undefined ? `Environment="NODE_OPTIONS=${process.env['BENCH_NODE_OPTIONS']}"\n` : ''
        }`,
        '/etc/flotilla/flotilla.conf': `etcd_servers=${etcd.endpoints[0]}\netcd_key_prefix=${prefix}\npublic_ip=127.0.0.31\ndisable_engine=true\nagent_ttl=30\n`,
      },
    });
    const n = node;
    lastNode = node;
    for (let i = 0; (await registry.listMachines()).length === 0; i++) {
      if (i > 600) throw new Error('flotillad did not register');
      await new Promise((r) => setTimeout(r, 50));
    }
    const lease = await registry.grantLease(60);
    const token = await registry.tryLead('bench', lease);
    if (!token) throw new Error('could not take the leader key');
    const states = new Informer(registry, registry.keys.statesPrefix, decode.state);
    await states.start();

    const startMs: number[] = [];
    const reloads: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const units: UnitRecord[] = Array.from({ length: UNITS }, (_, i) => {
        const name = `bench-${run}-${i}.service`;
        const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n`);
        return { name, text: p.text, hash: p.hash, global: false };
      });
      await registry.createUnits(units, { desiredState: 'launched' });
      const reloads0 = await reloadsSoFar(n);
      const allActive = new Promise<number>((resolve) => {
        const check = (): void => {
          const active = units.filter((u) => states.get(`${u.name}/${n.machineId}`)?.activeState === 'active').length;
          if (active === units.length) {
            off();
            resolve(performance.now());
          }
        };
        const off = states.subscribe(check);
      });
      const t0 = performance.now();
      await registry.applyPlan(
        token,
        units.map((u) => ({ type: 'place', decision: { unit: u.name, machine: n.machineId, hash: u.hash, state: 'launched' } })),
      );
      startMs.push((await allActive) - t0);
      const running = Number(await sh(n, 'sh', '-c', `systemctl list-units --state=active --no-legend 'bench-${run}-*' | wc -l`));
      if (running !== UNITS) throw new Error(`systemd runs ${running} of ${UNITS} units`);
      reloads.push((await reloadsSoFar(n)) - reloads0);
      if (run < RUNS - 1) {
        // unload them again before the next run
        await registry.applyPlan(token, units.map((u) => ({ type: 'unplace', machine: n.machineId, unit: u.name })));
        for (let i = 0; units.some((u) => states.has(`${u.name}/${n.machineId}`)); i++) {
          if (i > 600) throw new Error('units were not unloaded');
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }

    // idle: the last run's units keep running
    const pid = await sh(n, 'systemctl', 'show', '-p', 'MainPID', '--value', 'flotillad.service');
    const cpu = async (): Promise<number> => {
      const f = (await sh(n, 'cat', `/proc/${pid}/stat`)).split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    };
    await new Promise((r) => setTimeout(r, 2_000));
    const cpu0 = await cpu();
    const req0 = await etcdRequests(etcd.endpoints[0]!);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const cpuMs = (await cpu()) - cpu0;
    const req1 = await etcdRequests(etcd.endpoints[0]!);
    const idleRequests: Record<string, number> = {};
    for (const [method, count] of req1) {
      const d = count - (req0.get(method) ?? 0);
      if (d > 0) idleRequests[method] = Number((d / IDLE_S).toFixed(3));
    }
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(await sh(n, 'cat', `/proc/${pid}/status`))?.[1] ?? 0);
    await states.stop();
    console.log(
      JSON.stringify({
        bench: 'agent',
        units: UNITS,
        runs: RUNS,
        start_all_active_ms: Math.round(median(startMs)),
        start_all_active_ms_runs: startMs.map(Math.round),
        daemon_reloads: Math.max(...reloads),
        idle_seconds: IDLE_S,
        idle_cpu_percent: Number(((cpuMs / (IDLE_S * 1000)) * 100).toFixed(2)),
        rss_mb: Math.round(rssKiB / 1024),
        // requests from everyone while idle (the bench's own lease included)
        idle_etcd_requests_per_s: idleRequests,
      }),
    );
  } finally {
    await node?.destroy().catch(() => undefined);
    registry.close();
    await etcd.close();
    await cleanup(runDir);
    if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  if (lastNode) console.error(`node log tail:\n${lastNode.logTail()}`);
  console.error(err);
  process.exit(1);
});
