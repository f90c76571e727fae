// The engine under benchmark, in a process of its own so its memory is its
// own. Reads "stats" lines on stdin and answers with one JSON line.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Engine } from '../../src/engine/engine.js';
import { createLogger } from '../../src/log.js';
import { Registry } from '../../src/registry/index.js';

const registry = Registry.connect({
  endpoints: (process.env['ENDPOINTS'] ?? '').split(','),
  prefix: process.env['PREFIX'],
  requestTimeoutMs: 30_000,
});
const engine = new Engine({ registry, id: 'bench-engine', logger: createLogger('bench-engine', { level: 'warn' }) });
engine.start();

function kib(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'stats') return;
  process.stdout.write(
    `${JSON.stringify({
      leading: engine.leading,
      stats: engine.reconciler?.stats ?? null,
      rssKiB: kib('VmRSS'),
      peakRssKiB: kib('VmHWM'),
    })}\n`,
  );
});
process.on('SIGTERM', () => {
  void engine.stop().then(() => process.exit(0));
});
