// The client's gRPC keepalive against an etcd with default flags
// (--grpc-keepalive-min-time 5 s, pings without an open stream not
// permitted): etcd answers pings it does not allow with GOAWAY
// "too_many_pings" after three of them, which grpc-js reports as "rejected
// by server because of excess pings" and answers by doubling its interval.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry } from '../helpers/registry.js';

const etcd = useEtcd();
afterEach(() => {
  vi.restoreAllMocks();
});

describe('etcd keepalive', () => {
  it('an idle connection is not closed by a default etcd for excess pings', { timeout: 90_000 }, async () => {
    // grpc-js logs through console.error
    const logged: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' ')));
    const registry = testRegistry(etcd.endpoints);
    try {
      await registry.getLeader(); // connected; no call stays open
      // long enough for four pings at the old 10 s interval: the fourth drew the GOAWAY
      await new Promise((r) => setTimeout(r, 45_000));
      await registry.getLeader();
    } finally {
      registry.close();
    }
    expect(logged.filter((l) => /excess pings|too_many_pings/i.test(l))).toEqual([]);
  });
});
