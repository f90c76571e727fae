// An engine in a process of its own, so a test can kill it like a crashed
// daemon. Configured by environment: ENDPOINTS, PREFIX, ENGINE_ID, TTL.
import { Engine } from '../../src/engine/engine.js';
import { createLogger } from '../../src/log.js';
import { Registry } from '../../src/registry/index.js';

const registry = Registry.connect({
  endpoints: (process.env['ENDPOINTS'] ?? '').split(','),
  prefix: process.env['PREFIX'],
});
const engine = new Engine({
  registry,
  id: process.env['ENGINE_ID'] ?? 'child',
  leaseTtlSeconds: Number(process.env['TTL'] ?? 2),
  logger: createLogger('child-engine', { level: 'warn' }),
});
engine.start();
const ready = setInterval(() => {
  if (engine.leading) {
    clearInterval(ready);
    process.stdout.write('leading\n');
  }
}, 20);
process.on('SIGTERM', () => {
  void engine.stop().then(() => process.exit(0));
});
