// flotillad and flotctl (both drivers) against an etcd that requires TLS
// with client certificates and a user name and password, all from the
// configuration and flags. Certificates are made with openssl for the run.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { captureIO } from '../../src/ctl/io.js';
import { startDaemon, type DaemonHandle } from '../../src/daemon.js';
import { EtcdCluster } from '../../src/lab/etcd.js';
import { silentLogger } from '../../src/log.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { ETCD_TEST_ROOT } from '../helpers/paths.js';

const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
let dir: string;
let cluster: EtcdCluster | undefined;
let daemon: DaemonHandle | undefined;
let httpsUrl: string;
let plainUrl: string;
const prefix = `/t-${randomBytes(4).toString('hex')}/`;
const f = (n: string): string => path.join(dir, n);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function daemonFlags(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    etcd_servers: httpsUrl,
    etcd_cafile: f('ca.crt'),
    etcd_certfile: f('client.crt'),
    etcd_keyfile: f('client.key'),
    etcd_username: 'root',
    etcd_password: PASSWORD,
    etcd_key_prefix: prefix,
    machine_id_file: f('machine-id'),
    unit_dir: f('units'),
    public_ip: '127.0.0.7',
    engine_ttl: '2',
    api_socket: f('run/api.sock'),
    ...overrides,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-etcd-secure-'));
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=flotilla-test-ca');
  for (const name of ['server', 'client']) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', 'san.ext');
  }
  writeFileSync(f('machine-id'), `${randomBytes(16).toString('hex')}\n`);
  const [plain, tls] = [await freePort(), await freePort()];
  plainUrl = `http://127.0.0.1:${plain}`;
  httpsUrl = `https://127.0.0.1:${tls}`;
  mkdirSync(ETCD_TEST_ROOT, { recursive: true });
  // The plain listener is for the harness's health check and for turning auth on.
  cluster = await EtcdCluster.start({
    dir: mkdtempSync(path.join(ETCD_TEST_ROOT, 'c-')),
    clientPorts: [plain],
    extraArgs: ['--listen-client-urls', `${plainUrl},${httpsUrl}`, '--cert-file', f('server.crt'), '--key-file', f('server.key'), '--client-cert-auth', '--trusted-ca-file', f('ca.crt')],
  });
  const etcdctl = (...args: string[]): void => void execFileSync('etcdctl', ['--endpoints', plainUrl, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' });
  etcdctl('user', 'add', 'root', `--new-user-password=${PASSWORD}`, '--interactive=false');
  etcdctl('user', 'grant-role', 'root', 'root');
  etcdctl('auth', 'enable');
}, 120_000);

afterAll(async () => {
  await daemon?.stop({ shutdown: 'keep' });
  if (cluster) {
    await cluster.close();
    rmSync(cluster.dir, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

async function flotctl(args: string[]) {
  const io = captureIO({ env: {} });
  const code = await runFlotctl(args, io, { attemptMs: 250 });
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('etcd with TLS and authentication', () => {
  it('refuses a wrong password and a missing client certificate, naming the problem', async () => {
    const base = { systemd: new FakeSystemd(), log: silentLogger };
    await expect(startDaemon({ ...base, config: { file: '/dev/null', env: {}, flags: daemonFlags({ etcd_password: 'wrong', api_socket: '' }) } })).rejects.toThrow(
      /refused user "root": wrong user name or password/,
    );
    const noCert = await flotctl(['--endpoint', httpsUrl, '--ca-file', f('ca.crt'), '--username', 'root', '--password', PASSWORD, '--request-timeout', '1', '--etcd-key-prefix', prefix, 'list-units']);
    expect(noCert.code).toBe(1);
  });

  it('runs flotillad from its configuration, and flotctl with either driver', async () => {
    daemon = await startDaemon({ systemd: new FakeSystemd(), log: silentLogger, config: { file: '/dev/null', env: {}, flags: daemonFlags() } });
    const units = mkdtempSync(path.join(dir, 'u-'));
    writeFileSync(path.join(units, 'sec.service'), '[Service]\nExecStart=/bin/sleep infinity\n');
    const etcdArgs = ['--endpoint', httpsUrl, '--ca-file', f('ca.crt'), '--cert-file', f('client.crt'), '--key-file', f('client.key'), '--username', 'root', '--password', PASSWORD, '--etcd-key-prefix', prefix];
    const io = captureIO({ env: {}, cwd: units });
    expect(await runFlotctl([...etcdArgs, 'start', 'sec'], io, { attemptMs: 250 })).toBe(0);
    expect(io.stdout).toMatch(/Unit sec\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.7/);
    const viaEtcd = await flotctl([...etcdArgs, 'list-units', '--no-legend', '--fields', 'unit,active']);
    expect(viaEtcd).toEqual({ code: 0, stdout: 'sec.service\tactive\n', stderr: '' });
    const viaApi = await flotctl(['--driver', 'api', '--endpoint', `unix://${f('run/api.sock')}`, 'list-units', '--no-legend', '--fields', 'unit,active']);
    expect(viaApi).toEqual(viaEtcd);
  });
});
