// npm run bench:registry: the registry's cost over the raw etcd3 client.
// Starts a private etcd, then measures (median of RUNS):
//   - unit creates per second one at a time, registry vs raw puts
//   - unit creates per second batched, registry vs raw 128-put transactions
//   - a cold informer listing UNITS units, and a live informer converging
//     while UNITS units are written, vs a raw etcd3 watch
// Prints one JSON line.
import { mkdtempSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { Informer, Registry, decode, type UnitRecord } from '../../src/registry/index.js';

const UNITS = Number(process.env['BENCH_UNITS'] ?? 10_000);
const SINGLE = Number(process.env['BENCH_SINGLE'] ?? 1_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

const text = '[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep infinity\n';
const hash = createHash('sha1').update(text).digest('hex');
const unit = (prefix: string, i: number): UnitRecord => ({ name: `${prefix}-${i}.service`, text, hash, global: false });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const root = path.join(os.tmpdir(), 'flotilla-bench');
  mkdirSync(root, { recursive: true });
  const cluster = await EtcdCluster.start({ dir: mkdtempSync(path.join(root, 'etcd-')) });
  const raw = new Etcd3({ hosts: cluster.endpoints });
  const results = {
    singleRegistry: [] as number[],
    singleRaw: [] as number[],
    batchRegistry: [] as number[],
    batchRaw: [] as number[],
    coldListMs: [] as number[],
    convergeRegistryMs: [] as number[],
    convergeRawMs: [] as number[],
  };
  try {
    for (let run = 0; run < RUNS; run++) {
      const reg = Registry.connect({ endpoints: cluster.endpoints, prefix: `/bench-${run}/` });
      try {
        // one at a time
        let t = performance.now();
        for (let i = 0; i < SINGLE; i++) await reg.createUnit(unit('one', i));
        results.singleRegistry.push(SINGLE / ((performance.now() - t) / 1000));
        t = performance.now();
        for (let i = 0; i < SINGLE; i++) {
          const u = unit('one', i);
          await raw.put(`/raw-${run}/units/${u.name}`).value(JSON.stringify(u));
        }
        results.singleRaw.push(SINGLE / ((performance.now() - t) / 1000));

        // batched, with a live informer converging on the registry side
        const live = new Informer(reg, reg.keys.unitsPrefix, decode.unit);
        await live.start();
        const batch = Array.from({ length: UNITS }, (_, i) => unit('many', i));
        const target = SINGLE + UNITS;
        const converged = new Promise<number>((resolve) => {
          const off = live.subscribe(() => {
            if (live.size >= target) {
              off();
              resolve(performance.now());
            }
          });
        });
        t = performance.now();
        await reg.createUnits(batch);
        results.batchRegistry.push(UNITS / ((performance.now() - t) / 1000));
        results.convergeRegistryMs.push((await converged) - t);
        await live.stop();

        const watcher = await raw.watch().prefix(`/raw-${run}/many/`).create();
        let seen = 0;
        const rawConverged = new Promise<number>((resolve) => {
          watcher.on('put', () => {
            if (++seen === UNITS) resolve(performance.now());
          });
        });
        t = performance.now();
        for (let i = 0; i < UNITS; i += 128) {
          const ops = [];
          for (let j = i; j < Math.min(UNITS, i + 128); j++) {
            const u = unit('many', j);
            ops.push(raw.put(`/raw-${run}/many/${u.name}`).value(JSON.stringify(u)));
          }
          await raw.if(`/raw-${run}/none`, 'Create', '==', 0).then(...ops).commit();
        }
        results.batchRaw.push(UNITS / ((performance.now() - t) / 1000));
        results.convergeRawMs.push((await rawConverged) - t);
        await watcher.cancel();

        // a new informer listing everything
        const cold = new Informer(reg, reg.keys.unitsPrefix, decode.unit);
        t = performance.now();
        await cold.start();
        results.coldListMs.push(performance.now() - t);
        if (cold.size !== target) throw new Error(`cold informer saw ${cold.size} units, expected ${target}`);
        await cold.stop();
      } finally {
        reg.close();
      }
    }
  } finally {
    raw.close();
    await cluster.close();
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)])) as Record<keyof typeof results, number>;
  console.log(
    JSON.stringify({
      bench: 'registry',
      runs: RUNS,
      units: UNITS,
      single_units: SINGLE,
      creates_per_s_single: round(m.singleRegistry),
      raw_puts_per_s_single: round(m.singleRaw),
      single_overhead_ratio: round(m.singleRaw / m.singleRegistry, 2),
      creates_per_s_batched: round(m.batchRegistry),
      raw_puts_per_s_batched: round(m.batchRaw),
      batched_overhead_ratio: round(m.batchRaw / m.batchRegistry, 2),
      cache_converge_ms: round(m.convergeRegistryMs),
      raw_watch_converge_ms: round(m.convergeRawMs),
      cache_cold_list_ms: round(m.coldListMs),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
