// The HTTP API of a real flotillad (agent on a fake systemd, engine, real
// etcd) over its unix socket: every endpoint and every error code.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { useEtcd } from '../helpers/etcd.js';

const etcd = useEtcd();

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

let dir: string;
let socketPath: string;
let daemon: DaemonHandle;
const machineId = randomBytes(16).toString('hex');
const logLines: string[] = [];

function request(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const h: Record<string, string> = { ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const opts = (pairs: [string, string, string][]) => pairs.map(([section, name, value]) => ({ section, name, value }));
const SERVICE = opts([
  ['Unit', 'Description', 'api test'],
  ['Service', 'ExecStart', '/bin/sleep infinity'],
]);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-api-'));
  socketPath = path.join(dir, 'run', 'flotilla.sock');
  writeFileSync(path.join(dir, 'machine-id'), `${machineId}\n`);
  writeFileSync(path.join(dir, 'flotilla.conf'), '');
  daemon = await startDaemon({
    systemd: new FakeSystemd(),
    log: createLogger('flotillad', { level: 'info', write: (l) => logLines.push(l) }),
    config: {
      file: path.join(dir, 'flotilla.conf'),
      env: {},
      flags: {
        etcd_servers: etcd.endpoints.join(','),
        etcd_key_prefix: `/t-${randomBytes(4).toString('hex')}/`,
        machine_id_file: path.join(dir, 'machine-id'),
        unit_dir: path.join(dir, 'units'),
        public_ip: '127.0.0.9',
        metadata: 'role=web,zone=a',
        engine_ttl: '2',
        api_socket: socketPath,
      },
    },
  });
});

afterAll(async () => {
  await daemon?.stop({ shutdown: 'keep' });
  rmSync(dir, { recursive: true, force: true });
});

describe('flotillad API on its unix socket', () => {
  it('serves on a socket only its owner can use', () => {
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(daemon.api).toBeDefined();
  });

  it('creates, reads, changes and destroys a unit (201, 200, 204, 404)', async () => {
    expect((await request('PUT', '/fleet/v1/units/web.service', { desiredState: 'launched', options: SERVICE })).status).toBe(201);
    const got = await request('GET', '/fleet/v1/units/web.service');
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.json).toMatchObject({ name: 'web.service', desiredState: 'launched', options: SERVICE, global: false });
    expect(got.json.hash).toMatch(/^[0-9a-f]{40}$/);
    // the engine places it on this machine and the agent runs it
    let unit: Res | undefined;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      unit = await request('GET', '/fleet/v1/units/web.service');
      if (unit.json.currentState === 'launched') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(unit!.json).toMatchObject({ currentState: 'launched', machineID: machineId, scheduled: { machineID: machineId, state: 'launched' } });

    // the same file again, and a state change: 204
    expect((await request('PUT', '/fleet/v1/units/web.service', { name: 'web.service', desiredState: 'launched', options: SERVICE })).status).toBe(204);
    expect((await request('PUT', '/fleet/v1/units/web.service', { desiredState: 'loaded' })).status).toBe(204);
    expect((await request('GET', '/fleet/v1/units/web.service')).json.desiredState).toBe('loaded');
    // new options replace the file
    const v2 = opts([['Service', 'ExecStart', '/bin/sleep 1000']]);
    expect((await request('PUT', '/fleet/v1/units/web.service', { desiredState: 'loaded', options: v2 })).status).toBe(204);
    expect((await request('GET', '/fleet/v1/units/web.service')).json.options).toEqual(v2);

    expect((await request('DELETE', '/fleet/v1/units/web.service')).status).toBe(204);
    const gone = await request('GET', '/fleet/v1/units/web.service');
    expect(gone.status).toBe(404);
    expect(gone.json).toEqual({ error: { code: 404, message: 'unit web.service does not exist' } });
    expect((await request('DELETE', '/fleet/v1/units/web.service')).json).toEqual({ error: { code: 404, message: 'unit web.service does not exist' } });
  });

  it('refuses what fleet refused: 409 without options, 400 for a template not inactive, a name mismatch, bad options', async () => {
    expect(await request('PUT', '/fleet/v1/units/none.service', { desiredState: 'launched' })).toMatchObject({
      status: 409,
      json: { error: { code: 409, message: 'unit none.service does not exist and options field empty' } },
    });
    const tpl = await request('PUT', '/fleet/v1/units/tpl@.service', { desiredState: 'launched', options: SERVICE });
    expect(tpl.status).toBe(400);
    expect(tpl.json.error.message).toMatch(/template/);
    expect((await request('PUT', '/fleet/v1/units/tpl@.service', { desiredState: 'inactive', options: SERVICE })).status).toBe(201);
    expect((await request('PUT', '/fleet/v1/units/tpl@1.service', { desiredState: 'loaded', options: SERVICE })).status).toBe(201);
    expect((await request('PUT', '/fleet/v1/units/a.service', { name: 'b.service', desiredState: 'inactive', options: SERVICE })).json.error.message).toMatch(
      /differs from the name in the URL/,
    );
    // src/unit's own message for a refused combination
    const bad = await request('PUT', '/fleet/v1/units/bad.service', {
      desiredState: 'inactive',
      options: [...SERVICE, ...opts([['X-Fleet', 'MachineID', 'abc'], ['X-Fleet', 'Global', 'true']])],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/Global/);
    for (const body of [
      { desiredState: 'running', options: SERVICE },
      {},
      { desiredState: 'inactive', options: SERVICE, colour: 'red' },
      { desiredState: 'inactive', options: [{ section: 'Service', name: 'ExecStart', value: '/bin/x', extra: 1 }] },
      { desiredState: 'inactive', options: [{ section: 'Service]\n[Evil', name: 'ExecStart', value: '/bin/x' }] },
      { desiredState: 'inactive', options: [{ section: 'Service', name: 'ExecStart', value: '/bin/x\nExecStartPre=/bin/evil' }] },
      { desiredState: 'inactive', options: 'ExecStart=/bin/x' },
      ['not', 'an', 'object'],
    ]) {
      const r = await request('PUT', '/fleet/v1/units/c.service', body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      expect(r.json.error.code).toBe(400);
    }
    expect((await request('GET', '/fleet/v1/units/c.service')).status).toBe(404);
  });

  it('writes a unit inactive when options come without desiredState, as fleet did (fleetctl submit and --replace)', async () => {
    expect((await request('PUT', '/fleet/v1/units/sub.service', { name: 'sub.service', options: SERVICE })).status).toBe(201);
    expect((await request('GET', '/fleet/v1/units/sub.service')).json).toMatchObject({ desiredState: 'inactive', options: SERVICE });
    expect((await request('PUT', '/fleet/v1/units/sub.service', { desiredState: 'launched' })).status).toBe(204);
    const v2 = opts([['Service', 'ExecStart', '/bin/sleep 2000']]);
    expect((await request('PUT', '/fleet/v1/units/sub.service', { options: v2 })).status).toBe(204);
    expect((await request('GET', '/fleet/v1/units/sub.service')).json).toMatchObject({ desiredState: 'inactive', options: v2 });
    expect((await request('DELETE', '/fleet/v1/units/sub.service')).status).toBe(204);
  });

  it('refuses an unknown [X-Fleet] key with a suggestion unless ?allowUnknownKeys=true; takes escaped names', async () => {
    const body = { desiredState: 'inactive', options: [...SERVICE, ...opts([['X-Fleet', 'MachineMetdata', 'role=db']])] };
    const typo = await request('PUT', '/fleet/v1/units/typo.service', body);
    expect(typo.status).toBe(400);
    expect(typo.json.error.message).toBe('typo.service: unknown [X-Fleet] key MachineMetdata=; did you mean MachineMetadata=?');
    expect((await request('PUT', '/fleet/v1/units/typo.service?allowUnknownKeys=maybe', body)).status).toBe(400);
    expect((await request('GET', '/fleet/v1/units/typo.service')).status).toBe(404);
    expect((await request('PUT', '/fleet/v1/units/typo.service?allowUnknownKeys=true', body)).status).toBe(201);
    const escaped = encodeURIComponent('x\\x2dy.service');
    expect((await request('PUT', `/fleet/v1/units/${escaped}`, { desiredState: 'inactive', options: SERVICE })).status).toBe(201);
    expect((await request('GET', `/fleet/v1/units/${escaped}`)).json).toMatchObject({ name: 'x\\x2dy.service' });
    expect((await request('DELETE', `/fleet/v1/units/${escaped}`)).status).toBe(204);
  });

  it('refuses bad names, non-JSON bodies, oversize bodies, wrong methods and unknown paths', async () => {
    for (const p of ['/fleet/v1/units/..%2F..%2Fetc%2Fpasswd', '/fleet/v1/units/..', '/fleet/v1/units/a%00.service', '/fleet/v1/units/%ZZ', '/fleet/v1/units/@x.service', '/fleet/v1/units/']) {
      const r = await request('GET', p);
      expect({ p, status: r.status }).toEqual({ p, status: 400 });
      expect(r.json.error.code).toBe(400);
    }
    expect((await request('PUT', '/fleet/v1/units/x.service', 'desiredState=inactive', { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await request('PUT', '/fleet/v1/units/x.service', '{"desiredState":')).status).toBe(400);
    expect((await request('PUT', '/fleet/v1/units/x.service', '')).status).toBe(400);
    const big = { desiredState: 'inactive', options: [{ section: 'Service', name: 'ExecStart', value: 'x'.repeat(1024 * 1024) }] };
    const over = await request('PUT', '/fleet/v1/units/x.service', big);
    expect(over.status).toBe(413);
    expect(over.json.error.message).toMatch(/larger than 1048576 bytes/);
    const wrong = await request('POST', '/fleet/v1/units/x.service', {});
    expect(wrong.status).toBe(405);
    expect(wrong.headers['allow']).toBe('GET, PUT, DELETE');
    expect((await request('DELETE', '/fleet/v1/units')).status).toBe(405);
    expect((await request('GET', '/fleet/v2/units')).status).toBe(404);
    expect((await request('GET', '/fleet/v1/units/a.service/b')).status).toBe(404);
    expect((await request('GET', '/')).json).toEqual({ error: { code: 404, message: 'no such resource: /' } });
    expect((await request('GET', '/fleet/v1/units?colour=red')).status).toBe(400);
    expect((await request('GET', '/fleet/v1/units', '{}')).status).toBe(400);
    expect((await request('GET', '/fleet/v1/units/x.service')).status).toBe(404);
  });

  it('pages through units with nextPageToken, and refuses a bad token', async () => {
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'].map((n) => `${n}.service`);
    for (const n of names) expect((await request('PUT', `/fleet/v1/units/${n}`, { desiredState: 'inactive', options: SERVICE })).status).toBe(201);
    const seen: string[] = [];
    let url = '/fleet/v1/units?pageSize=2';
    let pages = 0;
    for (;;) {
      const r = await request('GET', url);
      expect(r.status).toBe(200);
      pages++;
      seen.push(...r.json.units.map((u: { name: string }) => u.name));
      if (!r.json.nextPageToken) break;
      url = `/fleet/v1/units?pageSize=2&nextPageToken=${r.json.nextPageToken}`;
    }
    expect(seen.filter((n) => n.startsWith('p'))).toEqual(names);
    expect(pages).toBe(Math.ceil(seen.length / 2));
    expect((await request('GET', '/fleet/v1/units?nextPageToken=bogus')).json).toEqual({
      error: { code: 400, message: 'invalid value of nextPageToken query parameter' },
    });
    expect((await request('GET', '/fleet/v1/units?pageSize=0')).status).toBe(400);
    expect((await request('GET', '/fleet/v1/units?pageSize=100001')).status).toBe(400);
    for (const n of names) expect((await request('DELETE', `/fleet/v1/units/${n}`)).status).toBe(204);
  });

  it('lists unit states filtered by machine and unit', async () => {
    expect((await request('PUT', '/fleet/v1/units/st.service', { desiredState: 'launched', options: SERVICE })).status).toBe(201);
    let states: Res | undefined;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      states = await request('GET', '/fleet/v1/state?unitName=st.service');
      if (states.json.states.length > 0 && states.json.states[0].systemdActiveState === 'active') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(states!.json.states).toEqual([
      {
        name: 'st.service',
        hash: expect.stringMatching(/^[0-9a-f]{40}$/),
        machineID: machineId,
        systemdLoadState: 'loaded',
        systemdActiveState: 'active',
        systemdSubState: 'running',
        since: expect.any(String),
      },
    ]);
    expect((await request('GET', `/fleet/v1/state?machineID=${machineId}`)).json.states.map((s: { name: string }) => s.name)).toContain('st.service');
    expect((await request('GET', '/fleet/v1/state?machineID=nobody')).json).toEqual({ states: [] });
    expect((await request('GET', '/fleet/v1/state?unitName=..%2Fx')).status).toBe(400);
    expect((await request('DELETE', '/fleet/v1/units/st.service')).status).toBe(204);
  });

  it('lists machines and edits their metadata with JSON Patch', async () => {
    const list = await request('GET', '/fleet/v1/machines');
    expect(list.json.machines).toEqual([expect.objectContaining({ id: machineId, primaryIP: '127.0.0.9', metadata: { role: 'web', zone: 'a' } })]);
    const patch = await request('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${machineId}/metadata/disk`, value: 'ssd' },
      { op: 'replace', path: `/${machineId}/metadata/zone`, value: 'b' },
      { op: 'add', path: '/0000other/metadata/x', value: 'y' },
    ]);
    expect(patch.status).toBe(204);
    expect((await request('GET', '/fleet/v1/machines')).json.machines[0].metadata).toEqual({ role: 'web', zone: 'b', disk: 'ssd' });
    expect((await request('PATCH', '/fleet/v1/machines', [{ op: 'remove', path: `/${machineId}/metadata/disk` }])).status).toBe(204);
    expect((await request('GET', '/fleet/v1/machines')).json.machines[0].metadata).toEqual({ role: 'web', zone: 'b' });
    for (const body of [
      { op: 'add', path: `/${machineId}/metadata/k`, value: 'v' },
      [{ op: 'move', path: `/${machineId}/metadata/k`, from: '/x' }],
      [{ op: 'add', path: `/${machineId}/metadata/k` }],
      [{ op: 'add', path: `/${machineId}/metadata/k`, value: 3 }],
      [{ op: 'add', path: `/${machineId}/labels/k`, value: 'v' }],
      [{ op: 'add', path: `/../metadata/k`, value: 'v' }],
      [{ op: 'add', path: `/${machineId}/metadata/k/j`, value: 'v' }],
      [{ op: 'remove', path: `/${machineId}/metadata/zone`, value: 'v' }],
      [{ op: 'add', path: `/${machineId}/metadata/k`, value: 'v', extra: true }],
    ]) {
      const r = await request('PATCH', '/fleet/v1/machines', body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
    }
    expect((await request('PATCH', '/fleet/v1/machines', 'nope', { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await request('PUT', '/fleet/v1/machines', [])).status).toBe(405);
    expect((await request('GET', '/fleet/v1/machines')).json.machines[0].metadata).toEqual({ role: 'web', zone: 'b' });
  });

  it('refuses to remove metadata that comes from the configuration (409, nothing applied)', async () => {
    const metadata = async (): Promise<unknown> => (await request('GET', '/fleet/v1/machines')).json.machines[0].metadata;
    // Removing an override set through the API brings back the configured value.
    await request('PATCH', '/fleet/v1/machines', [{ op: 'replace', path: `/${machineId}/metadata/zone`, value: 'c' }]);
    expect(await metadata()).toMatchObject({ zone: 'c' });
    expect((await request('PATCH', '/fleet/v1/machines', [{ op: 'remove', path: `/${machineId}/metadata/zone` }])).status).toBe(204);
    expect(await metadata()).toEqual({ role: 'web', zone: 'a' });
    // Removing the configured value itself would change nothing: 409, saying why, and no operation applied.
    const r = await request('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${machineId}/metadata/disk`, value: 'hdd' },
      { op: 'remove', path: `/${machineId}/metadata/role` },
    ]);
    expect(r.status).toBe(409);
    expect(r.json.error.message).toMatch(/operation 1: metadata "role"="web" of machine .* comes from its configuration .* not removed/);
    expect(await metadata()).toEqual({ role: 'web', zone: 'a' });
    // Set and removed in one patch: the override goes, the configured value stays.
    const both = [
      { op: 'add', path: `/${machineId}/metadata/role`, value: 'db' },
      { op: 'remove', path: `/${machineId}/metadata/role` },
    ];
    expect((await request('PATCH', '/fleet/v1/machines', both)).status).toBe(204);
    expect(await metadata()).toEqual({ role: 'web', zone: 'a' });
  });

  it('serves /metrics in the Prometheus text format', async () => {
    expect((await request('PUT', '/fleet/v1/units/m.service', { desiredState: 'launched', options: SERVICE })).status).toBe(201);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const text = (await request('GET', '/metrics')).text;
      if (/^flotilla_scheduling_latency_seconds_count [1-9]/m.test(text) && /^flotilla_agent_units\{active_state="active"\} [1-9]/m.test(text)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await request('GET', '/metrics');
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const re of [
      /^# TYPE flotilla_units gauge$/m,
      /^flotilla_units\{desired_state="launched"\} [1-9]/m,
      /^flotilla_units_current\{current_state="launched"\} [1-9]/m,
      /^flotilla_units_pending 0$/m,
      /^# TYPE flotilla_scheduling_latency_seconds histogram$/m,
      /^flotilla_scheduling_latency_seconds_bucket\{le="\+Inf"\} [1-9]/m,
      /^# TYPE flotilla_engine_reconcile_duration_seconds histogram$/m,
      /^flotilla_engine_reconcile_duration_seconds_count [1-9]/m,
      /^# TYPE flotilla_etcd_request_errors_total counter$/m,
      /^flotilla_etcd_requests_total [1-9]/m,
      new RegExp(`^flotilla_engine_leader\\{id="${machineId}"\\} 1$`, 'm'),
      /^flotilla_engine_is_leader 1$/m,
      /^flotilla_agent_units\{active_state="active"\} [1-9]/m,
      /^flotilla_machines 1$/m,
      /^flotilla_api_requests_total\{method="PUT",code="201"\} [1-9]/m,
    ]) {
      expect(r.text).toMatch(re);
    }
    expect((await request('POST', '/metrics', {})).status).toBe(405);
  });
});
