import { afterEach, describe, expect, it } from 'vitest';
import { Informer, decode, encode, type DesiredRecord, type Registry } from '../../src/registry/index.js';
import { startEtcd, useEtcd } from '../helpers/etcd.js';
import { startProxy } from '../helpers/proxy.js';
import { testRegistry, until } from '../helpers/registry.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Records every event value an informer delivers, in order. */
function record(informer: Informer<DesiredRecord>): string[] {
  const seen: string[] = [];
  informer.subscribe((events) => {
    for (const e of events) seen.push(e.type === 'put' ? `${e.name}=${e.value?.state}` : `${e.name}-`);
  });
  return seen;
}

function informerOn(r: Registry): Informer<DesiredRecord> {
  const inf = new Informer(r, r.keys.desiredPrefix, decode.desired);
  cleanups.push(() => inf.stop());
  return inf;
}

const states = ['loaded', 'launched'] as const;

/** Writes key k<i> with alternating states, one put per step, and returns the expected event log. */
async function writeSteps(r: Registry, from: number, to: number): Promise<string[]> {
  const expected: string[] = [];
  for (let i = from; i < to; i++) {
    const state = states[i % 2]!;
    // through the registry's bounded retries: a write may meet a killed member
    await r.conn.call('test put', () => r.client.put(r.keys.desired(`k${i % 5}`)).value(encode({ state })));
    expected.push(`k${i % 5}=${state}`);
  }
  return expected;
}

describe('informer', () => {
  const etcd = useEtcd();

  it('lists, then delivers puts and deletes, and skips corrupt values', async () => {
    const r = testRegistry(etcd.endpoints);
    cleanups.push(() => r.close());
    await r.client.put(r.keys.desired('a')).value(encode({ state: 'loaded' }));
    await r.client.put(r.keys.desired('bad')).value('garbage');
    const inf = informerOn(r);
    const seen = record(inf);
    await inf.start();
    expect([...inf.entries()]).toEqual([['a', { state: 'loaded' }]]);
    await r.client.put(r.keys.desired('b')).value(encode({ state: 'launched' }));
    await r.client.delete().key(r.keys.desired('a'));
    // a value turning corrupt is a delete for readers
    await r.client.put(r.keys.desired('b')).value('{"v":1,"state":"sideways"}');
    const res = await r.client.put(r.keys.desired('c')).value(encode({ state: 'loaded' }));
    await inf.waitForRevision(Number(res.header.revision));
    // the initial listing arrives as puts, so a subscriber sees the whole state
    expect(seen).toEqual(['a=loaded', 'b=launched', 'a-', 'b-', 'c=loaded']);
    expect([...inf.entries()]).toEqual([['c', { state: 'loaded' }]]);
    expect(inf.lists).toBe(1);
  });

  it('delivers every change of a multi-key transaction once', async () => {
    const r = testRegistry(etcd.endpoints);
    cleanups.push(() => r.close());
    const inf = informerOn(r);
    const seen = record(inf);
    await inf.start();
    const ops = Array.from({ length: 50 }, (_, i) => r.client.put(r.keys.desired(`t${i}`)).value(encode({ state: 'launched' })));
    const res = await r.client.if(r.keys.schema, 'Create', '>', -1).then(...ops).commit();
    await inf.waitForRevision(Number(res.header.revision));
    expect(seen).toHaveLength(50);
    expect(inf.size).toBe(50);
  });

  it('re-lists when its resume revision was compacted, and ends with the right cache', async () => {
    const direct = testRegistry(etcd.endpoints);
    cleanups.push(() => direct.close());
    const proxy = await startProxy(etcd.endpoints[0]!);
    cleanups.push(() => proxy.close());
    const viaProxy = testRegistry([proxy.url], { prefix: direct.keys.prefix });
    cleanups.push(() => viaProxy.close());

    await direct.client.put(direct.keys.desired('gone')).value(encode({ state: 'loaded' }));
    const inf = informerOn(viaProxy);
    const seen = record(inf);
    await inf.start();
    proxy.cut();
    await direct.client.delete().key(direct.keys.desired('gone'));
    await direct.client.put(direct.keys.desired('new')).value(encode({ state: 'launched' }));
    const last = await direct.client.put(direct.keys.desired('new')).value(encode({ state: 'loaded' }));
    await direct.client.kv.compact({ revision: last.header.revision, physical: true });
    proxy.restore();
    await until(() => inf.lists >= 2, 20_000, 'a re-list after compaction');
    await inf.waitForRevision(Number(last.header.revision), 20_000);
    expect([...inf.entries()]).toEqual([['new', { state: 'loaded' }]]);
    // the difference is delivered as events: the intermediate 'launched' was compacted away
    expect(seen).toEqual(['gone=loaded', 'gone-', 'new=loaded']);
  });

  it('resumes after a disconnect without losing or repeating events', async () => {
    const direct = testRegistry(etcd.endpoints);
    cleanups.push(() => direct.close());
    const proxy = await startProxy(etcd.endpoints[0]!);
    cleanups.push(() => proxy.close());
    const viaProxy = testRegistry([proxy.url], { prefix: direct.keys.prefix });
    cleanups.push(() => viaProxy.close());
    const inf = informerOn(viaProxy);
    const seen = record(inf);
    await inf.start();
    const expected = await writeSteps(direct, 0, 20);
    proxy.cut();
    expected.push(...(await writeSteps(direct, 20, 300)));
    proxy.restore();
    expected.push(...(await writeSteps(direct, 300, 320)));
    const rev = Number((await direct.client.get(direct.keys.desired('k0')).exec()).header.revision);
    await inf.waitForRevision(rev, 20_000);
    expect(seen).toEqual(expected);
    expect(inf.lists).toBe(1);
  });
});

describe('informer across etcd failures', () => {
  it('spans an etcd restart on the same data directory, losing and repeating nothing', async () => {
    const cluster = await startEtcd();
    cleanups.push(() => cluster.close());
    const r = testRegistry(cluster.endpoints);
    cleanups.push(() => r.close());
    const inf = informerOn(r);
    const seen = record(inf);
    await inf.start();
    const expected = await writeSteps(r, 0, 50);
    await cluster.stopMember(0);
    await cluster.startMember(0);
    expected.push(...(await writeSteps(r, 50, 100)));
    const rev = Number((await r.client.get(r.keys.desired('k0')).exec()).header.revision);
    await inf.waitForRevision(rev, 20_000);
    expect(seen).toEqual(expected);
  });

  it('spans a member kill in a 3-member cluster, losing and repeating nothing', async () => {
    const cluster = await startEtcd({ members: 3 });
    cleanups.push(() => cluster.close());
    // A write may wait out an election while the member restarted just
    // before still catches up: longer than 5 s at times, and the request
    // timeout bounds a whole request, retries included.
    const r = testRegistry(cluster.endpoints, { requestTimeoutMs: 20_000 });
    cleanups.push(() => r.close());
    const inf = informerOn(r);
    const seen = record(inf);
    await inf.start();
    const expected = await writeSteps(r, 0, 50);
    // kill every member in turn, so whichever one the watch stream uses dies
    for (let m = 0; m < 3; m++) {
      await cluster.killMember(m);
      expected.push(...(await writeSteps(r, 50 + m * 50, 100 + m * 50)));
      await cluster.startMember(m);
    }
    const rev = Number((await r.conn.call('test get', () => r.client.get(r.keys.desired('k0')).exec())).header.revision);
    await inf.waitForRevision(rev, 30_000);
    expect(seen).toEqual(expected);
  });

  it('moves a watch off a member that vanished without a reset (keepalive pings)', async () => {
    const cluster = await startEtcd({ members: 3 });
    cleanups.push(() => cluster.close());
    const direct = testRegistry(cluster.endpoints);
    cleanups.push(() => direct.close());
    // the informer reaches every member through a proxy of its own
    const proxies = await Promise.all(cluster.endpoints.map((e) => startProxy(e)));
    for (const p of proxies) cleanups.push(() => p.close());
    const viaProxy = testRegistry(
      proxies.map((p) => p.url),
      { prefix: direct.keys.prefix },
    );
    cleanups.push(() => viaProxy.close());
    const inf = informerOn(viaProxy);
    const seen = record(inf);
    await inf.start();
    const expected = await writeSteps(direct, 0, 5);
    // the proxy that carries the watch is the one the next event comes through
    const before = proxies.map((p) => p.bytesDown);
    expected.push(...(await writeSteps(direct, 5, 6)));
    await inf.waitForRevision(Number((await direct.client.get(direct.keys.desired('k0')).exec()).header.revision));
    const watchProxy = proxies.find((p, i) => p.bytesDown > before[i]!)!;
    // its member's machine vanishes: no reset ever reaches the client
    watchProxy.freeze();
    expected.push(...(await writeSteps(direct, 6, 10)));
    const rev = Number((await direct.client.get(direct.keys.desired('k0')).exec()).header.revision);
    // keepalive: a ping every 10 s, dead after 5 s more; the watch resumes on another member
    await inf.waitForRevision(rev, 40_000);
    expect(seen).toEqual(expected);
  }, 60_000);
});
