// npm run bench:cli: how quickly the built flotctl (dist/cli/flotctl.js)
// answers, against bare Node's start measured in the same run as the floor.
// Starts a private etcd, writes UNITS units, then runs, interleaved so that
// they share the machine's noise, RUNS times each:
//   - node -e 0 (the floor)
//   - node dist/cli/flotctl.js --version
//   - node dist/cli/flotctl.js help
//   - node dist/cli/flotctl.js --endpoint <etcd> list-units (UNITS launched
//     units, pending as no machine runs: one row each)
// Prints one JSON line: medians in ms, their ratios to the floor, and
// whether the targets (issue 17.5: --version and help within 1.5x of the
// floor, list-units within 2.5x) are met. BENCH_RUNS and BENCH_UNITS adjust
// it; BENCH_FLOTCTL measures another build's flotctl.js (e.g. an older one).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { Registry, type UnitRecord } from '../../src/registry/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 20);
const UNITS = Number(process.env['BENCH_UNITS'] ?? 100);
const TARGETS = { version: 1.5, help: 1.5, listUnits: 2.5 } as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** The environment without FLOTCTL_* (the bench names its endpoint and prefix itself). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOTCTL_') && !k.startsWith('FLEETCTL_')));
}

/** Runs argv once; its wall time in ms (spawn included, the same for every case). Throws when it fails. */
function timed(argv: readonly string[], check: (stdout: string) => boolean): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, argv, { cwd: repo, env: cleanEnv(), encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t;
  if (r.status !== 0 || !check(r.stdout)) throw new Error(`node ${argv.join(' ')} failed (exit ${r.status}): ${r.stderr.trim().slice(0, 500)}`);
  return ms;
}

async function main(): Promise<void> {
  const cliJs = path.resolve(process.env['BENCH_FLOTCTL'] ?? path.join(repo, 'dist/cli/flotctl.js'));
  const root = path.join(os.tmpdir(), 'flotilla-bench');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, 'etcd-'));
  const cluster = await EtcdCluster.start({ dir });
  const prefix = '/bench-cli/';
  try {
    const registry = Registry.connect({ endpoints: cluster.endpoints, prefix, requestTimeoutMs: 10_000 });
    try {
      const units = Array.from({ length: UNITS }, (_, i): UnitRecord => {
        const text = `[Unit]\nDescription=bench ${i}\n\n[Service]\nExecStart=/bin/sleep infinity\n`;
        return { name: `bench-${i}.service`, text, hash: createHash('sha1').update(text).digest('hex'), global: false };
      });
      await registry.createUnits(units);
      // Launched (with no machine, pending): list-units shows every one of them.
      await registry.setDesiredState(units.map((u) => u.name), 'launched');
    } finally {
      registry.close();
    }
    const cases = {
      floor: { argv: ['-e', '0'], check: () => true },
      version: { argv: [cliJs, '--version'], check: (o: string) => o.startsWith('flotctl version ') },
      help: { argv: [cliJs, 'help'], check: (o: string) => o.includes('list-units') },
      listUnits: {
        argv: [cliJs, '--endpoint', cluster.endpoints.join(','), '--etcd-key-prefix', prefix, 'list-units', '--no-legend'],
        check: (o: string) => o.trim().split('\n').length === UNITS,
      },
    };
    type Case = keyof typeof cases;
    const names = Object.keys(cases) as Case[];
    const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Case, number[]>;
    // One warm-up round (file cache, etcd), not counted.
    for (const n of names) timed(cases[n].argv, cases[n].check);
    for (let run = 0; run < RUNS; run++) {
      for (const n of names) times[n].push(timed(cases[n].argv, cases[n].check));
    }
    const medianMs = Object.fromEntries(names.map((n) => [n, round(median(times[n]))])) as Record<Case, number>;
    const ratio = {
      version: round(medianMs.version / medianMs.floor, 2),
      help: round(medianMs.help / medianMs.floor, 2),
      listUnits: round(medianMs.listUnits / medianMs.floor, 2),
    };
    const met = {
      version: ratio.version <= TARGETS.version,
      help: ratio.help <= TARGETS.help,
      listUnits: ratio.listUnits <= TARGETS.listUnits,
    };
    console.log(JSON.stringify({ flotctl: path.relative(repo, cliJs), runs: RUNS, units: UNITS, node: process.version, medianMs, ratio, targets: TARGETS, met, allMet: met.version && met.help && met.listUnits }));
  } finally {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
