// flotctl as users run it: global flags and their FLOTCTL_* variables,
// exit codes, one-line errors, an unreachable etcd; a few runs in a real
// process (node --import tsx cli/flotctl.ts) for exit codes and output.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { captureIO } from '../../../src/ctl/io.js';
import { useEtcd } from '../../helpers/etcd.js';
import { SERVICE, cli, unitDir } from './harness.js';

const etcd = useEtcd();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

async function run(args: string[], env: Record<string, string> = {}) {
  const io = captureIO({ env });
  const code = await runFlotctl(args, io, { attemptMs: 250 });
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

function spawnCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/flotctl.ts'), ...args], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flotctl ${args.join(' ')} did not exit`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('flotctl command line', () => {
  it('reads global options from FLOTCTL_* variables, flags winning', async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'e.service': SERVICE() });
    await c.run(['submit', 'e'], { cwd: files.dir });
    const env = { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: c.prefix };
    expect((await run(['list-unit-files', '--no-legend', '--fields', 'unit'], env)).stdout).toBe('e.service\n');
    expect((await run(['--etcd-key-prefix', '/elsewhere/', 'list-unit-files', '--no-legend'], env)).stdout).toBe('');
    expect(await run(['list-units'], { ...env, FLOTCTL_REQUEST_TIMEOUT: 'soon' })).toMatchObject({ code: 2, stderr: expect.stringMatching(/^flotctl: FLOTCTL_REQUEST_TIMEOUT=soon is not a number/) });
  });

  it('names the endpoints of an unreachable etcd within the request timeout', async () => {
    const port = await deadPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const r = await run(['--endpoint', `${endpoint},${endpoint.replace('127.0.0.1', 'localhost')}`, '--request-timeout', '0.5', 'list-machines']);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`etcd is unreachable at ${endpoint}, http://localhost:${port}`);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const debug = await run(['--endpoint', endpoint, '--request-timeout', '0.5', '--debug', 'list-machines']);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('refuses usage errors with exit code 2 and one line', async () => {
    const cases: [string[], RegExp][] = [
      [['list-unit'], /^flotctl: ambiguous command "list-unit": could be list-unit-files, list-units\n$/],
      [['frobnicate'], /^flotctl: unknown command "frobnicate"; see flotctl help\n$/],
      [['start', '--no-block', '--block-attempts=3', 'a'], /^flotctl: --no-block and --block-attempts cannot be used together; see flotctl help start\n$/],
      [['start', '--block-attempts=-2', 'a'], /whole number/],
      [['start'], /^flotctl: missing arguments: usage: flotctl start <units\.\.>; see flotctl help start\n$/],
      [['list-units', '--bogus'], /^flotctl: unknown flag --bogus; see flotctl help list-units\n$/],
      [['--request-timeout', '0', 'list-units'], /request-timeout must be a positive/],
      [['--endpoint', 'nope', 'list-units'], /not a URL/],
      [['list-units', '-o', 'yaml'], /^flotctl: --output must be one of: table, json \(got "yaml"\)/],
      [[], /^flotctl: no command given; see flotctl help\n$/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
    }
  });

  it('fails with exit code 1 for a unit that does not exist and an unreachable API', async () => {
    const empty = { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: '/t-empty-cli/' };
    expect(await run(['status', 'a'], empty)).toEqual({ code: 1, stdout: '', stderr: 'flotctl: Unit a.service does not exist.\n' });
    expect(await run(['journal', 'a'], empty)).toEqual({ code: 1, stdout: '', stderr: 'flotctl: Unit a.service does not exist.\n' });
    const api = await run(['--driver', 'api', '--endpoint', 'unix:///nonexistent/flotilla.sock', 'list-units']);
    expect(api).toMatchObject({ code: 1, stdout: '' });
    expect(api.stderr).toBe('flotctl: the flotilla API is unreachable at unix:///nonexistent/flotilla.sock: no socket at /nonexistent/flotilla.sock: is flotillad running on this machine (api_socket)? Or use --driver etcd\n');
  });

  it('prints its version, help and completion scripts', async () => {
    expect(await run(['--version'])).toEqual({ code: 0, stdout: 'flotctl version 0.1.0\n', stderr: '' });
    expect(await run(['vers'])).toEqual({ code: 0, stdout: 'flotctl version 0.1.0\n', stderr: '' });
    const help = await run(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/flotctl list-machines/);
    expect(help.stdout).not.toMatch(/__complete/);
    const startHelp = await run(['help', 'star']);
    expect(startHelp.stdout).toMatch(/--block-attempts/);
    expect((await run(['start', '--help'])).stdout).toBe(startHelp.stdout);
    expect((await run(['completion', 'bash'])).stdout).toMatch(/complete -o filenames -F _flotctl flotctl/);
    expect((await run(['completion', 'zsh'])).stdout).toMatch(/^#compdef flotctl/);
    expect((await run(['completion', 'fish'])).code).toBe(2);
  });

  it('runs as a process: exit codes 0, 1 and 2, output on the right streams', async () => {
    const c = cli(etcd.endpoints);
    const port = await deadPort();
    const [version, list, ambiguous, unreachable] = await Promise.all([
      spawnCli(['version']),
      spawnCli(['list-machines', '-o', 'json'], { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: c.prefix }),
      spawnCli(['list-u']),
      spawnCli(['--endpoint', `http://127.0.0.1:${port}`, '--request-timeout', '0.5', 'list-units']),
    ]);
    expect(version).toMatchObject({ code: 0, stdout: 'flotctl version 0.1.0\n', stderr: '' });
    expect(list).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(list.stdout)).toEqual({ machines: [] });
    expect(ambiguous).toMatchObject({ code: 2, stdout: '', stderr: 'flotctl: ambiguous command "list-u": could be list-unit-files, list-units\n' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(new RegExp(`^flotctl: .*etcd is unreachable at http://127\\.0\\.0\\.1:${port}`));
  });

  it("runs a fleetctl script under set -e: FLEETCTL_* variables, fleetctl's flags, destroy of a unit that is not there", async () => {
    const c = cli(etcd.endpoints);
    const files = unitDir({ 'x@.service': SERVICE('/bin/sleep %i') });
    // tsx resolves from the checkout, so flotctl runs there; the unit file is named by its path
    const script = [
      `flotctl() { (cd ${JSON.stringify(root)} && ${JSON.stringify(process.execPath)} --import tsx cli/flotctl.ts "$@"); }`,
      'flotctl --experimental-api=false --ssh-username core --strict-host-key-checking=false destroy x@1',
      `flotctl submit ${JSON.stringify(path.join(files.dir, 'x@1.service'))}`,
      'flotctl destroy x@1',
      'flotctl destroy x@1',
      'echo done',
    ].join('\n');
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('sh', ['-ec', script], {
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', FLEETCTL_ENDPOINT: etcd.endpoints.join(','), FLEETCTL_ETCD_KEY_PREFIX: c.prefix },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    const missing = 'flotctl: warning: unit x@1.service does not exist; nothing to destroy\n';
    expect(r).toEqual({ code: 0, stdout: 'Unit x@1.service inactive\nDestroyed x@1.service\ndone\n', stderr: `${missing}${missing}` });
  });
});
