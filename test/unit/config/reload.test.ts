import { describe, expect, it } from 'vitest';
import { DEFAULTS, OPTION_NAMES, optionName, type DaemonConfig } from '../../../src/config/config.js';
import { LIVE_OPTIONS, planReload } from '../../../src/config/reload.js';

const base = (): DaemonConfig => ({ ...DEFAULTS, metadata: { role: 'web' } });

describe('what a reload (SIGHUP) applies', () => {
  it('reports agent_ttl, engine_ttl and the api_* options as needing a restart, and keeps their running values', () => {
    const running = base();
    const reread: DaemonConfig = {
      ...running,
      agentTtl: 5,
      engineTtl: 7,
      apiListen: '127.0.0.1:7480',
      apiTokenFile: '/etc/flotilla/api-token',
      apiInsecure: true,
      apiSocket: undefined,
      etcdRequestTimeout: 9,
    };
    const plan = planReload(running, reread);
    expect(plan.unapplied).toEqual(['agent_ttl', 'api_insecure', 'api_listen', 'api_socket', 'api_token_file', 'engine_ttl', 'etcd_request_timeout']);
    expect(plan.applied).toEqual([]);
    expect(plan.config).toEqual(running);
  });

  it('applies the live options and names them; nothing changed reports nothing', () => {
    const running = base();
    expect(planReload(running, { ...running, metadata: { role: 'web' } })).toEqual({ config: running, applied: [], unapplied: [] });
    const plan = planReload(running, { ...running, metadata: { role: 'db' }, publicIp: '127.0.0.12', verbosity: 1, dnsTtl: 9, agentTtl: 4 });
    expect(plan.applied).toEqual(['dns_ttl', 'metadata', 'public_ip', 'verbosity']);
    expect(plan.unapplied).toEqual(['agent_ttl']);
    expect(plan.config).toEqual({ ...running, metadata: { role: 'db' }, publicIp: '127.0.0.12', verbosity: 1, dnsTtl: 9 });
    expect(running.metadata).toEqual({ role: 'web' }); // the running config is not changed in place
  });

  it('reports every option but the live ones, so an option added later is reported until it is made live', () => {
    const fields = Object.keys(DEFAULTS) as (keyof DaemonConfig)[];
    // Every field has its option name (a test against a field left out of config.ts's OPTIONS).
    expect(fields.map(optionName).sort()).toEqual([...OPTION_NAMES].sort());
    for (const field of fields) {
      const running = base();
      const reread = { ...running, [field]: changed(running[field]) } as DaemonConfig;
      const plan = planReload(running, reread);
      expect(plan.applied.concat(plan.unapplied), field).toEqual([optionName(field)]);
      expect(plan.unapplied.length === 1, field).toBe(!LIVE_OPTIONS.has(field));
    }
    // A field the code does not know yet is reported under its own name.
    const future = { ...base(), futureOption: 1 } as DaemonConfig;
    expect(planReload(base(), future).unapplied).toEqual(['futureOption']);
  });
});

function changed(value: unknown): unknown {
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'string') return `${value}x`;
  if (value === undefined) return '/x';
  if (Array.isArray(value)) return [...(value as unknown[]), 'http://127.0.0.2:2379'];
  return { ...(value as object), extra: '1' };
}
