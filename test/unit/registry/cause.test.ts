// gRPC's wording of failures etcd itself reports, which a test cluster
// cannot produce on demand: each is read back as its cause.
import { GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { describeCause, isConnectionFailure } from '../../../src/registry/cause.js';

const ctx = { endpoints: ['http://10.0.0.5:2379'], timeoutMs: 3_000 };

describe('connection causes', () => {
  it('a member without quorum', () => {
    const err = new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: request timed out, possibly due to previous leader failure');
    expect(isConnectionFailure(err)).toBe(true);
    expect(describeCause(err, ctx)).toEqual({
      kind: 'no-quorum',
      text: 'etcd answered but cannot serve requests now (etcdserver: request timed out, possibly due to previous leader failure); is a majority of its members up?',
    });
  });

  it('a host name that does not resolve, a host without a route', () => {
    const dns = new GRPCUnavailableError('14 UNAVAILABLE: Name resolution failed for target dns:etcd.invalid:2379');
    expect(describeCause(dns, ctx).kind).toBe('unresolved');
    const route = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect EHOSTUNREACH 10.0.0.5:2379. Resolution note: ');
    expect(describeCause(route, ctx)).toEqual({ kind: 'unreachable', text: 'no route to the host; check the address and the network' });
  });
});
