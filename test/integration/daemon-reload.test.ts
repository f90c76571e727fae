// flotillad's reload (what SIGHUP runs) against a real etcd: every changed
// option it does not apply is logged as a JSON line on the daemon's stdout,
// the live ones are applied (metadata reaches the machine record in etcd).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startDaemon } from '../../src/daemon.js';
import { useEtcd } from '../helpers/etcd.js';
import { FakeSystemd } from '../helpers/fake-systemd.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface LogLine {
  level: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

describe('flotillad reload', () => {
  const etcd = useEtcd();

  it('logs agent_ttl, engine_ttl and api_* changes as needing a restart, as JSON, and applies metadata', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const id = randomBytes(16).toString('hex');
    writeFileSync(path.join(dir, 'machine-id'), `${id}\n`);
    const conf = path.join(dir, 'flotilla.conf');
    const base = [
      `etcd_servers=${etcd.endpoints.join(',')}`,
      `etcd_key_prefix=/t-${randomBytes(4).toString('hex')}/`,
      `machine_id_file=${path.join(dir, 'machine-id')}`,
      `api_socket=${path.join(dir, 'api.sock')}`,
      'disable_engine=true',
    ].join('\n');
    writeFileSync(conf, `${base}\nagent_ttl=10\nengine_ttl=5\nmetadata=role=web\n`);

    // The daemon's own logger: JSON lines on stdout (src/log.ts).
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    cleanups.push(() => spy.mockRestore());
    const daemon = await startDaemon({ config: { file: conf, env: {} }, systemd: new FakeSystemd() });
    cleanups.push(() => daemon.stop({ shutdown: 'keep' }));
    const logged = (): LogLine[] =>
      lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine).filter((l) => l.component === 'flotillad');

    writeFileSync(conf, `${base}\nagent_ttl=3\nengine_ttl=4\nmetadata=role=db\napi_listen=127.0.0.1:0\napi_insecure=true\n`);
    lines.length = 0;
    await daemon.reload();

    const restart = logged().filter((l) => l.msg === 'option changed; it takes effect after a restart');
    expect(restart.map((l) => [l.level, l['option']])).toEqual([
      ['warn', 'agent_ttl'],
      ['warn', 'api_insecure'],
      ['warn', 'api_listen'],
      ['warn', 'engine_ttl'],
    ]);
    expect(logged().find((l) => l.msg === 'configuration reloaded')).toMatchObject({
      level: 'info',
      metadata: '{"role":"db"}',
      applied: 'metadata',
      unapplied: 'agent_ttl,api_insecure,api_listen,engine_ttl',
    });
    expect((await daemon.registry.listMachines()).find((m) => m.id === id)?.metadata).toEqual({ role: 'db' });
    expect(daemon.api?.tcpAddress).toBeUndefined();

    // Still not applied at the next reload: reported again.
    lines.length = 0;
    await daemon.reload();
    expect(logged().filter((l) => l.msg === 'option changed; it takes effect after a restart').map((l) => l['option'])).toEqual([
      'agent_ttl',
      'api_insecure',
      'api_listen',
      'engine_ttl',
    ]);
  });
});
