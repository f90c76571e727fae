// The API's pure parts: its configuration options and their checks,
// content types, unit options to and from unit files, Prometheus text.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { isJsonContentType } from '../../../src/api/body.js';
import { Counter, Histogram, MetricsRegistry, instrumentConnection } from '../../../src/api/metrics.js';
import { parseListen } from '../../../src/api/options.js';
import { optionsOf, parseOptions } from '../../../src/api/units.js';
import { RegistryUnavailableError, type Connection } from '../../../src/registry/index.js';
import { parseUnit } from '../../../src/unit/index.js';

const load = (flags: Record<string, string>) => loadConfig({ file: '/dev/null', env: {}, flags });

describe('API configuration', () => {
  it('defaults to the root-only socket and no TCP', () => {
    expect(load({})).toMatchObject({ apiSocket: '/run/flotilla/flotilla.sock', apiListen: undefined, apiInsecure: false });
    expect(load({ api_socket: '' }).apiSocket).toBeUndefined();
    expect(loadConfig({ file: '/dev/null', env: { FLOTILLA_API_SOCKET: '/tmp/x.sock' } }).apiSocket).toBe('/tmp/x.sock');
  });

  it('accepts TCP with TLS and client certificates or a token, or insecure', () => {
    const tls = { api_listen: '127.0.0.1:49153', api_certfile: '/c.pem', api_keyfile: '/k.pem' };
    expect(load({ ...tls, api_cafile: '/ca.pem' }).apiCaFile).toBe('/ca.pem');
    expect(load({ ...tls, api_token_file: '/t' }).apiTokenFile).toBe('/t');
    expect(load({ api_listen: '[::1]:80', api_insecure: 'true' })).toMatchObject({ apiListen: '[::1]:80', apiInsecure: true });
  });

  it('refuses TCP without TLS and authentication, and half-set options', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ api_listen: '127.0.0.1:49153' }, /needs TLS/],
      [{ api_listen: '127.0.0.1:49153', api_certfile: '/c', api_keyfile: '/k' }, /needs client authentication/],
      [{ api_listen: '127.0.0.1:49153', api_certfile: '/c', api_token_file: '/t' }, /both api_certfile and api_keyfile/],
      [{ api_listen: '127.0.0.1:49153', api_cafile: '/ca', api_insecure: 'true' }, /needs TLS/],
      [{ api_listen: 'localhost' }, /not host:port/],
      [{ api_listen: '127.0.0.1:99999', api_insecure: 'yes' }, /not host:port/],
      [{ api_token_file: '/t' }, /api_listen is not/],
      [{ api_insecure: 'true' }, /api_listen is not/],
      [{ api_socket: 'relative.sock' }, /absolute/],
      [{ api_insecure: 'maybe' }, /not a boolean/],
    ];
    for (const [flags, re] of bad) {
      expect(() => load(flags)).toThrow(ConfigError);
      expect(() => load(flags)).toThrow(re);
    }
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseListen('localhost:1')).toEqual({ host: 'localhost', port: 1 });
  });
});

describe('API bodies and units', () => {
  it('takes application/json with at most a UTF-8 charset', () => {
    for (const ok of ['application/json', 'Application/JSON; charset=utf-8', 'application/json;charset="UTF-8"']) expect(isJsonContentType(ok)).toBe(true);
    for (const no of [undefined, '', 'text/plain', 'application/json; charset=latin1', 'application/jsonx', 'multipart/form-data']) expect(isJsonContentType(no)).toBe(false);
  });

  it('turns a stored unit into options and back to the same text and hash', () => {
    const text = '[Unit]\nDescription=x\nAfter=a.service\nAfter=b.service\n\n[Service]\nExecStart=/bin/sleep 1\nEnvironment="A=1 2"\n\n[X-Fleet]\nGlobal=true\n';
    const stored = parseUnit('g.service', text);
    const again = parseOptions('g.service', optionsOf(stored.text));
    expect(again.text).toBe(stored.text);
    expect(again.hash).toBe(stored.hash);
    expect(again.requirements.global).toBe(true);
  });

  it('round-trips any options made of safe single lines (property)', () => {
    const word = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,11}$/);
    const value = fc.string({ maxLength: 40 }).filter((v) => !/[\r\n\0\\]/.test(v) && v.trim() === v && !/^[#;]/.test(v));
    fc.assert(
      fc.property(fc.array(fc.record({ section: fc.constantFrom('Unit', 'Service', 'Install'), name: word, value }), { minLength: 1, maxLength: 12 }), (options) => {
        const parsed = parseOptions('p.service', options);
        expect(parseOptions('p.service', optionsOf(parsed.text)).hash).toBe(parsed.hash);
      }),
      { numRuns: 300 },
    );
  });
});

describe('Prometheus text', () => {
  it('renders counters with escaped labels and cumulative histogram buckets', () => {
    const m = new MetricsRegistry();
    const c = m.add(new Counter('x_total', 'things'));
    c.inc({ kind: 'a"b\\c\nd' }, 2);
    const h = m.add(new Histogram('lat_seconds', 'latency', [0.1, 1]));
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const text = m.render();
    expect(text).toContain('x_total{kind="a\\"b\\\\c\\nd"} 2\n');
    expect(text).toContain('lat_seconds_bucket{le="0.1"} 1\nlat_seconds_bucket{le="1"} 2\nlat_seconds_bucket{le="+Inf"} 3\nlat_seconds_sum 5.55\nlat_seconds_count 3\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('counts etcd requests and their failures by error', async () => {
    const m = new MetricsRegistry();
    const fake = { client: {}, endpoints: ['http://x'], requestTimeoutMs: 1, close: () => undefined, call: async <T>(_w: string, fn: () => PromiseLike<T>) => fn() } as unknown as Connection;
    const conn = instrumentConnection(fake, m);
    await conn.call('ok', async () => 1);
    await expect(conn.call('bad', async () => Promise.reject(new RegistryUnavailableError(['http://x'], 'down')))).rejects.toThrow(/unreachable/);
    expect(m.render()).toMatch(/^flotilla_etcd_requests_total 2$/m);
    expect(m.render()).toMatch(/^flotilla_etcd_request_errors_total\{error="RegistryUnavailableError"\} 1$/m);
  });
});
