// A secure lab (flotilla-lab up --secure) end to end: etcd on https with
// client certificates and a password, made at up with openssl; two nodes
// whose flotillad registers with the copies of the credentials the lab gave
// them; flotctl, pointed at the lab by sourcing its env file, starts a unit
// that systemd runs in a node; clients without the certificate, or with it
// and a wrong password, are refused; down leaves no process, mount or folder.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down } from '../../src/lab/cluster.js';
import type { LabStatus } from '../../src/lab/lab-status.js';
import { freePorts } from '../../src/lab/etcd.js';
import { run, type RunResult } from '../../src/lab/exec.js';
import { labLayout } from '../../src/lab/lab-state.js';
import { cleanup, makeRunDir, mountsUnder, skipWithoutNodes } from '../../src/lab/nodes.js';
import { isAlive } from '../../src/lab/proc.js';
import { ensureBuilt, eventually } from '../helpers/lab-cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(repo, 'cli', 'flotilla-lab.ts');
const FLOTCTL = path.join(repo, 'dist', 'cli', 'flotctl.js');
const UNIT = 'secure-hello.service';

describe.skipIf(skipWithoutNodes('secure lab test (test/e2e/secure-lab.test.ts)'))('flotilla-lab up --secure', () => {
  let runDir = '';
  let unitDir = '';

  beforeAll(() => {
    ensureBuilt();
    runDir = makeRunDir();
    unitDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-secure-units-'));
  }, 180_000);

  afterAll(async () => {
    if (unitDir) rmSync(unitDir, { recursive: true, force: true });
    if (!runDir) return;
    await down(path.join(runDir, 'lab')).catch((err: unknown) => console.error(err));
    await cleanup(runDir);
    if (mountsUnder(runDir).length === 0) rmSync(runDir, { recursive: true, force: true });
  });

  it('runs a cluster on etcd with TLS and authentication; refuses clients without the certificate or the password', async () => {
    const dir = path.join(runDir, 'lab');
    const layout = labLayout(dir);
    const [port = 0] = await freePorts('127.0.0.1', 1);
    const started = Date.now();
    const upped = await lab(dir, ['up', '--secure', '--nodes', '2', '--etcd-port', String(port)]);
    expect(upped.code, upped.stderr + upped.stdout).toBe(0);
    // etcd on its own address on the lab's bridge (its certificate names that address).
    const net = /network: bridge \S+ with (10\.\d+\.\d+\.)1 in /.exec(upped.stdout)?.[1] ?? 'none';
    const endpoint = `https://${net}2:${port}`;
    console.log(`flotilla-lab up --secure (2 nodes) took ${Date.now() - started} ms (CLI included)`);
    expect(upped.stdout).toContain('all 2 machines registered in etcd');
    expect(upped.stdout).toContain(`FLOTCTL_ENDPOINT=${endpoint}`);
    expect(upped.stdout).not.toMatch(/FLOTCTL_PASSWORD=[A-Za-z0-9_-]{8}/); // the password stays in the env file

    // Credentials: a 0700 folder, keys and passwords 0600; env file 0600.
    const tls = path.join(dir, 'etcd-tls');
    expect(statSync(tls).mode & 0o777).toBe(0o700);
    for (const f of ['ca.key', 'server.key', 'client.key', 'flotilla.password', 'root.password']) expect(statSync(path.join(tls, f)).mode & 0o777, f).toBe(0o600);
    expect(statSync(layout.envFile).mode & 0o777).toBe(0o600);
    const env = parseEnvFile(readFileSync(layout.envFile, 'utf8'));
    expect(env).toMatchObject({
      FLOTCTL_ENDPOINT: endpoint,
      FLOTCTL_CA_FILE: path.join(tls, 'ca.crt'),
      FLOTCTL_CERT_FILE: path.join(tls, 'client.crt'),
      FLOTCTL_KEY_FILE: path.join(tls, 'client.key'),
      FLOTCTL_USERNAME: 'flotilla',
    });
    const password = env['FLOTCTL_PASSWORD'] ?? '';
    expect(password.length).toBeGreaterThan(12);

    // status: secure, etcd healthy over https, both machines registered.
    const statusRun = await lab(dir, ['status', '--json']);
    expect(statusRun.code, statusRun.stderr).toBe(0);
    const s = JSON.parse(statusRun.stdout) as LabStatus;
    expect(s.secure).toBe(true);
    expect(s.etcd).toMatchObject([{ clientUrl: endpoint, state: 'healthy' }]);
    expect(s.nodes.map((n) => [n.name, n.state, n.flotillad, n.registered])).toEqual([
      ['n1', 'running', 'active', true],
      ['n2', 'running', 'active', true],
    ]);
    expect((await lab(dir, ['status'])).stdout).toContain('secure');

    // In the nodes: the credentials under /etc/flotilla/etcd, private; flotilla.conf names them.
    const conf = await nodeSh(dir, 'n1', ['cat', '/etc/flotilla/flotilla.conf']);
    expect(conf).toContain(`etcd_servers=${endpoint}`);
    expect(conf).toContain('etcd_cafile=/etc/flotilla/etcd/ca.crt');
    expect(conf).toContain('etcd_username=flotilla');
    expect(await nodeSh(dir, 'n1', ['stat', '-c', '%a', '/etc/flotilla/etcd/client.key', '/etc/flotilla/etcd/password', '/etc/flotilla/flotilla.conf'])).toBe('600\n600\n600\n');

    // `source DIR/env; flotctl ...` as a user would.
    const machines = await sourced(layout.envFile, [process.execPath, FLOTCTL, 'list-machines', '--no-legend']);
    expect(machines.code, machines.stderr).toBe(0);
    expect(machines.stdout.trim().split('\n')).toHaveLength(2);
    writeFileSync(path.join(unitDir, UNIT), '[Service]\nExecStart=/bin/sleep infinity\n');
    const startedUnit = await sourced(layout.envFile, [process.execPath, FLOTCTL, 'start', path.join(unitDir, UNIT)]);
    expect(startedUnit.code, startedUnit.stderr).toBe(0);
    expect(startedUnit.stdout).toMatch(/Unit secure-hello\.service launched on [0-9a-f]{8}\.\.\.\/10\.\d+\.\d+\.1[12]$/m);
    let activeOn: string[] = [];
    await eventually(async () => {
      const states = await Promise.all(['n1', 'n2'].map((n) => nodeSh(dir, n, ['systemctl', 'is-active', UNIT]).catch(() => '')));
      activeOn = ['n1', 'n2'].filter((_, i) => states[i]?.trim() === 'active');
      return activeOn.length === 1;
    }, `${UNIT} active in systemd on one node`);
    // The node's own flotctl (sidekicks' /usr/local/bin/flotctl, flotctl.env) gets in too.
    const inNode = await nodeSh(dir, activeOn[0]!, ['sh', '-c', 'set -a; . /etc/flotilla/flotctl.env; exec /usr/local/bin/flotctl list-units --no-legend --fields unit,active']);
    expect(inNode).toContain(`${UNIT}\tactive`);

    // Refused: no client certificate (flotctl and etcdctl), or the certificate and a wrong password.
    const flotctl = (vars: Record<string, string | undefined>, args: string[]): Promise<RunResult> =>
      run([process.execPath, FLOTCTL, '--request-timeout', '2', ...args], { env: flotctlEnv({ ...env, ...vars }), timeoutMs: 30_000 });
    const noCert = await flotctl({ FLOTCTL_CERT_FILE: undefined, FLOTCTL_KEY_FILE: undefined }, ['list-machines']);
    expect(noCert.code, noCert.stdout).not.toBe(0);
    const wrongPw = await flotctl({ FLOTCTL_PASSWORD: 'wrong' }, ['list-machines']);
    expect(wrongPw.code).toBe(1);
    expect(wrongPw.stderr).toMatch(/refused user "flotilla": wrong user name or password/);
    const etcdctl = (args: string[]): Promise<RunResult> =>
      run(['etcdctl', '--endpoints', endpoint, '--dial-timeout', '2s', '--command-timeout', '3s', '--cacert', env['FLOTCTL_CA_FILE']!, ...args, 'get', '/flotilla/machines/', '--prefix', '--keys-only'], {
        env: { ...process.env, ETCDCTL_API: '3' },
        timeoutMs: 20_000,
      });
    const cert = ['--cert', env['FLOTCTL_CERT_FILE']!, '--key', env['FLOTCTL_KEY_FILE']!];
    const etcdNoCert = await etcdctl(['--user', `flotilla:${password}`]);
    expect(etcdNoCert.code, etcdNoCert.stdout).not.toBe(0);
    const etcdWrongPw = await etcdctl([...cert, '--user', 'flotilla:wrong']);
    expect(etcdWrongPw.code).not.toBe(0);
    expect(etcdWrongPw.stderr).toMatch(/authentication failed/);
    const etcdNoUser = await etcdctl(cert); // the certificate alone names no user
    expect(etcdNoUser.code).not.toBe(0);
    expect(etcdNoUser.stderr).toMatch(/permission denied/);
    const etcdOk = await etcdctl([...cert, '--user', `flotilla:${password}`]);
    expect(etcdOk.code, etcdOk.stderr).toBe(0);
    expect(etcdOk.stdout.trim().split('\n').filter(Boolean)).toHaveLength(2);

    // down: nothing of the lab is left.
    const pids = [...s.etcd.map((m) => m.pid), ...lingering(dir)].filter((p): p is number => p !== undefined);
    const downed = await lab(dir, ['down']);
    expect(downed.code, downed.stderr).toBe(0);
    expect(pids.filter((p) => isAlive(p))).toEqual([]);
    expect(lingering(dir)).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    // Its range is gone from the host (no probe: with no route of its own, it would leave by the default route).
    expect((await run(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout).not.toContain(net);
  }, 120_000);
});

const CLI_TSX = '--import=tsx';

function lab(dir: string, args: string[]): Promise<RunResult> {
  return run([process.execPath, CLI_TSX, CLI, '--dir', dir, ...args], { timeoutMs: 120_000 });
}

async function nodeSh(dir: string, node: string, argv: string[]): Promise<string> {
  const r = await lab(dir, ['exec', node, '--', ...argv]);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${node}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// Runs argv after `source envFile` in bash, as a user of the lab would.
function sourced(envFile: string, argv: string[]): Promise<RunResult> {
  return run(['bash', '-c', 'source "$1" && shift && exec "$@"', 'bash', envFile, ...argv], { env: flotctlEnv({}), timeoutMs: 30_000 });
}

// The test's environment without FLOTCTL_* of its own, plus vars.
function flotctlEnv(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOTCTL_')) env[k] = v;
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
  return env;
}

// `export K=V` lines, V a plain word or single-quoted.
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!;
    out[m[1]!] = v.startsWith("'") ? v.slice(1, -1).replaceAll(`'\\''`, "'") : v;
  }
  return out;
}

// Processes whose command line names a path inside the lab's folder.
function lingering(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.some((a) => a.startsWith(dir + '/'))) found.push(Number(entry));
  }
  return found;
}
