// npm run bench:agent-scale: one lab node runs flotillad (compiled, engine
// disabled, API on its default unix socket) in a cluster of 10,000 units, of
// which 100 are placed on the node and the rest on hollow machines
// (test/helpers/hollow.ts). The benchmark holds the engine's leader key and
// measures the node's daemon:
//   - watch events it received while its own 100 units were placed,
//   - watch events received during a churn of 1,000 state changes of OTHER
//     machines' units, and its RSS after BENCH_SETTLE_S (30) idle seconds
//     (and its peak so far), first with its API unused, then again after
//     one API request (GET /fleet/v1/units) has built the API's cluster view.
// Targets (issue 15.8): RSS <= 80 MB and no events from the churn while the
// API is unused. Prints one JSON line. Run under the e2e lock (a lab node):
//   flock /tmp/flotilla-e2e.lock npm run bench:agent-scale
// BENCH_UNITS, BENCH_OWN and BENCH_CHURN adjust it.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { bootNode, cleanup, makeRunDir, mountsUnder, type LabNode } from '../../src/lab/nodes.js';
import { Informer, Registry, decode, type PlanOp, type StateRecord, type UnitRecord } from '../../src/registry/index.js';
import { parseUnit } from '../../src/unit/unit.js';
import { HollowCluster } from '../helpers/hollow.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNITS = Number(process.env['BENCH_UNITS'] ?? 10_000);
const OWN = Number(process.env['BENCH_OWN'] ?? 100);
const CHURN = Number(process.env['BENCH_CHURN'] ?? 1_000);
/** Idle seconds before RSS is read, so it is the steady state (as bench:agent reads it), not a collection not yet run. */
const SETTLE_S = Number(process.env['BENCH_SETTLE_S'] ?? 30);
/** Units per hollow machine. */
const PER_HOLLOW = 100;
const SOCKET = '/run/flotilla/flotilla.sock';
let lastNode: LabNode | undefined;

/** GET on the node's API socket, from inside the node: "<status> <body or units count>". */
const GET_SCRIPT = `const http = require('http');
http.get({ socketPath: '${SOCKET}', path: process.argv[1] }, (r) => {
  let b = '';
  r.on('data', (c) => (b += c));
  r.on('end', () => {
    let out = b;
    try { const j = JSON.parse(b); if (Array.isArray(j.units)) out = String(j.units.length); } catch {}
    process.stdout.write(r.statusCode + ' ' + out);
  });
}).on('error', (e) => { process.stdout.write('0 ' + e.message); });`;

async function apiGet(node: LabNode, urlPath: string): Promise<{ status: number; body: string }> {
  const out = (await node.exec(['/usr/bin/node', '-e', GET_SCRIPT, urlPath])).stdout;
  const space = out.indexOf(' ');
  return { status: Number(out.slice(0, space)), body: out.slice(space + 1) };
}

async function eventsReceived(node: LabNode): Promise<number> {
  const r = await apiGet(node, '/metrics');
  const m = /^flotilla_watch_events_received_total (\d+)$/m.exec(r.body);
  if (r.status !== 200 || !m) throw new Error(`no watch event count in /metrics (${r.status})`);
  return Number(m[1]);
}

/** The daemon's RSS now and its peak so far (VmHWM), in MB. */
async function rssMb(node: LabNode): Promise<{ rss: number; peak: number }> {
  const pid = (await node.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'flotillad.service'])).stdout.trim();
  const status = (await node.exec(['cat', `/proc/${pid}/status`])).stdout;
  const mb = (field: string): number => Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
  return { rss: mb('VmRSS'), peak: mb('VmHWM') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function unit(name: string): UnitRecord {
  const p = parseUnit(name, `[Service]\nExecStart=/bin/sleep infinity\n`);
  return { name, text: p.text, hash: p.hash, global: false };
}

async function main(): Promise<void> {
  const runDir = makeRunDir();
  const etcd = await EtcdCluster.start({ dir: path.join(runDir, 'etcd') });
  const prefix = '/bench-agent-scale/';
  const registry = Registry.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 30_000 });
  let node: LabNode | undefined;
  let hollow: HollowCluster | undefined;
  try {
    node = await bootNode({
      stateDir: runDir,
      name: 'bench1',
      ip: '127.0.0.31',
      wants: ['flotillad.service'],
      files: {
        '/etc/systemd/system/flotillad.service': readFileSync(path.join(repo, 'units/flotillad.service'), 'utf8'),
        '/etc/systemd/system/flotillad.service.d/bench.conf': `[Service]\nExecStart=\nExecStart=/usr/bin/node ${repo}/dist/cli/flotillad.js\n`,
        '/etc/flotilla/flotilla.conf': `etcd_servers=${etcd.endpoints[0]}\netcd_key_prefix=${prefix}\npublic_ip=127.0.0.31\ndisable_engine=true\nagent_ttl=30\n`,
      },
    });
    const n = node;
    lastNode = node;
    for (let i = 0; (await registry.listMachines()).length === 0; i++) {
      if (i > 600) throw new Error('flotillad did not register');
      await sleep(50);
    }
    const lease = await registry.grantLease(120);
    const token = await registry.tryLead('bench', lease);
    if (!token) throw new Error('could not take the leader key');
    hollow = await HollowCluster.start(registry, { count: Math.ceil((UNITS - OWN) / PER_HOLLOW) });
    const states = new Informer(registry, registry.keys.statesPrefix, decode.state);
    await states.start();

    // The cluster: UNITS units, OWN of them on the node.
    const own = Array.from({ length: OWN }, (_, i) => unit(`own-${i}.service`));
    const others = Array.from({ length: UNITS - OWN }, (_, i) => unit(`other-${i}.service`));
    const otherMachine = (i: number): string => hollow!.ids[Math.floor(i / PER_HOLLOW)]!;
    await registry.createUnits([...others, ...own], { desiredState: 'launched' });
    const events0 = await eventsReceived(n);
    const plan: PlanOp[] = [
      ...others.map((u, i) => ({ type: 'place' as const, decision: { unit: u.name, machine: otherMachine(i), hash: u.hash, state: 'launched' as const } })),
      ...own.map((u) => ({ type: 'place' as const, decision: { unit: u.name, machine: n.machineId, hash: u.hash, state: 'launched' as const } })),
    ];
    await registry.applyPlan(token, plan);
    await hollow.waitAcked(
      others.map((u) => u.name),
      120_000,
    );
    for (let i = 0; own.some((u) => states.get(`${u.name}/${n.machineId}`)?.activeState !== 'active'); i++) {
      if (i > 2400) throw new Error('the node did not start its units');
      await sleep(50);
    }
    await sleep(2_000);
    const eventsOwnUnits = (await eventsReceived(n)) - events0;

    // Churn on other machines' units: every changed state is a watch event
    // for whoever watches the states prefix.
    let round = 0;
    const churn = async (): Promise<number> => {
      round++;
      const before = await eventsReceived(n);
      const batch: StateRecord[] = others.slice(0, CHURN).map((u, i) => ({
        unit: u.name,
        machine: otherMachine(i),
        hash: u.hash,
        loadState: 'loaded',
        activeState: 'active',
        subState: `running-${round}`,
        since: new Date().toISOString(),
      }));
      await registry.publishStates(batch, lease);
      await sleep(3_000);
      return (await eventsReceived(n)) - before;
    };

    const unusedEvents = await churn();
    await sleep(SETTLE_S * 1000);
    const unusedRss = await rssMb(n);

    const t0 = performance.now();
    const list = await apiGet(n, `/fleet/v1/units?pageSize=${UNITS}`);
    const firstRequestMs = Math.round(performance.now() - t0);
    if (list.status !== 200 || Number(list.body) !== UNITS) throw new Error(`GET /fleet/v1/units: ${list.status} ${list.body.slice(0, 200)}`);
    const usedEvents = await churn();
    await sleep(SETTLE_S * 1000);
    const usedRss = await rssMb(n);
    await states.stop();

    console.log(
      JSON.stringify({
        bench: 'agent-scale',
        units: UNITS,
        own_units: OWN,
        hollow_machines: hollow.ids.length,
        churn_state_changes: CHURN,
        events_received_placing_own_units: eventsOwnUnits,
        settle_seconds: SETTLE_S,
        api_unused: { rss_mb: unusedRss.rss, peak_rss_mb: unusedRss.peak, events_received_during_churn: unusedEvents },
        // after one GET /fleet/v1/units (the API's cluster view, held for 5 min)
        api_used: { rss_mb: usedRss.rss, peak_rss_mb: usedRss.peak, events_received_during_churn: usedEvents, first_request_ms: firstRequestMs },
        targets: { rss_mb_max: 80, rss_ok: unusedRss.rss <= 80, events_ok: unusedEvents === 0 },
      }),
    );
  } finally {
    await hollow?.stop().catch(() => undefined);
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
