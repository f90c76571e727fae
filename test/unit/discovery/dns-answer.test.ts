import dnsPacket, { type Packet } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { DnsAnswerer, RCODE, normalizeDomain, type EndpointSource } from '../../../src/discovery/dns-answer.js';
import { instanceLabel } from '../../../src/discovery/names.js';
import type { EndpointRecord } from '../../../src/registry/index.js';

function source(list: EndpointRecord[]): EndpointSource {
  const of = (s: string) => list.filter((e) => e.service === s);
  return {
    has: (s) => of(s).length > 0,
    endpoints: (s) => of(s),
    byLabel: (s, l) => of(s).find((e) => instanceLabel(e.instance) === l),
    revision: 42,
  };
}

const ep = (service: string, instance: string, host: string, port: number, attributes: Record<string, string> = {}): EndpointRecord => ({
  service,
  instance,
  host,
  port,
  attributes,
});

function ask(a: DnsAnswerer, name: string, type: string, extra: Partial<Packet> = {}, transport: 'udp' | 'tcp' = 'udp') {
  const q = dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name }], ...extra });
  const res = a.respond(q, transport)!;
  const p = dnsPacket.decode(res);
  return { p, rcode: (p.flags ?? 0) & 0xf, size: res.length };
}

describe('DNS answers', () => {
  const eps = [
    ep('web', 'web@8080.service', '127.0.0.11', 8080, { priority: '1', weight: '7' }),
    ep('web', 'web@8081.service', '127.0.0.12', 8081),
    ep('web', 'same-host', '127.0.0.12', 8082),
    ep('v6', 'a', '::1', 80),
    ep('named', 'a', 'db.example.com', 5432),
  ];
  const a = new DnsAnswerer(source(eps), { domain: 'Flotilla.Local.', ttl: 3 });

  it('answers A with each host once, authoritative, short TTL, echoing ID and RD', () => {
    const { p, rcode } = ask(a, 'web.flotilla.local', 'A');
    expect(rcode).toBe(RCODE.NOERROR);
    expect(p.id).toBe(77);
    expect(p.flag_aa).toBe(true);
    expect(p.flag_rd).toBe(true);
    expect(p.flag_qr).toBe(true);
    expect(p.answers!.map((r) => (r as { data: string }).data).sort()).toEqual(['127.0.0.11', '127.0.0.12']);
    expect(p.answers!.every((r) => (r as { ttl: number }).ttl === 3)).toBe(true);
  });

  it('answers SRV with targets that resolve, glue in the additional section, priority and weight from attributes', () => {
    const { p } = ask(a, '_web._tcp.flotilla.local', 'SRV');
    const srv = p.answers!.map((r) => (r as { data: { target: string; port: number; priority: number; weight: number } }).data);
    expect(srv.sort((x, y) => x.port - y.port)).toEqual([
      { target: 'web-8080-service.web.flotilla.local', port: 8080, priority: 1, weight: 7 },
      { target: 'web-8081-service.web.flotilla.local', port: 8081, priority: 0, weight: 1 },
      { target: 'same-host.web.flotilla.local', port: 8082, priority: 0, weight: 1 },
    ]);
    expect(p.additionals!.filter((r) => r.type === 'A')).toHaveLength(3);
    const named = ask(a, 'named.flotilla.local', 'SRV').p.answers![0] as { data: { target: string } };
    expect(named.data.target).toBe('db.example.com');
    expect(ask(a, 'web-8081-service.web.flotilla.local', 'A').p.answers).toMatchObject([{ type: 'A', data: '127.0.0.12' }]);
  });

  it('AAAA for IPv6 hosts; NODATA with the SOA for types a known name has none of', () => {
    expect(ask(a, 'v6.flotilla.local', 'AAAA').p.answers).toMatchObject([{ type: 'AAAA', data: '::1' }]);
    const none = ask(a, 'v6.flotilla.local', 'A');
    expect(none.rcode).toBe(RCODE.NOERROR);
    expect(none.p.answers).toEqual([]);
    expect(none.p.authorities).toMatchObject([{ type: 'SOA', data: { minimum: 3, serial: 42 } }]);
    expect(ask(a, 'web.flotilla.local', 'TXT').p.answers).toEqual([]);
  });

  it('NXDOMAIN for unknown names under the domain, REFUSED outside it, NOTIMP for other opcodes, FORMERR for garbage', () => {
    for (const n of ['db.flotilla.local', 'x.web.flotilla.local', 'a.b.c.flotilla.local', '_db._tcp.flotilla.local']) {
      const r = ask(a, n, 'A');
      expect(r.rcode).toBe(RCODE.NXDOMAIN);
      expect(r.p.authorities![0]!.type).toBe('SOA');
    }
    expect(ask(a, 'web.example.com', 'A').rcode).toBe(RCODE.REFUSED);
    expect(ask(a, 'flotilla.local', 'SOA').p.answers).toMatchObject([{ type: 'SOA' }]);
    expect(ask(a, 'web.flotilla.local', 'A', { flags: 2 << 11 }).rcode).toBe(RCODE.NOTIMP);
    const garbage = Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 99]);
    expect(dnsPacket.decode(a.respond(garbage, 'udp')!).flags! & 0xf).toBe(RCODE.FORMERR);
    expect(a.respond(Buffer.from([1, 2]), 'udp')).toBeUndefined();
  });

  it('AA only on answers about the domain: not on REFUSED, NOTIMP or FORMERR', () => {
    expect(ask(a, 'web.flotilla.local', 'A').p.flag_aa).toBe(true);
    expect(ask(a, 'db.flotilla.local', 'A').p.flag_aa).toBe(true); // NXDOMAIN: authoritative denial
    const refused = ask(a, 'web.example.com', 'A');
    expect(refused.rcode).toBe(RCODE.REFUSED);
    expect(refused.p.flag_aa).toBe(false);
    expect(ask(a, 'web.flotilla.local', 'A', { flags: 2 << 11 }).p.flag_aa).toBe(false);
    expect(ask(a, 'web.flotilla.local', 'A', { questions: [] }).p.flag_aa).toBe(false);
  });

  it('the NS names ns.<domain>, which resolves to the front address', () => {
    const withNs = new DnsAnswerer(source(eps), { domain: 'flotilla.local', ttl: 3, nameServer: '10.1.2.3' });
    expect(ask(withNs, 'flotilla.local', 'NS').p.answers).toMatchObject([{ type: 'NS', data: 'ns.flotilla.local' }]);
    const ns = ask(withNs, 'ns.flotilla.local', 'A');
    expect(ns.rcode).toBe(RCODE.NOERROR);
    expect(ns.p.flag_aa).toBe(true);
    expect(ns.p.answers).toMatchObject([{ type: 'A', name: 'ns.flotilla.local', data: '10.1.2.3' }]);
    expect(ask(withNs, 'ns.flotilla.local', 'AAAA').p.answers).toEqual([]); // NODATA, not NXDOMAIN
    const v6 = new DnsAnswerer(source(eps), { domain: 'flotilla.local', ttl: 3, nameServer: 'fd00::5' });
    expect(ask(v6, 'ns.flotilla.local', 'AAAA').p.answers).toMatchObject([{ type: 'AAAA', data: 'fd00::5' }]);
    // Without a known address the name still exists (NODATA).
    expect(ask(a, 'ns.flotilla.local', 'A').rcode).toBe(RCODE.NOERROR);
  });

  it('rotates the order so clients taking the first answer spread over all', () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 3; i++) firsts.add((ask(a, '_web._tcp.flotilla.local', 'SRV').p.answers![0] as { data: { port: number } }).data.port.toString());
    expect(firsts.size).toBe(3);
  });

  it('truncates over UDP (512 bytes, or the EDNS size) with TC set, and fits 65535 bytes over TCP', () => {
    const many = Array.from({ length: 500 }, (_, i) => ep('big', `i${i}`, `10.0.${i >> 8}.${i & 255}`, 80));
    const b = new DnsAnswerer(source(many), { domain: 'flotilla.local', ttl: 5 });
    const udp = ask(b, 'big.flotilla.local', 'A');
    expect(udp.p.flag_tc).toBe(true);
    expect(udp.size).toBeLessThanOrEqual(512);
    expect(udp.p.answers!.length).toBeGreaterThan(10);
    const edns = ask(b, 'big.flotilla.local', 'A', {
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    });
    expect(edns.size).toBeLessThanOrEqual(4096);
    expect(edns.size).toBeGreaterThan(512);
    const tcp = ask(b, 'big.flotilla.local', 'A', {}, 'tcp');
    expect(tcp.p.flag_tc).toBe(false);
    expect(tcp.p.answers).toHaveLength(500);
  });

  it('normalizes domains', () => {
    expect(normalizeDomain('Flotilla.Local.')).toBe('flotilla.local');
    expect(() => normalizeDomain('a..b')).toThrow();
    expect(() => normalizeDomain('')).toThrow();
  });
});
