// bench:api — the API over its unix socket with 10,000 units stored:
// GET /fleet/v1/units latency (first page of 100, and every unit in one
// page), served from the cache (the etcd requests made while GETs run are
// counted: 0 expected), and PUT throughput creating units (one at a time
// and 16 in flight). Prints one JSON line.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ApiServer, MetricsRegistry, instrumentConnection } from '../../src/api/index.js';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { Registry, connect, type UnitRecord } from '../../src/registry/index.js';

const UNITS = Number(process.env['BENCH_UNITS'] ?? 10_000);
const GETS = Number(process.env['BENCH_GETS'] ?? 1_000);
const FULL_GETS = Number(process.env['BENCH_FULL_GETS'] ?? 50);
const PUTS = Number(process.env['BENCH_PUTS'] ?? 2_000);
const SERIAL_PUTS = Number(process.env['BENCH_SERIAL_PUTS'] ?? 300);

const text = '[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep infinity\n';
const hash = createHash('sha1').update(text).digest('hex');
const unit = (i: number): UnitRecord => ({ name: `bench-${String(i).padStart(5, '0')}.service`, text, hash, global: false });
const OPTIONS = [
  { section: 'Unit', name: 'Description', value: 'bench put' },
  { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
];

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

function request(agent: http.Agent, socketPath: string, method: string, p: string, body?: unknown): Promise<{ status: number; bytes: number }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, socketPath, method, path: p, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function main(): Promise<void> {
  const root = path.join(os.tmpdir(), 'flotilla-bench');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, 'api-'));
  const cluster = await EtcdCluster.start({ dir: path.join(dir, 'etcd') });
  const metrics = new MetricsRegistry();
  const opts = { endpoints: cluster.endpoints, prefix: '/bench-api/' };
  const registry = new Registry(instrumentConnection(connect(opts), metrics), opts);
  const socketPath = path.join(dir, 'api.sock');
  const server = new ApiServer({ registry, socketPath, metrics });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    await registry.ensureSchema('bench:api');
    await registry.createUnits(Array.from({ length: UNITS }, (_, i) => unit(i)));
    const startT = performance.now();
    await server.start();
    // the cluster view is built on first use: fill it here so it is timed
    await server.cache.start();
    const cacheFillMs = performance.now() - startT;
    if (server.cache.units.size !== UNITS) throw new Error(`cache has ${server.cache.units.size} units, not ${UNITS}`);

    const get = (p: string) => async () => {
      const r = await request(agent, socketPath, 'GET', p);
      if (r.status !== 200) throw new Error(`GET ${p}: ${r.status}`);
      return r;
    };
    await timed(50, get('/fleet/v1/units')); // warm up
    await timed(3, get('/fleet/v1/units?pageSize=10000'));
    const etcdBefore = metrics.etcdRequests.get();
    const page = await timed(GETS, get('/fleet/v1/units'));
    const full = await timed(FULL_GETS, get('/fleet/v1/units?pageSize=10000'));
    const fullBytes = (await get('/fleet/v1/units?pageSize=10000')()).bytes;
    const etcdDuringGets = metrics.etcdRequests.get() - etcdBefore;

    // PUT: new units, one at a time, then 16 in flight
    const put = (i: number) => async () => {
      const r = await request(agent, socketPath, 'PUT', `/fleet/v1/units/put-${i}.service`, { desiredState: 'inactive', options: OPTIONS });
      if (r.status !== 201) throw new Error(`PUT put-${i}: ${r.status}`);
    };
    let next = 0;
    const serial = await timed(SERIAL_PUTS, () => put(next++)());
    const t = performance.now();
    let i = next;
    const end = next + PUTS;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (i < end) await put(i++)();
      }),
    );
    const concurrentS = (performance.now() - t) / 1000;

    console.log(
      JSON.stringify({
        bench: 'api',
        units: UNITS,
        cacheFillMs: Math.round(cacheFillMs),
        getUnitsPage100: { n: GETS, p50Ms: round(percentile(page, 50)), p99Ms: round(percentile(page, 99)) },
        getUnitsAll: { n: FULL_GETS, units: UNITS, bytes: fullBytes, p50Ms: round(percentile(full, 50), 1), p99Ms: round(percentile(full, 99), 1) },
        etcdRequestsDuringGets: etcdDuringGets,
        putSerial: { n: SERIAL_PUTS, perSec: Math.round(SERIAL_PUTS / (serial.reduce((a, b) => a + b, 0) / 1000)), p50Ms: round(percentile(serial, 50)), p99Ms: round(percentile(serial, 99)) },
        put16InFlight: { n: PUTS, perSec: Math.round(PUTS / concurrentS) },
      }),
    );
  } finally {
    agent.destroy();
    await server.stop();
    registry.close();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
