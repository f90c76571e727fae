// The etcd harness for tests: a private real etcd (one member or three) on
// free loopback ports with a temporary data directory, removed afterwards,
// also when the test fails or the worker is interrupted.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { ETCD_TEST_ROOT } from './paths.js';

export { EtcdCluster };

const live = new Set<EtcdCluster>();
let hooksInstalled = false;

// Last resort for a worker that is torn down without running afterAll: kill
// every member synchronously and remove its folder.
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = (): void => {
    for (const c of live) {
      c.killAllSync();
      rmSync(c.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Starts a private etcd with `members` members; the caller must close() it. */
export async function startEtcd(opts: { members?: number; extraArgs?: string[] } = {}): Promise<EtcdCluster> {
  installExitHooks();
  mkdirSync(ETCD_TEST_ROOT, { recursive: true });
  const dir = mkdtempSync(path.join(ETCD_TEST_ROOT, 'c-'));
  try {
    const cluster = await EtcdCluster.start({ dir, members: opts.members ?? 1, extraArgs: opts.extraArgs ?? [] });
    live.add(cluster);
    const close = cluster.close.bind(cluster);
    cluster.close = async (o?: { keepDir?: boolean }) => {
      live.delete(cluster);
      await close(o);
    };
    return cluster;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Starts an etcd for the enclosing describe block (or file) and closes it
 * after. Read `.cluster` inside tests.
 */
export function useEtcd(opts: { members?: number } = {}): { readonly cluster: EtcdCluster; readonly endpoints: string[] } {
  let cluster: EtcdCluster | undefined;
  beforeAll(async () => {
    cluster = await startEtcd(opts);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  return {
    get cluster(): EtcdCluster {
      if (!cluster) throw new Error('etcd is not started yet (use it inside a test or hook)');
      return cluster;
    },
    get endpoints(): string[] {
      return this.cluster.endpoints;
    },
  };
}
