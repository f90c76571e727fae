// A lease kept alive in the background: presence, observed states, the
// engine's leadership and service endpoints are bound to one, so they vanish
// when their owner stops keeping it alive.
import { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { Connection } from './connection.js';

export interface RegistryLease {
  /** The etcd lease ID (decimal string). */
  readonly id: string;
  readonly ttlSeconds: number;
  /** Called once when the lease is gone (expired while unreachable, or revoked by someone else). */
  onLost(handler: (err: Error) => void): void;
  /** Called at each keepalive etcd answered: the moment etcd last acknowledged the owner (agent self-fencing counts from it). */
  onAlive(handler: () => void): void;
  /** Revokes the lease: every key bound to it is deleted at once. */
  revoke(): Promise<void>;
  /** Stops the keep-alive without revoking: the keys expire after the TTL. */
  release(): void;
  readonly lost: boolean;
}

/**
 * A lease ID as etcdctl prints and reads it (`lease grant`, `lease list`,
 * `lease timetolive`): 16 lowercase hex digits. etcd grants only positive IDs.
 */
export function formatLeaseId(id: string): string {
  return BigInt(id).toString(16).padStart(16, '0');
}

export async function grantLease(conn: Connection, ttlSeconds: number): Promise<RegistryLease> {
  // An etcd3 Lease asks for its grant once, when made: each try needs a new one.
  let last: Lease | undefined;
  const { lease, id } = await conn
    .call('grant lease', async () => {
      last?.release();
      const l: Lease = (last = conn.client.lease(ttlSeconds, { autoKeepAlive: true }));
      return { lease: l, id: await l.grant() };
    })
    .catch((err: unknown) => {
      last?.release();
      throw err;
    });
  const events = new EventEmitter();
  let lost = false;
  lease.on('lost', (err) => {
    if (lost) return;
    lost = true;
    events.emit('lost', err);
  });
  lease.on('keepaliveSucceeded', () => {
    if (!lost) events.emit('alive');
  });
  return {
    id,
    ttlSeconds,
    get lost() {
      return lost;
    },
    onLost(handler) {
      if (lost) handler(new Error('lease already lost'));
      else events.once('lost', handler);
    },
    onAlive(handler) {
      events.on('alive', handler);
    },
    async revoke() {
      lost = true;
      events.removeAllListeners();
      await conn.call('revoke lease', () => lease.revoke());
    },
    release() {
      lost = true;
      events.removeAllListeners();
      lease.release();
    },
  };
}
