// The API on TCP: TLS with client certificates, a bearer token, or plain
// with api_insecure (and its warning). Certificates are made with openssl
// for this run in a temporary folder.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer, type ApiTcpOptions } from '../../src/api/index.js';
import { createLogger } from '../../src/log.js';
import type { Registry } from '../../src/registry/index.js';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry } from '../helpers/registry.js';

const etcd = useEtcd();
let dir: string;
let registry: Registry;
const servers: ApiServer[] = [];
const TOKEN = 'secret-token-0123456789abcdef';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate for 127.0.0.1, a client certificate, and a client certificate from another CA. */
function makeCerts(): void {
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'rogue-ca']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=${ca}`);
  }
  const sign = (name: string, ca: string, ext?: string): void => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...(ext ? ['-extfile', ext] : []));
  };
  sign('server', 'ca', 'san.ext');
  sign('client', 'ca');
  sign('rogue', 'rogue-ca');
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
}

const f = (name: string): string => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-api-tls-'));
  makeCerts();
  registry = testRegistry(etcd.endpoints);
}, 60_000);

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

afterAll(() => {
  registry?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(tcp: Omit<ApiTcpOptions, 'listen'>, log?: (l: string) => void): Promise<number> {
  const s = new ApiServer({ registry, tcp: { listen: '127.0.0.1:0', ...tcp }, logger: createLogger('flotillad', { write: log ?? (() => undefined) }) });
  servers.push(s);
  await s.start();
  return s.tcpAddress!.port;
}

interface Outcome {
  status?: number;
  body?: string;
  error?: string;
}

function get(port: number, opts: { tls: boolean; cert?: string; key?: string; token?: string; path?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
    const common = { host: '127.0.0.1', port, path: opts.path ?? '/fleet/v1/machines', headers, agent: false as const };
    const onRes = (res: http.IncomingMessage): void => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = opts.tls
      ? https.request(
          {
            ...common,
            ca: readFileSync(f('ca.crt')),
            ...(opts.cert ? { cert: readFileSync(f(opts.cert)), key: readFileSync(f(opts.key!)) } : {}),
          },
          onRes,
        )
      : http.request(common, onRes);
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

describe('the API on TCP', () => {
  it('with client certificates: refuses a client without one or with a foreign one', async () => {
    const port = await serve({ certFile: f('server.crt'), keyFile: f('server.key'), caFile: f('ca.crt') });
    expect(await get(port, { tls: true, cert: 'client.crt', key: 'client.key' })).toEqual({ status: 200, body: '{"machines":[]}' });
    const none = await get(port, { tls: true });
    expect(none.status).toBeUndefined();
    expect(none.error).toBeDefined();
    const rogue = await get(port, { tls: true, cert: 'rogue.crt', key: 'rogue.key' });
    expect(rogue.status).toBeUndefined();
    expect(rogue.error).toBeDefined();
    // a plain HTTP request to the TLS port gets no answer
    expect((await get(port, { tls: false })).status).toBeUndefined();
  });

  it('with a bearer token: 401 without it or with a wrong one', async () => {
    const port = await serve({ certFile: f('server.crt'), keyFile: f('server.key'), tokenFile: f('token') });
    expect(await get(port, { tls: true, token: TOKEN })).toEqual({ status: 200, body: '{"machines":[]}' });
    for (const token of [undefined, 'wrong', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const r = await get(port, { tls: true, ...(token ? { token } : {}) });
      expect({ token, status: r.status }).toEqual({ token, status: 401 });
      expect(JSON.parse(r.body!)).toEqual({ error: { code: 401, message: 'authentication required: a client certificate or a valid bearer token' } });
    }
    // /metrics is behind the same check
    expect((await get(port, { tls: true, path: '/metrics' })).status).toBe(401);
    expect((await get(port, { tls: true, path: '/metrics', token: TOKEN })).status).toBe(200);
  });

  it('with certificates and a token: either one lets a request in', async () => {
    const port = await serve({ certFile: f('server.crt'), keyFile: f('server.key'), caFile: f('ca.crt'), tokenFile: f('token') });
    expect((await get(port, { tls: true, cert: 'client.crt', key: 'client.key' })).status).toBe(200);
    expect((await get(port, { tls: true, token: TOKEN })).status).toBe(200);
    expect((await get(port, { tls: true })).status).toBe(401);
    expect((await get(port, { tls: true, cert: 'rogue.crt', key: 'rogue.key' })).status).toBe(401);
  });

  it('plain TCP only with api_insecure, warning at every start', async () => {
    const lines: string[] = [];
    const port = await serve({ insecure: true }, (l) => lines.push(l));
    expect((await get(port, { tls: false })).status).toBe(200);
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 'warn');
    expect(warnings).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^API on TCP is insecure/) })]);
    for (const s of servers.splice(0)) await s.stop();
    await serve({ insecure: true }, (l) => lines.push(l));
    expect(lines.filter((l) => JSON.parse(l).level === 'warn')).toHaveLength(2);
    // insecure with a token still checks the token
    const port2 = await serve({ insecure: true, tokenFile: f('token') });
    expect((await get(port2, { tls: false })).status).toBe(401);
    expect((await get(port2, { tls: false, token: TOKEN })).status).toBe(200);
  });

  it('refuses to start without TLS and authentication, or with a short token', async () => {
    await expect(serve({})).rejects.toThrow(/needs TLS/);
    await expect(serve({ certFile: f('server.crt'), keyFile: f('server.key') })).rejects.toThrow(/needs client authentication/);
    await expect(serve({ certFile: f('server.crt') })).rejects.toThrow(/both api_certfile and api_keyfile/);
    writeFileSync(f('short'), 'abc');
    await expect(serve({ certFile: f('server.crt'), keyFile: f('server.key'), tokenFile: f('short') })).rejects.toThrow(/too short/);
    await expect(serve({ certFile: f('nope.crt'), keyFile: f('server.key'), tokenFile: f('token') })).rejects.toThrow(/cannot read API certificate file/);
  });
});
