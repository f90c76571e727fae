// The DNS front against a real etcd, queried with node's resolver (c-ares):
// A, SRV and per-endpoint names, NXDOMAIN, truncation and TCP, answers from
// the watched cache (even with etcd down), and flotillad's dns_listen.
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import dnsPacket from 'dns-packet';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon } from '../../src/daemon.js';
import { Discovery, DnsFront, EndpointCache } from '../../src/discovery/index.js';
import { silentLogger } from '../../src/log.js';
import { startEtcd, useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { until } from '../helpers/registry.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const newPrefix = (): string => `/t-${randomBytes(4).toString('hex')}/`;

async function front(endpoints: string[], prefix: string, opts: { domain?: string; ttl?: number } = {}) {
  const d = Discovery.connect({ endpoints, prefix, requestTimeoutMs: 5_000 });
  cleanups.push(() => d.close());
  const cache = await d.cache();
  const dns = new DnsFront(cache, { host: '127.0.0.1', port: 0, ...opts });
  await dns.start();
  cleanups.push(() => dns.stop());
  const resolver = new Resolver({ timeout: 1_000, tries: 2 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
  return { d, cache, dns, resolver };
}

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
};

describe('DNS front', () => {
  const etcd = useEtcd();

  it('answers A, SRV (both forms) and endpoint names from the registry; NXDOMAIN for unknown names; REFUSED outside the domain', async () => {
    const { d, resolver } = await front(etcd.endpoints, newPrefix());
    await d.announce('web', { host: '127.0.0.11', port: 8080, instance: 'web@8080.service', attributes: { weight: '5' } }, { ttl: 5 });
    await d.announce('web', { host: '127.0.0.12', port: 8081, instance: 'web@8081.service' }, { ttl: 5 });
    await d.announce('api', { host: '127.0.0.12', port: 9000 }, { ttl: 5 });
    const cache = await d.cache();
    await cache.waitForRevision(Number((await d.registry.listPrefix(d.registry.keys.servicesPrefix)).revision));

    const a = await resolver.resolve4('web.flotilla.local', { ttl: true });
    expect(a.map((r) => r.address).sort()).toEqual(['127.0.0.11', '127.0.0.12']);
    expect(a.every((r) => r.ttl === 5)).toBe(true);
    expect(await resolver.resolve4('WEB.Flotilla.Local.')).toHaveLength(2);

    const srv = (await resolver.resolveSrv('_web._tcp.flotilla.local')).sort((x, y) => x.port - y.port);
    expect(srv).toEqual([
      { name: 'web-8080-service.web.flotilla.local', port: 8080, priority: 0, weight: 5 },
      { name: 'web-8081-service.web.flotilla.local', port: 8081, priority: 0, weight: 1 },
    ]);
    expect(await resolver.resolveSrv('web.flotilla.local')).toHaveLength(2);
    expect(await resolver.resolve4('web-8081-service.web.flotilla.local')).toEqual(['127.0.0.12']);
    expect(await resolver.resolve4('api.flotilla.local')).toEqual(['127.0.0.12']);

    expect(await code(resolver.resolve4('db.flotilla.local'))).toBe('ENOTFOUND');
    expect(await code(resolver.resolve4('nope.web.flotilla.local'))).toBe('ENOTFOUND');
    expect(await code(resolver.resolve4('a.b.web.flotilla.local'))).toBe('ENOTFOUND');
    expect(await code(resolver.resolve6('web.flotilla.local'))).toBe('ENODATA');
    expect(await code(resolver.resolve4('example.com'))).toBe('EREFUSED');
    const soa = await resolver.resolveSoa('flotilla.local');
    expect(soa).toMatchObject({ nsname: 'ns.flotilla.local', minttl: 5 });
    // The name server the zone names resolves: to the front's own address.
    expect(await resolver.resolveNs('flotilla.local')).toEqual(['ns.flotilla.local']);
    expect(await resolver.resolve4('ns.flotilla.local')).toEqual(['127.0.0.1']);
  });

  it('sets AA on answers about its domain, not on REFUSED ones', async () => {
    const { dns } = await front(etcd.endpoints, newPrefix());
    const sock = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
    const query = async (name: string): Promise<dnsPacket.DecodedPacket> => {
      const reply = new Promise<Buffer>((r) => sock.once('message', r));
      sock.send(dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name }] }), dns.port, '127.0.0.1');
      return dnsPacket.decode(await reply);
    };
    const refused = await query('example.com');
    expect((refused.flags ?? 0) & 0xf).toBe(5); // REFUSED
    expect(refused.flag_aa).toBe(false);
    const nx = await query('db.flotilla.local');
    expect((nx.flags ?? 0) & 0xf).toBe(3); // NXDOMAIN
    expect(nx.flag_aa).toBe(true);
  });

  it('follows announcements and withdrawals through the watch: a withdrawn service is NXDOMAIN', async () => {
    const { d, resolver } = await front(etcd.endpoints, newPrefix(), { domain: 'svc.test.', ttl: 1 });
    expect(await code(resolver.resolve4('cache.svc.test'))).toBe('ENOTFOUND');
    const a = await d.announce('cache', { host: '127.0.0.21', port: 6379 }, { ttl: 5 });
    await until(() => (d as unknown as { cacheInstance: EndpointCache }).cacheInstance.has('cache'), 5_000, 'the cache');
    expect(await resolver.resolve4('cache.svc.test', { ttl: true })).toEqual([{ address: '127.0.0.21', ttl: 1 }]);
    await a.stop();
    await until(() => !(d as unknown as { cacheInstance: EndpointCache }).cacheInstance.has('cache'), 5_000, 'withdrawal');
    expect(await code(resolver.resolve4('cache.svc.test'))).toBe('ENOTFOUND');
  });

  it('truncates a large answer over UDP and the resolver gets it whole over TCP', async () => {
    const { d, cache, resolver } = await front(etcd.endpoints, newPrefix());
    const lease = await d.registry.grantLease(10);
    cleanups.push(() => lease.revoke().catch(() => undefined));
    for (let i = 0; i < 300; i++) {
      const host = `127.1.${i >> 7}.${(i & 127) + 1}`;
      await d.registry.announce({ service: 'big', instance: `i${i}`, host, port: 80, attributes: {} }, lease);
    }
    await until(() => cache.endpoints('big').length === 300, 10_000, '300 endpoints');
    expect(await resolver.resolve4('big.flotilla.local')).toHaveLength(300);
    expect(await resolver.resolveSrv('_big._tcp.flotilla.local')).toHaveLength(300);
  });

  it('answers from the cache while etcd is down', async () => {
    const cluster = await startEtcd();
    cleanups.push(() => cluster.close());
    const { d, cache, resolver, dns } = await front(cluster.endpoints, newPrefix());
    await d.announce('web', { host: '127.0.0.31', port: 80 }, { ttl: 30 });
    await until(() => cache.has('web'), 5_000, 'the cache');
    await cluster.stopMember(0);
    const before = dns.queries;
    for (let i = 0; i < 20; i++) expect(await resolver.resolve4('web.flotilla.local')).toEqual(['127.0.0.31']);
    expect(dns.queries - before).toBe(20);
    await cluster.startMember(0);
  });

  it('flotillad runs the DNS front with dns_listen, dns_domain and dns_ttl', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-dns-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'machine-id'), `${randomBytes(16).toString('hex')}\n`);
    writeFileSync(path.join(dir, 'flotilla.conf'), '');
    const prefix = newPrefix();
    const daemon = await startDaemon({
      config: {
        file: path.join(dir, 'flotilla.conf'),
        env: {},
        flags: {
          etcd_servers: etcd.endpoints.join(','),
          etcd_key_prefix: prefix,
          machine_id_file: path.join(dir, 'machine-id'),
          // A socket of the test's own: the default path is the host's, shared with any other daemon.
          api_socket: path.join(dir, 'api.sock'),
          disable_engine: 'true',
          dns_listen: '127.0.0.1:0',
          dns_domain: 'lab.example.',
          dns_ttl: '2',
        },
      },
      systemd: new FakeSystemd(),
      log: silentLogger,
    });
    cleanups.push(() => daemon.stop({ shutdown: 'keep' }));
    expect(daemon.dns).toBeDefined();
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([`127.0.0.1:${daemon.dns!.port}`]);
    const d = Discovery.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 5_000 });
    cleanups.push(() => d.close());
    const a = await d.announce('web', { host: '127.0.0.41', port: 8080 }, { ttl: 5 });
    let answer: unknown;
    for (let i = 0; i < 50; i++) {
      answer = await resolver.resolve4('web.lab.example', { ttl: true }).catch(() => undefined);
      if (answer) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer).toEqual([{ address: '127.0.0.41', ttl: 2 }]);
    expect(await resolver.resolve4('ns.lab.example')).toEqual(['127.0.0.1']);
    await a.stop();
    for (let i = 0; i < 50 && (await code(resolver.resolve4('web.lab.example'))) !== 'ENOTFOUND'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await code(resolver.resolve4('web.lab.example'))).toBe('ENOTFOUND');
  });

  it('flotillad starts, moves and stops the DNS front on reload (SIGHUP)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-dns-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'machine-id'), `${randomBytes(16).toString('hex')}\n`);
    const conf = path.join(dir, 'flotilla.conf');
    const prefix = newPrefix();
    const base = `etcd_servers=${etcd.endpoints.join(',')}\netcd_key_prefix=${prefix}\nmachine_id_file=${path.join(dir, 'machine-id')}\napi_socket=${path.join(dir, 'api.sock')}\ndisable_engine=true\n`;
    writeFileSync(conf, base);
    const daemon = await startDaemon({ config: { file: conf, env: {} }, systemd: new FakeSystemd(), log: silentLogger });
    cleanups.push(() => daemon.stop({ shutdown: 'keep' }));
    expect(daemon.dns).toBeUndefined();
    const d = Discovery.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 5_000 });
    cleanups.push(() => d.close());
    await d.announce('web', { host: '127.0.0.51', port: 80 }, { ttl: 5 });

    writeFileSync(conf, `${base}dns_listen=127.0.0.1:0\ndns_domain=one.test\n`);
    await daemon.reload();
    const first = daemon.dns!;
    expect(first.domain).toBe('one.test');
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([`127.0.0.1:${first.port}`]);
    expect(await resolver.resolve4('web.one.test')).toEqual(['127.0.0.51']);

    writeFileSync(conf, `${base}dns_listen=127.0.0.1:0\ndns_domain=two.test\n`);
    await daemon.reload();
    expect(daemon.dns).not.toBe(first);
    resolver.setServers([`127.0.0.1:${daemon.dns!.port}`]);
    expect(await resolver.resolve4('web.two.test')).toEqual(['127.0.0.51']);

    writeFileSync(conf, base);
    await daemon.reload();
    expect(daemon.dns).toBeUndefined();
  });
});
