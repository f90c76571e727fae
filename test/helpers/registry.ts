// Registries for tests: each under its own key prefix, so tests sharing one
// etcd never see each other's keys.
import { createHash, randomBytes } from 'node:crypto';
import { Registry, type RegistryOptions } from '../../src/registry/index.js';

export function testRegistry(endpoints: string[], opts: Partial<RegistryOptions> = {}): Registry {
  return Registry.connect({
    endpoints,
    prefix: `/t-${randomBytes(4).toString('hex')}/`,
    requestTimeoutMs: 5_000,
    ...opts,
  });
}

export function unitRecord(name: string, text = `[Service]\nExecStart=/bin/sleep 1000\n`, global = false) {
  return { name, text, hash: createHash('sha1').update(text).digest('hex'), global };
}

export function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}
