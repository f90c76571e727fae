// The discovery library against a real etcd: announce, resolve, watch,
// withdrawal, expiry of a killed announcer's endpoint, a lease lost and
// announced again, an etcd restart, and etcd authentication.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../cli/flotctl/run.js';
import { captureIO } from '../../src/ctl/io.js';
import { Discovery, type EndpointChange } from '../../src/discovery/index.js';
import { Registry, RegistryAuthError } from '../../src/registry/index.js';
import { startEtcd, useEtcd } from '../helpers/etcd.js';
import { until } from '../helpers/registry.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function client(endpoints: string[], prefix: string, extra: Partial<Parameters<typeof Discovery.connect>[0]> = {}): Discovery {
  const d = Discovery.connect({ endpoints, prefix, requestTimeoutMs: 5_000, ...extra });
  cleanups.push(() => d.close());
  return d;
}

const newPrefix = (): string => `/t-${randomBytes(4).toString('hex')}/`;

/** `flotctl announce` in its own process (the sidekick's command), killed by PID when the test ends. */
function announcer(endpoints: string[], prefix: string, args: string[]): { child: ChildProcess; output: () => string; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'cli/flotctl.ts'), '--endpoint', endpoints.join(','), '--etcd-key-prefix', prefix, 'announce', ...args],
    { cwd: root, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => {
      if (/announced /.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`flotctl announce exited (${code}): ${out}`)));
  });
  return { child, output: () => out, ready };
}

describe('discovery library', () => {
  const etcd = useEtcd();

  it('announces an endpoint readable with etcdctl, resolves it, and withdraws it at once on stop', async () => {
    const prefix = newPrefix();
    const d = client(etcd.endpoints, prefix);
    const a = await d.announce('web', { host: '127.0.0.1', port: 8080, attributes: { zone: 'a' }, unit: 'web@8080.service' }, { ttl: 5 });
    expect(a.key).toBe(`${prefix}services/web/127.0.0.1:8080`);
    const raw = await d.registry.getRaw(a.key);
    expect(JSON.parse(raw!.value)).toEqual({
      v: 1,
      service: 'web',
      instance: '127.0.0.1:8080',
      host: '127.0.0.1',
      port: 8080,
      attributes: { zone: 'a' },
      unit: 'web@8080.service',
    });
    expect(raw!.lease).toBe(a.leaseId);
    const w = await d.watch('web');
    const list = await d.resolve('web');
    expect(list.map((e) => `${e.host}:${e.port}`)).toEqual(['127.0.0.1:8080']);
    expect(await d.resolve('db')).toEqual([]);
    await a.stop();
    expect(await d.registry.getRaw(a.key)).toBeUndefined();
    await until(() => w.endpoints.length === 0, 5_000, 'the cache to drop the endpoint');
    expect(await d.resolve('web')).toEqual([]);
  });

  it('refuses bad names, ports and TTLs', async () => {
    const d = client(etcd.endpoints, newPrefix());
    await expect(d.announce('Web_1', { host: '127.0.0.1', port: 1 })).rejects.toThrow(/DNS label/);
    await expect(d.announce('web', { host: '127.0.0.1', port: 70000 })).rejects.toThrow(/port/);
    await expect(d.announce('web', { host: '127.0.0.1', port: 80, instance: 'a/b' })).rejects.toThrow(/instance/);
    await expect(d.announce('web', { host: '127.0.0.1', port: 80 }, { ttl: 1 })).rejects.toThrow(/ttl/);
  });

  it('watch emits additions, updates and removals with the current endpoints', async () => {
    const prefix = newPrefix();
    const d = client(etcd.endpoints, prefix);
    const other = client(etcd.endpoints, prefix);
    const w = await d.watch('api');
    const changes: EndpointChange[] = [];
    w.on('change', (c) => changes.push(c));
    expect(w.endpoints).toEqual([]);
    const a1 = await other.announce('api', { host: '127.0.0.2', port: 9000 }, { ttl: 5 });
    const a2 = await other.announce('api', { host: '127.0.0.3', port: 9000, instance: 'b' }, { ttl: 5 });
    await other.announce('db', { host: '127.0.0.4', port: 5432 }, { ttl: 5 });
    await until(() => w.endpoints.length === 2, 5_000, 'two endpoints');
    expect(w.endpoints.map((e) => e.instance)).toEqual(['127.0.0.2:9000', 'b']);
    await a1.stop();
    await until(() => w.endpoints.length === 1, 5_000, 'one endpoint');
    await a2.stop();
    await until(() => w.endpoints.length === 0, 5_000, 'no endpoint');
    const flat = changes.map((c) => [...c.added.map((e) => `+${e.instance}`), ...c.removed.map((e) => `-${e.instance}`)]).flat();
    expect(flat).toEqual(['+127.0.0.2:9000', '+b', '-127.0.0.2:9000', '-b']);
    expect(changes.every((c) => c.service === 'api')).toBe(true);
    w.close();
  });

  it('a killed announcer process: its endpoint is gone within the TTL (+1 s); a stopped one withdraws at once', async () => {
    const prefix = newPrefix();
    const d = client(etcd.endpoints, prefix);
    const w = await d.watch('web');
    const killed = announcer(etcd.endpoints, prefix, ['web', '127.0.0.1:8081', '--ttl', '3', '--attr', 'zone=b', '--unit', 'web@8081.service']);
    const stopped = announcer(etcd.endpoints, prefix, ['web', '127.0.0.1:8082', '--ttl', '3']);
    await Promise.all([killed.ready, stopped.ready]);
    await until(() => w.endpoints.length === 2, 5_000, 'both endpoints');
    expect(w.endpoints.find((e) => e.port === 8081)?.attributes).toEqual({ zone: 'b' });
    // The lease is printed as etcdctl prints it (16 hex digits), so `etcdctl lease timetolive` takes it.
    const printed = /lease ([0-9a-f]{16})\)/.exec(stopped.output())?.[1];
    expect(printed, stopped.output()).toBeDefined();
    const raw = await d.registry.getRaw(`${prefix}services/web/127.0.0.1:8082`);
    expect(BigInt(`0x${printed!}`).toString()).toBe(raw!.lease);
    // services -o json: one object, as every flotctl JSON output.
    const io = captureIO({ env: { FLOTCTL_ENDPOINT: etcd.endpoints.join(','), FLOTCTL_ETCD_KEY_PREFIX: prefix } });
    expect(await runFlotctl(['services', 'web', '-o', 'json'], io)).toBe(0);
    expect(JSON.parse(io.stdout)).toEqual({
      endpoints: [
        { service: 'web', instance: '127.0.0.1:8081', host: '127.0.0.1', port: 8081, attributes: { zone: 'b' }, unit: 'web@8081.service', machine: null },
        { service: 'web', instance: '127.0.0.1:8082', host: '127.0.0.1', port: 8082, attributes: {}, unit: null, machine: null },
      ],
    });

    let gone = 0;
    w.on('change', (c) => {
      if (c.removed.some((e) => e.port === 8081)) gone = Date.now();
    });
    const killedAt = Date.now();
    killed.child.kill('SIGKILL');
    await until(() => gone > 0, 8_000, 'the killed announcer\'s endpoint to expire');
    expect(gone - killedAt).toBeLessThanOrEqual(3_000 + 1_000);

    const stopAt = Date.now();
    const exited = new Promise<number | null>((r) => stopped.child.once('exit', r));
    stopped.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until(() => w.endpoints.length === 0, 2_000, 'withdrawal');
    expect(Date.now() - stopAt).toBeLessThan(2_000);
    expect(stopped.output()).toMatch(/withdrawn web\/127.0.0.1:8082 \(SIGTERM\)/);
  });

  it('announces again under a new lease when the lease is lost', async () => {
    const prefix = newPrefix();
    const d = client(etcd.endpoints, prefix);
    const a = await d.announce('web', { host: '127.0.0.1', port: 8080 }, { ttl: 3 });
    const first = a.leaseId!;
    const again = new Promise<string>((r) => a.once('announced', r));
    // someone revokes the lease (as etcd does when it expires)
    await d.registry.client.leaseClient.leaseRevoke({ ID: first });
    const second = await again;
    expect(second).not.toBe(first);
    expect(a.announcements).toBe(2);
    const raw = await d.registry.getRaw(a.key);
    expect(raw?.lease).toBe(second);
  });

  it('keeps the endpoint and the watch across an etcd restart', async () => {
    const cluster = await startEtcd();
    cleanups.push(() => cluster.close());
    const prefix = newPrefix();
    const d = client(cluster.endpoints, prefix);
    const other = client(cluster.endpoints, prefix);
    const a = await d.announce('web', { host: '127.0.0.1', port: 8080 }, { ttl: 3 });
    const w = await other.watch('web');
    await until(() => w.endpoints.length === 1, 5_000, 'the endpoint');
    await cluster.restartMember(0);
    // a change after the restart reaches the watch
    const b = await other.announce('web', { host: '127.0.0.2', port: 8080 }, { ttl: 3 });
    await until(() => w.endpoints.length === 2, 15_000, 'the watch to see the endpoint announced after the restart');
    // the first endpoint outlives several TTLs after the restart: still kept alive
    await new Promise((r) => setTimeout(r, 7_000));
    expect((await other.registry.listEndpoints('web')).map((e) => e.instance).sort()).toEqual(['127.0.0.1:8080', '127.0.0.2:8080']);
    expect(w.endpoints.length).toBe(2);
    expect(a.isStopped).toBe(false);
    await b.stop();
    await until(() => w.endpoints.length === 1, 5_000, 'withdrawal after the restart');
  });

  it('works against an etcd with authentication on', async () => {
    const cluster = await startEtcd();
    cleanups.push(() => cluster.close());
    const admin = Registry.connect({ endpoints: cluster.endpoints, requestTimeoutMs: 5_000 });
    await admin.client.role('root').create();
    await admin.client.user('root').create('rootpw');
    await admin.client.user('root').addRole('root');
    await admin.client.auth.authEnable({});
    admin.close();

    const prefix = newPrefix();
    const d = client(cluster.endpoints, prefix, { username: 'root', password: 'rootpw' });
    const a = await d.announce('web', { host: '127.0.0.1', port: 8080 }, { ttl: 3 });
    expect((await d.resolve('web')).length).toBe(1);
    await a.stop();

    const anonymous = client(cluster.endpoints, prefix);
    await expect(anonymous.announce('web', { host: '127.0.0.1', port: 8080 }, { ttl: 3 })).rejects.toThrow(/etcd at .* requires authentication; give a user name and password/);
    const wrong = client(cluster.endpoints, prefix, { username: 'root', password: 'nope' });
    await expect(wrong.resolve('web')).rejects.toBeInstanceOf(RegistryAuthError);
  });
});
