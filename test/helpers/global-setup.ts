// Runs once per test run, before and after every project: removes what an
// earlier, crashed run left behind (processes by verified PID, mounts,
// folders), and checks this run left nothing.
import { cleanupEtcdLeftovers } from '../../src/lab/etcd.js';
import { ETCD_TEST_ROOT } from './paths.js';

export function setup(): void {
  const killed = cleanupEtcdLeftovers(ETCD_TEST_ROOT);
  if (killed > 0) console.warn(`test setup: killed ${killed} etcd process(es) left by an earlier run`);
}

export function teardown(): void {
  const killed = cleanupEtcdLeftovers(ETCD_TEST_ROOT);
  if (killed > 0) console.warn(`test teardown: killed ${killed} etcd process(es) that tests did not stop`);
}
