// The API's cluster view is lazy (docs/architecture.md, invariant 3): a
// daemon whose API is not used receives no watch events for other machines'
// units; the first fleet request lists the cluster and answers correctly;
// after an idle period the view is dropped and the events stop again.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/index.js';
import { startDaemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { watchEventsReceived, type LeaderToken, type Registry, type RegistryLease } from '../../src/registry/index.js';
import { useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';
import { testRegistry, unitRecord, until } from '../helpers/registry.js';

const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function get(socketPath: string, urlPath: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'GET', path: urlPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const OTHER = 'other-machine';
const others = Array.from({ length: 40 }, (_, i) => `other-${i}.service`);

/** Another machine's units, placed there and reported by it. */
async function otherMachine(writer: Registry): Promise<{ lease: RegistryLease; token: LeaderToken }> {
  const lease = await writer.grantLease(30);
  await writer.createUnits(
    others.map((n) => unitRecord(n)),
    { desiredState: 'launched' },
  );
  const token = (await writer.tryLead('test-engine', lease))!;
  await writer.applyPlan(
    token,
    others.map((n) => ({ type: 'place' as const, decision: { unit: n, machine: OTHER, hash: unitRecord(n).hash, state: 'launched' as const } })),
  );
  return { lease, token };
}

/** One round of churn on the other machine's units: every state changes. */
async function churn(writer: Registry, lease: RegistryLease, round: number): Promise<void> {
  await writer.publishStates(
    others.map((n) => ({ unit: n, machine: OTHER, hash: unitRecord(n).hash, loadState: 'loaded', activeState: 'active', subState: `running-${round}`, since: '' })),
    lease,
  );
}

describe('the API cache is built on first use', () => {
  it('a daemon receives no events for other machines until its API is used, then answers from a full view', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-lazy-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const id = randomBytes(16).toString('hex');
    const prefix = `/t-${randomBytes(4).toString('hex')}/`;
    const socketPath = path.join(dir, 'api.sock');
    writeFileSync(path.join(dir, 'machine-id'), `${id}\n`);
    writeFileSync(path.join(dir, 'flotilla.conf'), '');
    const writer = testRegistry(etcd.endpoints, { prefix });
    cleanups.push(() => writer.close());
    await writer.ensureSchema('test');
    const { lease, token } = await otherMachine(writer);
    const daemon = await startDaemon({
      systemd: new FakeSystemd(),
      log: createLogger('flotillad', { level: 'warn', write: () => undefined }),
      config: {
        file: path.join(dir, 'flotilla.conf'),
        env: {},
        flags: {
          etcd_servers: etcd.endpoints.join(','),
          etcd_key_prefix: prefix,
          machine_id_file: path.join(dir, 'machine-id'),
          unit_dir: path.join(dir, 'units'),
          public_ip: '127.0.0.9',
          disable_engine: 'true',
          api_socket: socketPath,
        },
      },
    });
    cleanups.push(() => daemon.stop({ shutdown: 'keep' }));
    const received = (): number => watchEventsReceived(daemon.registry);

    // Local routes and a scrape do not start the cluster view.
    expect((await get(socketPath, '/flotilla/v1/units/other-0.service/status')).status).toBe(404);
    const scrape = await get(socketPath, '/metrics');
    expect(scrape.text).toMatch(/^flotilla_watch_events_received_total \d+$/m);
    expect(daemon.api!.cache.starts).toBe(0);

    // Churn on the other machine, then one decision for this one: the
    // daemon hears of the latter only.
    const before = received();
    for (let round = 0; round < 3; round++) await churn(writer, lease, round);
    await writer.createUnit(unitRecord('mine.service'), { desiredState: 'launched' });
    await writer.applyPlan(token, [{ type: 'place', decision: { unit: 'mine.service', machine: id, hash: unitRecord('mine.service').hash, state: 'launched' } }]);
    await until(() => received() > before, 5_000, 'the decision for this machine');
    await sleep(300);
    expect(received() - before).toBe(1);

    // First use: the view is listed, and answers correctly.
    const list = await get(socketPath, '/fleet/v1/units?pageSize=1000');
    expect(list.status).toBe(200);
    const units = (JSON.parse(list.text) as { units: { name: string; currentState: string; machineID?: string }[] }).units;
    expect(units.map((u) => u.name).sort()).toEqual([...others, 'mine.service'].sort());
    expect(units.find((u) => u.name === 'other-7.service')).toMatchObject({ currentState: 'launched', machineID: OTHER });
    expect(daemon.api!.cache.starts).toBe(1);
    // ... and from then on it follows the whole cluster.
    const during = received();
    await churn(writer, lease, 9);
    await until(() => received() - during >= others.length, 5_000, 'the churn to reach the view');
    expect((await get(socketPath, '/metrics')).text).toMatch(/^flotilla_machines \d+$/m);
  });

  it('drops the view after an idle period and builds it again on the next request', async () => {
    const prefix = `/t-${randomBytes(4).toString('hex')}/`;
    const writer = testRegistry(etcd.endpoints, { prefix });
    cleanups.push(() => writer.close());
    await writer.ensureSchema('test');
    const { lease } = await otherMachine(writer);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-lazy-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'api.sock');
    const registry = testRegistry(etcd.endpoints, { prefix });
    cleanups.push(() => registry.close());
    const server = new ApiServer({ registry, socketPath, cacheIdleMs: 400 });
    await server.start();
    cleanups.push(() => server.stop());

    expect((await get(socketPath, '/fleet/v1/state?pageSize=1000')).status).toBe(200);
    expect(server.cache.active).toBe(true);
    await until(() => !server.cache.active, 5_000, 'the idle view to be dropped');
    const before = watchEventsReceived(registry);
    await churn(writer, lease, 1);
    await sleep(300);
    expect(watchEventsReceived(registry)).toBe(before);

    // The next request lists afresh: it sees the churn it did not watch.
    const r = await get(socketPath, '/fleet/v1/state?pageSize=1000');
    expect(r.status).toBe(200);
    const states = (JSON.parse(r.text) as { states: { name: string; systemdSubState: string }[] }).states;
    expect(states).toHaveLength(others.length);
    expect(states.every((s) => s.systemdSubState === 'running-1')).toBe(true);
    expect(server.cache.starts).toBe(2);
  });
});
