// Every class of "cannot talk to it" failure, as users meet it: each message
// names what failed, where (the endpoint or socket), why (refused, no
// answer, not etcd, TLS, authentication) and what to try, in one line;
// failures to connect wait the whole request timeout, whatever etcd3's
// circuit breaker thinks. Against a real etcd with TLS and a password, plain
// and HTTP/2 servers that are not etcd, and a listener that never answers.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { captureIO } from '../../src/ctl/io.js';
import { startDaemon } from '../../src/daemon.js';
import { Discovery } from '../../src/discovery/index.js';
import { EtcdCluster, freePorts } from '../../src/lab/etcd.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { connect, type ConnectionOptions } from '../../src/registry/index.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { ETCD_TEST_ROOT } from '../helpers/paths.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
let dir: string;
let cluster: EtcdCluster | undefined;
let plainUrl: string;
let httpsUrl: string;
let tlsPort: number;
let deadUrl: string;
let silentUrl: string;
let http1Url: string;
let h2Url: string;
const closers: (() => void)[] = [];
const f = (n: string): string => path.join(dir, n);

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-conn-errors-'));
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  // etcd's certificate names 127.0.0.1 only: https://localhost is a name mismatch.
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const ca of ['ca', 'other-ca']) openssl('req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=${ca}`);
  for (const [name, ca] of [['server', 'ca'], ['client', 'ca'], ['stranger', 'other-ca']] as const) {
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', 'san.ext');
  }
  const [plain, tls, dead] = await freePorts('127.0.0.1', 3);
  tlsPort = tls!;
  plainUrl = `http://127.0.0.1:${plain}`;
  httpsUrl = `https://127.0.0.1:${tls}`;
  deadUrl = `http://127.0.0.1:${dead}`;
  mkdirSync(ETCD_TEST_ROOT, { recursive: true });
  cluster = await EtcdCluster.start({
    dir: mkdtempSync(path.join(ETCD_TEST_ROOT, 'c-')),
    clientPorts: [plain!],
    extraArgs: ['--listen-client-urls', `${plainUrl},${httpsUrl}`, '--cert-file', f('server.crt'), '--key-file', f('server.key'), '--client-cert-auth', '--trusted-ca-file', f('ca.crt')],
  });
  const etcdctl = (...args: string[]): void => void execFileSync('etcdctl', ['--endpoints', plainUrl, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' });
  etcdctl('user', 'add', 'root', `--new-user-password=${PASSWORD}`, '--interactive=false');
  etcdctl('user', 'grant-role', 'root', 'root');
  etcdctl('auth', 'enable');
  silentUrl = await listen(net.createServer(() => {}));
  http1Url = await listen(http.createServer((_req, res) => res.writeHead(404).end('404 page not found\n')));
  h2Url = await listen(http2.createServer((_req, res) => res.writeHead(404).end('404 page not found\n')));
}, 120_000);

afterAll(async () => {
  for (const close of closers) close();
  if (cluster) {
    await cluster.close();
    rmSync(cluster.dir, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

async function failure(opts: ConnectionOptions): Promise<{ message: string; ms: number }> {
  const c = connect(opts);
  const started = Date.now();
  try {
    await c.call('get k', () => c.client.get('k'));
    throw new Error('the request succeeded');
  } catch (err) {
    return { message: (err as Error).message, ms: Date.now() - started };
  } finally {
    c.close();
  }
}

const tlsFiles = (): Partial<ConnectionOptions> => ({ caFile: f('ca.crt'), certFile: f('client.crt'), keyFile: f('client.key'), username: 'root', password: PASSWORD });

describe('etcd failures', () => {
  const at = (url: () => string, cause: string): (() => RegExp) => () => new RegExp(`^get k: etcd is unreachable at ${url().replace(/[.]/g, '\\.')}: ${cause}`);
  const cases: [string, () => ConnectionOptions, () => RegExp][] = [
    ['refused', () => ({ endpoints: [deadUrl] }), at(() => deadUrl, 'connection refused; is etcd running and listening on that address and port\\?$')],
    ['not etcd: an HTTP/1 server', () => ({ endpoints: [http1Url] }), at(() => http1Url, "the server there is not etcd \\(it answered something other than gRPC\\); check the port: etcd's client port is usually 2379$")],
    ['not etcd: an HTTP/2 server answering 404', () => ({ endpoints: [h2Url] }), at(() => h2Url, "the server there is not etcd \\(it answered HTTP 404\\); check the port")],
    ['TLS: a CA that did not sign etcd\'s certificate', () => ({ endpoints: [httpsUrl], ...tlsFiles(), caFile: f('other-ca.crt') }), () =>
      new RegExp(`etcd is unreachable at https://127\\.0\\.0\\.1:${tlsPort}: TLS: etcd's certificate is not trusted \\(unable to verify the first certificate\\); check that the CA file ${f('other-ca.crt')} is the CA that signed it$`)],
    ['TLS: a host name the certificate does not list', () => ({ endpoints: [`https://localhost:${tlsPort}`], ...tlsFiles() }), () =>
      new RegExp(`etcd is unreachable at https://localhost:${tlsPort}: TLS: etcd's certificate is not issued for this host name or address \\(.*localhost.*\\); use a name or address the certificate lists$`)],
    ['TLS: no client certificate', () => ({ endpoints: [httpsUrl], caFile: f('ca.crt'), username: 'root', password: PASSWORD }), () =>
      /etcd is unreachable at https:\/\/127\.0\.0\.1:\d+: TLS: etcd requires a client certificate \(alert: [a-z ]+\); give a certificate and key file$/],
    ['TLS: a client certificate from another CA', () => ({ endpoints: [httpsUrl], ...tlsFiles(), certFile: f('stranger.crt'), keyFile: f('stranger.key') }), () =>
      new RegExp(`TLS: etcd refused the client certificate ${f('stranger.crt')} \\(alert: [a-z ]+\\); it must be signed by a CA etcd trusts`)],
    ['TLS: https:// to a plain port', () => ({ endpoints: [plainUrl.replace('http:', 'https:')], ...tlsFiles() }), () =>
      /etcd is unreachable at https:\/\/127\.0\.0\.1:\d+: TLS handshake failed: the server there does not speak TLS; use an http:\/\/ URL for it$/],
    ['http:// to a TLS port', () => ({ endpoints: [`http://127.0.0.1:${tlsPort}`] }), () =>
      /etcd is unreachable at http:\/\/127\.0\.0\.1:\d+: the server closed the connection without answering; if etcd serves TLS there, use an https:\/\/ URL and a CA file$/],
    ['auth: a wrong password', () => ({ endpoints: [plainUrl], username: 'root', password: 'wrong' }), () =>
      new RegExp(`^etcd at ${plainUrl.replace(/[.]/g, '\\.')} refused user "root": wrong user name or password$`)],
    ['auth: no user name', () => ({ endpoints: [plainUrl] }), () => /^etcd at http:\/\/127\.0\.0\.1:\d+ requires authentication; give a user name and password$/],
  ];
  for (const [name, opts, want] of cases) {
    it(name, async () => {
      // The default timeout: under load a TLS failure can take longer than 1 s to surface.
      const { message } = await failure({ requestTimeoutMs: 3_000, ...opts() });
      expect(message).toMatch(want());
    });
  }

  it('waits the whole request timeout for a refused connection and for no answer', async () => {
    const [refused, silent] = await Promise.all([failure({ endpoints: [deadUrl] }), failure({ endpoints: [silentUrl] })]);
    expect(refused.message).toMatch(/connection refused/);
    expect(silent.message).toMatch(new RegExp(`^get k: etcd is unreachable at ${silentUrl.replace(/[.]/g, '\\.')}: no answer within 3 s; check the address`));
    // the default timeout is 3 s; etcd3's breaker used to end a refused request after ~1.3 s
    expect(refused.ms).toBeGreaterThanOrEqual(2_500);
    expect(silent.ms).toBeGreaterThanOrEqual(2_500);
  });

  it('names the cause when a short request meets only the circuit breaker', async () => {
    const c = connect({ endpoints: [deadUrl], requestTimeoutMs: 300 });
    try {
      const messages: string[] = [];
      // the first request's refusals open the breaker for a second; the second meets only it
      for (let i = 0; i < 2; i++) messages.push(await c.call('get k', () => c.client.get('k')).then(() => 'succeeded', (e: Error) => e.message));
      expect(messages[1]).toMatch(/etcd is unreachable at http:\/\/127\.0\.0\.1:\d+: connection refused/);
    } finally {
      c.close();
    }
  });

  it('flotillad at start and announce say the same', async () => {
    mkdirSync(f('units'), { recursive: true });
    writeFileSync(f('machine-id'), `${randomBytes(16).toString('hex')}\n`);
    const flags = { etcd_servers: deadUrl, etcd_request_timeout: '1', machine_id_file: f('machine-id'), unit_dir: f('units'), api_socket: '' };
    await expect(startDaemon({ systemd: new FakeSystemd(), log: silentLogger, config: { file: '/dev/null', env: {}, flags } })).rejects.toThrow(
      new RegExp(`etcd is unreachable at ${deadUrl.replace(/[.]/g, '\\.')}: connection refused`),
    );
    const d = Discovery.connect({ endpoints: [deadUrl], requestTimeoutMs: 1_000 });
    try {
      await expect(d.announce('web', { host: '127.0.0.1', port: 80 }, { ttl: 5 })).rejects.toThrow(/etcd is unreachable at http:\/\/127\.0\.0\.1:\d+: connection refused; is etcd running/);
    } finally {
      await d.close();
    }
  });
});

async function flotctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO({ env: {} });
  const code = await runFlotctl(['--request-timeout', '1', ...args], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('flotctl with either driver', () => {
  it('etcd driver: one line with the endpoint and the cause, exit 1', async () => {
    // list-units reads units and schedules at once: whichever fails first is named.
    const got = await flotctl(['--endpoint', h2Url, 'list-units']);
    expect({ code: got.code, stdout: got.stdout }).toEqual({ code: 1, stdout: '' });
    expect(got.stderr).toMatch(/^flotctl: list \/flotilla\/[a-z]+\/: /);
    expect(got.stderr.replace(/^flotctl: list \/flotilla\/[a-z]+\/: /, '')).toBe(
      `etcd is unreachable at ${h2Url}: the server there is not etcd (it answered HTTP 404); check the port: etcd's client port is usually 2379\n`,
    );
  });

  it('api driver: a missing socket, a refused port, a server that is not the API, TLS to a plain port', async () => {
    const sock = f('none/flotilla.sock');
    const cases: [string, string][] = [
      [`unix://${sock}`, `the flotilla API is unreachable at unix://${sock}: no socket at ${sock}: is flotillad running on this machine (api_socket)? Or use --driver etcd`],
      [deadUrl, `the flotilla API is unreachable at ${deadUrl}: connection refused; is flotillad serving its API there (api_listen)?`],
      [http1Url, `the server at ${http1Url} is not the flotilla API (it answered HTTP 404 with something other than JSON); check the endpoint`],
      [plainUrl.replace('http:', 'https:'), `the flotilla API is unreachable at ${plainUrl.replace('http:', 'https:')}: TLS handshake failed: the server there does not speak TLS; use an http:// URL for it`],
    ];
    for (const [endpoint, want] of cases) {
      const got = await flotctl(['--driver', 'api', '--endpoint', endpoint, 'list-units']);
      // A ClientHello sent to etcd's plain port: etcd either answers bytes that
      // are not TLS or just closes; which one comes first varies under load.
      const closed = `flotctl: the flotilla API is unreachable at ${endpoint}: the server closed the connection without answering\n`;
      if (endpoint.startsWith('https:') && got.stderr === closed) continue;
      expect(got).toEqual({ code: 1, stdout: '', stderr: `flotctl: ${want}\n` });
    }
  });

  it('prints no Node warning for an https endpoint given by IP address', async () => {
    const args = ['--endpoint', httpsUrl, '--ca-file', f('ca.crt'), '--cert-file', f('client.crt'), '--key-file', f('client.key'), '--username', 'root', '--password', PASSWORD, 'list-machines'];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/flotctl.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^MACHINE/);
  });
});

describe('flotillad reload', () => {
  it('logs a failed reload as a JSON line like the others', async () => {
    const lines: string[] = [];
    const conf = f('flotilla.conf');
    writeFileSync(conf, '');
    writeFileSync(f('machine-id'), `${randomBytes(16).toString('hex')}\n`);
    const flags = { etcd_servers: plainUrl, etcd_username: 'root', etcd_password: PASSWORD, etcd_key_prefix: `/r-${randomBytes(4).toString('hex')}/`, machine_id_file: f('machine-id'), unit_dir: f('units'), api_socket: '', disable_engine: 'true' };
    const log = createLogger('flotillad', { level: 'info', write: (l) => lines.push(l) });
    const daemon = await startDaemon({ systemd: new FakeSystemd(), log, config: { file: conf, env: {}, flags } });
    try {
      writeFileSync(conf, 'agent_ttl=soon\n');
      await expect(daemon.reload()).rejects.toThrow(/agent_ttl/);
    } finally {
      await daemon.stop({ shutdown: 'keep' });
    }
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toContainEqual(expect.objectContaining({ level: 'error', msg: 'configuration reload failed', error: expect.stringMatching(/agent_ttl/) }));
  });
});
