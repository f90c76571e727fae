import { existsSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { EtcdCluster, EtcdHarnessError } from '../../src/lab/etcd.js';
import { startEtcd, useEtcd } from '../helpers/etcd.js';

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('etcd harness: one member', () => {
  const etcd = useEtcd();

  it('serves put, get and watch through etcd3', async () => {
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      const watcher = await client.watch().key('greeting').create();
      const seen = new Promise<string>((resolve) => watcher.on('put', (kv) => resolve(kv.value.toString())));
      await client.put('greeting').value('hello');
      expect(await client.get('greeting').string()).toBe('hello');
      expect(await seen).toBe('hello');
      await watcher.cancel();
    } finally {
      client.close();
    }
  });
});

describe('etcd harness: lifecycle', () => {
  it('removes process and folder on close', async () => {
    const cluster = await startEtcd();
    const pid = cluster.members[0]?.pid;
    expect(alive(pid)).toBe(true);
    expect(existsSync(cluster.dir)).toBe(true);
    await cluster.close();
    expect(alive(pid)).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
  });

  it('names the missing binary and how to install it', async () => {
    await expect(EtcdCluster.start({ dir: '/tmp/flotilla-test/never', binary: '/nonexistent/etcd' })).rejects.toThrow(
      /etcd binary not found \(\/nonexistent\/etcd\).*apt-get install etcd-server/,
    );
    await expect(EtcdCluster.start({ dir: '/tmp/flotilla-test/never', binary: '/nonexistent/etcd' })).rejects.toBeInstanceOf(
      EtcdHarnessError,
    );
  });

  it('restarts a member on its data directory with its data intact', async () => {
    const cluster = await startEtcd();
    const client = new Etcd3({ hosts: cluster.endpoints });
    try {
      await client.put('kept').value('yes');
      await cluster.killMember(0);
      expect(cluster.members[0]?.pid).toBeUndefined();
      await cluster.startMember(0);
      expect(await client.get('kept').string()).toBe('yes');
    } finally {
      client.close();
      await cluster.close();
    }
  });
});

describe('etcd harness: three members', () => {
  const etcd = useEtcd({ members: 3 });

  it('keeps serving with one member killed, and takes it back', async () => {
    expect(etcd.endpoints).toHaveLength(3);
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      await client.put('a').value('1');
      await etcd.cluster.killMember(0);
      // the remaining two hold quorum
      const survivor = new Etcd3({ hosts: etcd.endpoints.slice(1) });
      try {
        await survivor.put('b').value('2');
        expect(await survivor.get('a').string()).toBe('1');
      } finally {
        survivor.close();
      }
      await etcd.cluster.startMember(0);
      const first = new Etcd3({ hosts: etcd.endpoints.slice(0, 1) });
      try {
        // a linearizable read through the restarted member sees the write made while it was down
        expect(await first.get('b').string()).toBe('2');
      } finally {
        first.close();
      }
      await etcd.cluster.stopMember(2);
      expect(etcd.cluster.members[2]?.pid).toBeUndefined();
      await etcd.cluster.startMember(2);
    } finally {
      client.close();
    }
  });
});
