import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig, seconds } from '../../../src/config/config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(text: string): string {
  const f = path.join(dir, `c${Math.random().toString(16).slice(2)}.conf`);
  writeFileSync(f, text);
  return f;
}

describe('daemon configuration', () => {
  it('has defaults when the default file is missing', () => {
    expect(loadConfig({ env: {}, file: undefined })).toMatchObject({ etcdKeyPrefix: DEFAULTS.etcdKeyPrefix, agentTtl: 30 });
  });

  it("reads fleet.conf's format and keys", () => {
    const f = file(
      [
        '# fleet.conf',
        'etcd_servers=["http://127.0.0.1:4001"]'.replace('["', '"').replace('"]', '"'),
        'public_ip="10.0.0.5"',
        'metadata="region=us-west,role=web"',
        'agent_ttl="45s"',
        'verify_units=false',
        'etcd_request_timeout=1.5',
      ].join('\n'),
    );
    const warnings: string[] = [];
    const c = loadConfig({ file: f, env: {}, warn: (w) => warnings.push(w) });
    expect(c.etcdServers).toEqual(['http://127.0.0.1:4001']);
    expect(c.publicIp).toBe('10.0.0.5');
    expect(c.metadata).toEqual({ region: 'us-west', role: 'web' });
    expect(c.agentTtl).toBe(45);
    expect(c.etcdRequestTimeout).toBe(1.5);
    expect(warnings).toEqual([]);
  });

  it('lets the environment override the file and flags override both', () => {
    const f = file('public_ip=1.1.1.1\nagent_ttl=10\n');
    const c = loadConfig({ file: f, env: { FLOTILLA_PUBLIC_IP: '2.2.2.2', FLOTILLA_AGENT_TTL: '20' }, flags: { agent_ttl: '5' } });
    expect(c.publicIp).toBe('2.2.2.2');
    expect(c.agentTtl).toBe(5);
  });

  it('names the source and option of a bad value', () => {
    const f = file('agent_ttl=soon\n');
    expect(() => loadConfig({ file: f, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: f, env: {} })).toThrow(/line 1 \(agent_ttl\): "soon" is not a duration/);
    expect(() => loadConfig({ env: { FLOTILLA_DISABLE_ENGINE: 'maybe' } })).toThrow(
      /environment FLOTILLA_DISABLE_ENGINE \(disable_engine\): "maybe" is not a boolean/,
    );
    expect(() => loadConfig({ env: {}, flags: { etcd_servers: 'localhost:2379' } })).toThrow(/flag --etcd-servers.*not a URL/);
    expect(() => loadConfig({ file: path.join(dir, 'missing.conf'), env: {} })).toThrow(/cannot read configuration file/);
  });

  it('reads shutdown: keep by default (units run on over a restart), or drain', () => {
    expect(loadConfig({ env: {} }).shutdown).toBe('keep');
    expect(loadConfig({ file: file('shutdown=drain\n'), env: {} }).shutdown).toBe('drain');
    expect(() => loadConfig({ env: { FLOTILLA_SHUTDOWN: 'purge' } })).toThrow(/environment FLOTILLA_SHUTDOWN \(shutdown\): "purge" is neither keep nor drain/);
  });

  it('warns about unknown options instead of failing', () => {
    const warnings: string[] = [];
    loadConfig({ file: file('colour=blue\n'), env: {}, warn: (w) => warnings.push(w) });
    expect(warnings).toEqual([expect.stringMatching(/unknown option colour ignored/)]);
  });

  it('reads durations', () => {
    expect(seconds('1m30s', 'x')).toBe(90);
    expect(seconds('500ms', 'x')).toBe(0.5);
    expect(() => seconds('0', 'x')).toThrow(/more than zero/);
  });
});
