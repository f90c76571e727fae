// npm run bench:discovery: the cost of service discovery. Starts a private
// etcd on loopback, then measures:
//   - resolve latency from the watched cache with ENDPOINTS endpoints
//     (ENDPOINTS / PER_SERVICE services), and of one service holding all of them
//   - DNS queries per second answered by one DNS front (A queries over UDP
//     from a load generator in a worker thread, IN_FLIGHT outstanding)
//   - the etcd cost of ANNOUNCED endpoints each announced with its own lease:
//     announcements per second, leases held, keep-alives per second (counted
//     by etcd's /metrics) and etcd's CPU while it keeps them
// Prints one JSON line.
import { readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { Discovery, DnsFront, type Announcement } from '../../src/discovery/index.js';

const ENDPOINTS = Number(process.env['BENCH_ENDPOINTS'] ?? 10_000);
const PER_SERVICE = Number(process.env['BENCH_PER_SERVICE'] ?? 100);
const RESOLVES = Number(process.env['BENCH_RESOLVES'] ?? 100_000);
const DNS_SECONDS = Number(process.env['BENCH_DNS_SECONDS'] ?? 3);
const IN_FLIGHT = Number(process.env['BENCH_IN_FLIGHT'] ?? 64);
const ANNOUNCED = Number(process.env['BENCH_ANNOUNCED'] ?? 1_000);
const TTL = Number(process.env['BENCH_TTL'] ?? 10);
const KEEPALIVE_SECONDS = Number(process.env['BENCH_KEEPALIVE_SECONDS'] ?? 10);

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function inParallel(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** Resolve latency in µs: p50, p99, max over RESOLVES calls on random services. */
async function resolveLatency(d: Discovery, services: string[]): Promise<{ p50Us: number; p99Us: number; maxUs: number }> {
  const times = new Float64Array(RESOLVES);
  let sink = 0;
  for (let i = 0; i < RESOLVES; i++) {
    const s = services[(i * 7919) % services.length]!;
    const t = performance.now();
    sink += (await d.resolve(s)).length;
    times[i] = (performance.now() - t) * 1000;
  }
  if (sink === 0) throw new Error('resolve found nothing');
  times.sort();
  return { p50Us: round(percentile(times, 0.5), 2), p99Us: round(percentile(times, 0.99), 2), maxUs: round(times[times.length - 1]!, 1) };
}

const LOADER = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const { port, seconds, inFlight, names } = workerData;
const sock = dgram.createSocket('udp4');
// A queries, prebuilt: header (id patched per query) + question.
const queries = names.map((name) => {
  const labels = name.split('.');
  const q = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 0) + 1 + 4);
  q.writeUInt16BE(0x0100, 2); q.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of labels) { q[o++] = l.length; q.write(l, o, 'ascii'); o += l.length; }
  q[o++] = 0; q.writeUInt16BE(1, o); q.writeUInt16BE(1, o + 2);
  return q;
});
let sent = 0, answered = 0, errors = 0, id = 0, stop = false;
const send = () => { if (stop) return; const q = queries[sent++ % queries.length]; q.writeUInt16BE(id++ & 0xffff, 0); sock.send(q, port, '127.0.0.1'); };
sock.on('message', (m) => { answered++; if ((m.readUInt16BE(2) & 0xf) !== 0) errors++; send(); });
const started = Date.now();
for (let i = 0; i < inFlight; i++) send();
// a lost datagram must not shrink the window for good
const refill = setInterval(() => { const missing = sent - answered; for (let i = missing; i < inFlight; i++) send(); }, 100);
setTimeout(() => { stop = true; clearInterval(refill); const secs = (Date.now() - started) / 1000; sock.close(); parentPort.postMessage({ qps: answered / secs, errors }); }, seconds * 1000);
`;

function dnsLoad(port: number, names: string[]): Promise<{ qps: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOADER, { eval: true, workerData: { port, seconds: DNS_SECONDS, inFlight: IN_FLIGHT, names } });
    w.once('message', (m: { qps: number; errors: number }) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
  });
}

async function metric(endpoint: string, re: RegExp): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (re.test(line)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in ticks of 1/100 s
}

async function main(): Promise<void> {
  const root = path.join(os.tmpdir(), 'flotilla-bench');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, 'etcd-'));
  const cluster = await EtcdCluster.start({ dir });
  const endpoints = cluster.endpoints;
  const out: Record<string, unknown> = { bench: 'discovery', endpoints: ENDPOINTS, node: process.version, cpus: os.cpus().length };
  try {
    // ---- resolve from the cache ------------------------------------------------
    const writer = Discovery.connect({ endpoints, prefix: '/bench-resolve/' });
    const reader = Discovery.connect({ endpoints, prefix: '/bench-resolve/' });
    const lease = await writer.registry.grantLease(600);
    const services = Array.from({ length: Math.ceil(ENDPOINTS / PER_SERVICE) }, (_, i) => `svc-${i}`);
    let t = performance.now();
    await inParallel(ENDPOINTS, 32, async (i) => {
      const service = services[i % services.length]!;
      const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      await writer.registry.announce({ service, instance: `${host}:8080`, host, port: 8080, attributes: { zone: `z${i % 3}` } }, lease);
    });
    out['writeEndpointsPerSec'] = round(ENDPOINTS / ((performance.now() - t) / 1000), 0);
    t = performance.now();
    const cache = await reader.cache();
    out['cacheListMs'] = round(performance.now() - t);
    if (cache.size !== ENDPOINTS) throw new Error(`cache holds ${cache.size} endpoints, not ${ENDPOINTS}`);
    out['resolve'] = { services: services.length, perService: PER_SERVICE, ...(await resolveLatency(reader, services)) };

    // one service holding every endpoint: steady state, and the first read after a change (re-sorts)
    const big = Discovery.connect({ endpoints, prefix: '/bench-big/' });
    const bigLease = await big.registry.grantLease(600);
    await inParallel(ENDPOINTS, 32, async (i) => {
      const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      await big.registry.announce({ service: 'big', instance: `${host}:8080`, host, port: 8080, attributes: {} }, bigLease);
    });
    const bigCache = await big.cache();
    const steady = await resolveLatency(big, ['big']);
    const extra = await big.announce('big', { host: '10.255.255.254', port: 1 }, { ttl: 60 });
    const rev = Number((await big.registry.listPrefix(big.registry.keys.servicesOf('big'))).revision);
    await bigCache.waitForRevision(rev);
    t = performance.now();
    await big.resolve('big');
    const afterChangeMs = round(performance.now() - t, 2);
    await extra.stop();
    out['resolveOneServiceAll'] = { ...steady, firstAfterChangeMs: afterChangeMs };

    // ---- DNS queries per second ------------------------------------------------
    // 50 small services (3 endpoints each) next to the large ones
    await inParallel(150, 32, async (i) => {
      const host = `10.200.${i >> 8}.${i & 255}`;
      await writer.registry.announce({ service: `small-${i % 50}`, instance: `${host}:80`, host, port: 80, attributes: {} }, lease);
    });
    await cache.waitForRevision(Number((await writer.registry.listPrefix(writer.registry.keys.servicesOf('small-0'))).revision));
    const dns = new DnsFront(cache, { host: '127.0.0.1', port: 0 });
    await dns.start();
    const small = await dnsLoad(dns.port, Array.from({ length: 50 }, (_, i) => `small-${i}.flotilla.local`));
    const large = await dnsLoad(dns.port, services.slice(0, 50).map((s) => `${s}.flotilla.local`));
    out['dns'] = {
      qps3Endpoints: round(small.qps, 0),
      qps100EndpointsTruncated: round(large.qps, 0),
      errors: small.errors + large.errors,
      inFlight: IN_FLIGHT,
      seconds: DNS_SECONDS,
    };
    await dns.stop();
    await lease.revoke();
    await bigLease.revoke();
    await big.close();
    await writer.close();
    await reader.close();

    // ---- etcd cost of ANNOUNCED endpoints, one lease each -------------------------
    const ann = Discovery.connect({ endpoints, prefix: '/bench-announce/' });
    const pid = cluster.members[0]!.pid!;
    t = performance.now();
    const list: Announcement[] = new Array<Announcement>(ANNOUNCED);
    await inParallel(ANNOUNCED, 32, async (i) => {
      list[i] = await ann.announce('load', { host: '127.0.0.1', port: 10_000 + i }, { ttl: TTL });
    });
    const announceSec = (performance.now() - t) / 1000;
    const leases = (await ann.registry.client.leaseClient.leaseLeases({})).leases.length;
    await new Promise((r) => setTimeout(r, 1_000));
    const ka0 = await metric(endpoints[0]!, /^grpc_server_msg_received_total\{.*grpc_method="LeaseKeepAlive"/);
    const cpu0 = cpuSeconds(pid);
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, KEEPALIVE_SECONDS * 1000));
    const secs = (performance.now() - w0) / 1000;
    const ka1 = await metric(endpoints[0]!, /^grpc_server_msg_received_total\{.*grpc_method="LeaseKeepAlive"/);
    const cpu1 = cpuSeconds(pid);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    t = performance.now();
    await ann.close();
    const withdrawSec = (performance.now() - t) / 1000;
    out['announced'] = {
      endpoints: ANNOUNCED,
      ttl: TTL,
      announcePerSec: round(ANNOUNCED / announceSec, 0),
      leases,
      keepalivesPerSec: round((ka1 - ka0) / secs, 1),
      expectedKeepalivesPerSec: round((ANNOUNCED * 3) / TTL, 1),
      etcdCpuPercent: round(((cpu1 - cpu0) / secs) * 100, 1),
      etcdRssMb: round(rssKb / 1024, 0),
      withdrawAllSec: round(withdrawSec, 2),
    };
  } finally {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
