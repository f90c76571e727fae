// Runs once per test run, before and after every project: removes what an
// earlier, crashed run left behind (processes by verified PID, mounts,
// lab networks, folders), and checks this run left nothing.
import { cleanupEtcdLeftovers } from '../../src/lab/etcd.js';
import { cleanup as cleanupNodes, NODE_TEST_ROOT } from '../../src/lab/nodes.js';
import { ETCD_TEST_ROOT } from './paths.js';

async function sweep(when: string): Promise<void> {
  const killed = cleanupEtcdLeftovers(ETCD_TEST_ROOT);
  if (killed > 0) console.warn(`test ${when}: killed ${killed} etcd process(es) left behind`);
  const nodes = await cleanupNodes(NODE_TEST_ROOT);
  if (nodes.killed.length + nodes.unmounted.length + nodes.network.length + nodes.removed.length > 0) {
    console.warn(`test ${when}: node leftovers removed: ${JSON.stringify(nodes)}`);
  }
}

export async function setup(): Promise<void> {
  await sweep('setup');
}

export async function teardown(): Promise<void> {
  await sweep('teardown');
}
