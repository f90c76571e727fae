// fleetctl v1.0.0 against flotillad's API without fleetctl: the requests it
// sent during a whole lifecycle (recorded once from the real binary, in
// fixtures/fleetctl-v1.0.0-lifecycle.json) are replayed byte for byte on a
// real daemon's socket, and each answer is checked for what fleetctl reads
// from it. A poll fleetctl repeats until the answer changes is repeated here
// the same way, with a deadline.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { useEtcd } from '../helpers/etcd.js';

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** fleetctl repeats this request until the answer matches. */
  until?: boolean;
  expect: { status: number; json?: unknown };
}
interface Fixture {
  steps: { command: string; requests: Recorded[] }[];
}

interface Res {
  status: number;
  json: unknown;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/fleetctl-v1.0.0-lifecycle.json', import.meta.url), 'utf8')) as Fixture;
const etcd = useEtcd();
const machineId = randomBytes(16).toString('hex');
const IP = '127.0.0.9';
let dir: string;
let socketPath: string;
let daemon: DaemonHandle;

function send(r: Recorded): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: r.method, path: r.path, headers: r.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : (JSON.parse(text) as unknown);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** The expectation with this daemon's machine ID and IP in place of $MACHINE and $IP. */
function bind(v: unknown): unknown {
  if (v === '$MACHINE') return machineId;
  if (v === '$IP') return IP;
  if (Array.isArray(v)) return v.map(bind);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bind(x)]));
  return v;
}

function check(res: Res, want: Recorded['expect']): void {
  expect(res.status).toBe(want.status);
  if (want.json !== undefined) expect(res.json).toMatchObject(bind(want.json) as object);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetctl-'));
  socketPath = path.join(dir, 'flotilla.sock');
  writeFileSync(path.join(dir, 'machine-id'), `${machineId}\n`);
  writeFileSync(path.join(dir, 'flotilla.conf'), '');
  daemon = await startDaemon({
    systemd: new FakeSystemd(),
    log: createLogger('flotillad', { level: 'error', write: () => undefined }),
    config: {
      file: path.join(dir, 'flotilla.conf'),
      env: {},
      flags: {
        etcd_servers: etcd.endpoints.join(','),
        etcd_key_prefix: `/t-${randomBytes(4).toString('hex')}/`,
        machine_id_file: path.join(dir, 'machine-id'),
        unit_dir: path.join(dir, 'units'),
        public_ip: IP,
        metadata: 'role=web',
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

describe('fleetctl v1.0.0 traffic replayed against the API', () => {
  it('answers every request of a whole lifecycle as fleetctl needs', async () => {
    for (const step of fixture.steps) {
      for (const r of step.requests) {
        const what = `fleetctl ${step.command}: ${r.method} ${r.path}`;
        let res = await send(r);
        const deadline = Date.now() + 20_000;
        while (r.until && Date.now() < deadline) {
          try {
            check(res, r.expect);
            break;
          } catch {
            await sleep(100);
            res = await send(r);
          }
        }
        try {
          check(res, r.expect);
        } catch (err) {
          throw new Error(`${what} answered ${res.status} ${JSON.stringify(res.json)}\n${(err as Error).message}`, { cause: err });
        }
      }
    }
  });

  it("accepts googleapi's system parameters, refuses alt other than json", async () => {
    const h = { 'User-Agent': 'google-api-go-client/0.5' };
    const list = await send({ method: 'GET', path: '/fleet/v1/machines?alt=json&prettyPrint=false&fields=machines(id,primaryIP)&quotaUser=q', headers: h, expect: { status: 200 } });
    expect(list).toMatchObject({ status: 200, json: { machines: [{ id: machineId, primaryIP: IP }] } });
    const media = await send({ method: 'GET', path: '/fleet/v1/units?alt=media', headers: h, expect: { status: 400 } });
    expect(media).toMatchObject({ status: 400, json: { error: { code: 400, message: 'alt=media is not supported: this API answers JSON only (alt=json)' } } });
    expect((await send({ method: 'GET', path: '/fleet/v1/units?alt=json&alt=json', headers: h, expect: { status: 400 } })).status).toBe(400);
    // only on fleet's resources: /metrics knows no such parameter
    expect((await send({ method: 'GET', path: '/metrics?alt=json', headers: h, expect: { status: 400 } })).status).toBe(400);
    // a unit no machine reports has no state
    const none = await send({ method: 'GET', path: '/fleet/v1/state/none.service?alt=json', headers: h, expect: { status: 404 } });
    expect(none).toMatchObject({ status: 404, json: { error: { code: 404 } } });
    expect((await send({ method: 'PUT', path: '/fleet/v1/state/none.service', headers: h, expect: { status: 405 } })).status).toBe(405);
  });
});
