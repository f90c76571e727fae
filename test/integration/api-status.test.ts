// /flotilla/v1/units/{name}/status and /journal, with stand-ins for
// systemctl and journalctl, and flotctl status and journal reaching the
// machine through the apiUrl in its machine record, with a bearer token.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { ApiServer } from '../../src/api/index.js';
import { advertisedApiUrl } from '../../src/daemon.js';
import { captureIO } from '../../src/ctl/io.js';
import { decode } from '../../src/registry/records.js';
import type { MachineRecord, Registry } from '../../src/registry/index.js';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry, unitRecord } from '../helpers/registry.js';

const etcd = useEtcd();
const TOKEN = 'status-token-0123456789abcdef';
let dir: string;
let registry: Registry;
let server: ApiServer;
let port: number;
/** m3's "flotillad": answers a followed journal with two lines, then its machine goes away (the connection closes). */
let vanishing: http.Server;
/** m4's "flotillad": answers a followed journal with a line, then stays silent with the connection open (a machine switched off). */
let silent: http.Server;
let m4Lease: Awaited<ReturnType<Registry['grantLease']>>;

const SYSTEMCTL = `#!/bin/sh
# args: status -l --no-pager --full NAME
echo "● $5 - fake"
echo "     Active: active (running) since now"
echo "args: $*"
exit 3
`;
// Prints its arguments; with -f, a line every 50 ms until killed (its PID in journal.pid).
const JOURNALCTL = `#!/bin/sh
echo "args: $*"
case " $* " in *" -f "*)
  echo $$ > "${'$'}{JOURNAL_PID_FILE}"
  while true; do echo tick; sleep 0.05; done;;
esac
`;

function machine(id: string, apiUrl?: string): MachineRecord {
  return { id, publicIp: '127.0.0.1', metadata: {}, version: 't', hostname: id, bootId: 'b', since: '', ...(apiUrl ? { apiUrl } : {}) };
}

function get(p: string, token = TOKEN): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, headers: { Authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
      })
      .on('error', reject);
  });
}

async function flotctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO({ env: { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: registry.keys.prefix, FLOTCTL_API_TOKEN_FILE: path.join(dir, 'token') } });
  const code = await runFlotctl(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-api-status-'));
  for (const [name, text] of [['systemctl', SYSTEMCTL], ['journalctl', JOURNALCTL]] as const) {
    writeFileSync(path.join(dir, name), text);
    chmodSync(path.join(dir, name), 0o755);
  }
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  process.env['JOURNAL_PID_FILE'] = path.join(dir, 'journal.pid');
  registry = testRegistry(etcd.endpoints);
  await registry.ensureSchema('test');
  server = new ApiServer({
    registry,
    machineId: 'm1',
    tcp: { listen: '127.0.0.1:0', tokenFile: path.join(dir, 'token'), insecure: true },
    commands: { systemctl: path.join(dir, 'systemctl'), journalctl: path.join(dir, 'journalctl') },
  });
  await server.start();
  port = server.tcpAddress!.port;
  const lease = await registry.grantLease(30);
  const lease2 = await registry.grantLease(30);
  await registry.registerMachine(machine('m1', `http://127.0.0.1:${port}`), lease);
  await registry.registerMachine(machine('m2'), lease2);
  vanishing = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('line 1\nline 2\n');
    setTimeout(() => res.socket?.destroy(), 100);
  });
  await new Promise<void>((r) => vanishing.listen(0, '127.0.0.1', r));
  await registry.registerMachine(machine('m3', `http://127.0.0.1:${(vanishing.address() as { port: number }).port}`), lease2);
  await registry.createUnit(unitRecord('far.service'), { desiredState: 'launched' });
  silent = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('line 1\n');
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  m4Lease = await registry.grantLease(30);
  await registry.registerMachine(machine('m4', `http://127.0.0.1:${(silent.address() as { port: number }).port}`), m4Lease);
  await registry.createUnit(unitRecord('quiet.service'), { desiredState: 'launched' });
  await registry.createUnit(unitRecord('here.service'), { desiredState: 'launched' });
  await registry.createUnit(unitRecord('off.service'), { desiredState: 'inactive' });
  await registry.createUnit(unitRecord('there.service', '[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n', true), { desiredState: 'launched' });
  const token = await registry.tryLead('m1', lease);
  await registry.applyPlan(token!, [
    { type: 'place', decision: { unit: 'here.service', machine: 'm1', hash: unitRecord('here.service').hash, state: 'launched' } },
    { type: 'place', decision: { unit: 'off.service', machine: 'm1', hash: unitRecord('off.service').hash, state: 'loaded' } },
    { type: 'place', decision: { unit: 'far.service', machine: 'm3', hash: unitRecord('far.service').hash, state: 'launched' } },
    { type: 'place', decision: { unit: 'quiet.service', machine: 'm4', hash: unitRecord('quiet.service').hash, state: 'launched' } },
  ]);
  const st = (unit: string, m: string) => ({ unit, machine: m, hash: 'h', loadState: 'loaded', activeState: 'active', subState: 'running', since: '' });
  await registry.publishStates([st('here.service', 'm1'), st('off.service', 'm1')], lease);
  await registry.publishStates([st('there.service', 'm2')], lease2);
}, 30_000);

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => vanishing?.close(r));
  silent?.closeAllConnections();
  await new Promise((r) => silent?.close(r));
  registry?.close();
  delete process.env['JOURNAL_PID_FILE'];
  rmSync(dir, { recursive: true, force: true });
});

describe('machine records', () => {
  it('apiUrl is optional: old records stay valid', () => {
    expect(decode.machine(JSON.stringify({ v: 1, ...machine('a') })).apiUrl).toBeUndefined();
    expect(decode.machine(JSON.stringify({ v: 1, ...machine('a', 'http://x:1') })).apiUrl).toBe('http://x:1');
  });

  it('flotillad advertises api_listen as a URL; a wildcard address advertises the public IP', () => {
    expect(advertisedApiUrl({ apiListen: undefined, apiCertFile: undefined }, '10.0.0.1')).toBeUndefined();
    expect(advertisedApiUrl({ apiListen: '127.0.0.11:7480', apiCertFile: undefined }, '10.0.0.1')).toBe('http://127.0.0.11:7480');
    expect(advertisedApiUrl({ apiListen: '0.0.0.0:7480', apiCertFile: '/c.pem' }, '10.0.0.1')).toBe('https://10.0.0.1:7480');
    expect(advertisedApiUrl({ apiListen: '[::]:7480', apiCertFile: undefined }, 'fd00::1')).toBe('http://[fd00::1]:7480');
    expect(advertisedApiUrl({ apiListen: '127.0.0.1:0', apiCertFile: undefined }, '10.0.0.1')).toBeUndefined();
    expect(advertisedApiUrl({ apiListen: '127.0.0.1:0', apiCertFile: undefined }, '10.0.0.1', 4000)).toBe('http://127.0.0.1:4000');
  });
});

describe('GET /flotilla/v1/units/{name}/status and /journal', () => {
  it('status runs systemctl status -l --no-pager --full NAME; exit 3 is an answer', async () => {
    const r = await get('/flotilla/v1/units/here.service/status');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain/);
    expect(r.body).toContain('● here.service - fake');
    expect(r.body).toContain('args: status -l --no-pager --full here.service');
  });

  it('needs the token; 404 for a unit not on this machine; 400 for a bad name or option', async () => {
    expect((await get('/flotilla/v1/units/here.service/status', 'wrong-token-0123456789')).status).toBe(401);
    expect((await get('/flotilla/v1/units/there.service/status')).status).toBe(404);
    expect((await get('/flotilla/v1/units/nope.service/journal')).status).toBe(404);
    expect((await get('/flotilla/v1/units/bad%20name/status')).status).toBe(400);
    expect((await get('/flotilla/v1/units/here.service/journal?output=--help')).status).toBe(400);
    expect((await get('/flotilla/v1/units/here.service/journal?lines=-1')).status).toBe(400);
    expect((await get('/flotilla/v1/units/here.service/journal?follow=yes')).status).toBe(400);
    expect((await get('/flotilla/v1/units/here.service/journal?x=1')).status).toBe(400);
    expect((await get('/flotilla/v1/units/here.service/other')).status).toBe(404);
  });

  it('journal runs journalctl -u NAME -n N -o OUTPUT --no-pager', async () => {
    const r = await get('/flotilla/v1/units/here.service/journal?lines=5&output=cat');
    expect(r.status).toBe(200);
    expect(r.body).toBe('args: -u here.service -n 5 -o cat --no-pager\n');
  });

  it('a followed journal streams, and journalctl is killed when the client goes', async () => {
    const pidFile = process.env['JOURNAL_PID_FILE']!;
    rmSync(pidFile, { force: true });
    const got = await new Promise<string>((resolve, reject) => {
      let body = '';
      const req = http.get({ host: '127.0.0.1', port, path: '/flotilla/v1/units/here.service/journal?follow=true', headers: { Authorization: `Bearer ${TOKEN}` } }, (res) => {
        expect(res.headers['transfer-encoding']).toBe('chunked');
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (body.split('tick').length > 3) {
            req.destroy();
            resolve(body);
          }
        });
      });
      req.on('error', (e) => (body.includes('tick') ? undefined : reject(e)));
    });
    expect(got).toContain('args: -u here.service -n 10 -f -o short --no-pager');
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await sleep(20);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      await sleep(20);
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });
});

describe('flotctl status and journal through the machine record', () => {
  it('status prints the text from the unit machine', async () => {
    const r = await flotctl('status', 'here.service');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('● here.service - fake');
  });

  it('journal passes -n and --output', async () => {
    const r = await flotctl('journal', '-n', '3', '--output', 'cat', 'here');
    expect(r).toMatchObject({ code: 0, stdout: 'args: -u here.service -n 3 -o cat --no-pager\n' });
  });

  it('journal refuses an inactive unit; a machine without apiUrl is named; an unknown unit fails', async () => {
    const off = await flotctl('journal', 'off.service');
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/off\.service is inactive/);
    const there = await flotctl('status', 'there.service');
    expect(there.code).toBe(1);
    expect(there.stderr).toMatch(/machine m2\.\.\..*api_listen/);
    const nope = await flotctl('status', 'nope.service');
    expect(nope.code).toBe(1);
    expect(nope.stderr).toMatch(/nope\.service does not exist/);
  });

  it('journal -f: a machine that goes away mid-answer is named as gone, after the lines it sent', async () => {
    const r = await flotctl('journal', '-f', 'far.service');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('line 1\nline 2\n');
    expect(r.stderr).toMatch(/machine m3\.\.\.\/127\.0\.0\.1 went away while following: the connection to its flotillad closed/);
  });

  it('journal -f: a machine that leaves the cluster without closing the connection is named as gone', async () => {
    const following = flotctl('journal', '-f', 'quiet.service');
    await sleep(300);
    const leftAt = Date.now();
    await m4Lease.revoke(); // its presence goes, as when a switched-off machine's lease expires
    const r = await following;
    expect(Date.now() - leftAt).toBeLessThan(5_000); // checked every 2 s
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('line 1\n');
    expect(r.stderr).toMatch(/machine m4\.\.\.\/127\.0\.0\.1 went away while following: it left the cluster/);
  });

  it('without the token: a clear 401', async () => {
    const io = captureIO({ env: { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: registry.keys.prefix } });
    expect(await runFlotctl(['status', 'here.service'], io)).toBe(1);
    expect(io.stderr).toMatch(/authentication required.*--api-token-file/);
  });
});
