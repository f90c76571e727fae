// flotctl's client logic without a cluster: judging waits, progress lines,
// blocking flags, command prefixes, FLOTCTL_* variables, unit arguments,
// the submit lookup (over a fake driver) and the completion scripts.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bashCompletion, zshCompletion } from '../../../src/ctl/completion.js';
import type { CtlDriver, MachineInfo, Observation, StoredUnit, UnitStateInfo } from '../../../src/ctl/driver.js';
import { CtlError, UsageError } from '../../../src/ctl/errors.js';
import { blockAttempts } from '../../../src/ctl/lifecycle.js';
import { GLOBAL_FLAGS, apiEndpoints, envDefault, envName, parseEndpoints, type GlobalOptions } from '../../../src/ctl/options.js';
import { captureIO } from '../../../src/ctl/io.js';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { commandPosition, expandCommand, type CommandIndex } from '../../../src/ctl/prefix.js';
import { currentState } from '../../../src/ctl/state.js';
import { planSubmit, refuseTemplates, unitArg } from '../../../src/ctl/units.js';
import { judge, progressLine, type WaitTarget } from '../../../src/ctl/wait.js';
import { completionSpec } from '../../../cli/flotctl/commands.js';
import { parseUnit } from '../../../src/unit/index.js';

const M = 'aaaaaaaa000000000000000000000001';
const machines = (id: string): MachineInfo | undefined =>
  id === M ? { id: M, publicIp: '10.0.0.1', hostname: 'h', metadata: {}, version: '', since: '' } : undefined;
const state = (s: Partial<UnitStateInfo>): UnitStateInfo => ({
  unit: 'a.service',
  machine: M,
  hash: 'h1',
  loadState: 'loaded',
  activeState: 'active',
  subState: 'running',
  since: '',
  ...s,
});
const obs = (o: Partial<Observation>): Observation => ({ decisions: [], states: [], pending: undefined, ...o });
const decided = (st: 'loaded' | 'launched') => [{ unit: 'a.service', machine: M, hash: 'h1', state: st }];

describe('judging a wait', () => {
  const launched: WaitTarget = { unit: 'a.service', goal: 'launched', hash: 'h1' };

  it('is done when the decided machine reports the unit running with the same file', () => {
    expect(judge(launched, obs({ decisions: decided('launched'), states: [state({})] }), machines)).toEqual({
      status: 'done',
      message: 'Unit a.service launched on aaaaaaaa.../10.0.0.1',
    });
  });

  it('explains what it waits for: pending reason, engine, agent, old file, systemd state', () => {
    const why = (o: Observation): string => {
      const v = judge(launched, o, machines);
      return v.status === 'waiting' ? v.why : v.status;
    };
    expect(why(obs({ pending: { unit: 'a.service', reason: 'no machine matches MachineMetadata role=db', since: '' } }))).toBe(
      'pending: no machine matches MachineMetadata role=db',
    );
    expect(why(obs({}))).toBe('waiting for the engine to schedule it');
    expect(why(obs({ decisions: decided('loaded') }))).toBe('waiting for the engine to act on the new state');
    expect(why(obs({ decisions: decided('launched') }))).toBe('scheduled on aaaaaaaa.../10.0.0.1, no report from its agent yet');
    expect(why(obs({ decisions: decided('launched'), states: [state({ hash: 'old' })] }))).toMatch(/previous version/);
    expect(why(obs({ decisions: decided('launched'), states: [state({ activeState: 'activating', subState: 'start' })] }))).toBe(
      'on aaaaaaaa.../10.0.0.1: reports loaded/activating/start',
    );
  });

  it('fails a start whose unit failed', () => {
    expect(judge(launched, obs({ decisions: decided('launched'), states: [state({ activeState: 'failed', subState: 'failed' })] }), machines)).toEqual({
      status: 'failed',
      why: 'failed on aaaaaaaa.../10.0.0.1 (failed)',
    });
  });

  it('loaded means loaded and stopped', () => {
    const t: WaitTarget = { unit: 'a.service', goal: 'loaded', hash: 'h1' };
    expect(judge(t, obs({ decisions: decided('loaded'), states: [state({})] }), machines).status).toBe('waiting');
    expect(judge(t, obs({ decisions: decided('loaded'), states: [state({ activeState: 'inactive', subState: 'dead' })] }), machines)).toEqual({
      status: 'done',
      message: 'Unit a.service loaded on aaaaaaaa.../10.0.0.1',
    });
  });

  it('gone means no decision and no report anywhere', () => {
    const t: WaitTarget = { unit: 'a.service', goal: 'gone', doneText: 'Destroyed a.service' };
    expect(judge(t, obs({ states: [state({})] }), machines)).toEqual({ status: 'waiting', why: 'still on aaaaaaaa.../10.0.0.1' });
    expect(judge(t, obs({ decisions: decided('loaded') }), machines).status).toBe('waiting');
    expect(judge(t, obs({}), machines)).toEqual({ status: 'done', message: 'Destroyed a.service' });
  });

  it('drain (awayFrom) waits until the unit left the machine, then for it elsewhere; pending once off is done', () => {
    const N = 'bbbbbbbb0000';
    const t: WaitTarget = { unit: 'a.service', goal: 'launched', awayFrom: M };
    // still decided there, or still running there after its decision moved
    expect(judge(t, obs({ decisions: decided('launched'), states: [state({})] }), machines)).toEqual({ status: 'waiting', why: 'still on aaaaaaaa.../10.0.0.1' });
    const moved = [{ unit: 'a.service', machine: N, hash: 'h1', state: 'launched' as const }];
    expect(judge(t, obs({ decisions: moved, states: [state({})] }), machines).status).toBe('waiting');
    expect(judge(t, obs({ decisions: moved, states: [state({ machine: N })] }), machines)).toEqual({ status: 'done', message: 'Unit a.service launched on bbbbbbbb...' });
    expect(judge(t, obs({ pending: { unit: 'a.service', reason: 'no live machine matches MachineID=aaaaaaaa', since: '' } }), machines)).toEqual({
      status: 'done',
      message: 'Unit a.service off aaaaaaaa.../10.0.0.1, pending: no live machine matches MachineID=aaaaaaaa',
    });
  });

  it('a global unit is judged on each of its machines', () => {
    const t: WaitTarget = { unit: 'a.service', goal: 'launched', hash: 'h1', global: true, machines: [M, 'bbbbbbbb0000'] };
    expect(judge(t, obs({ states: [state({})] }), machines)).toEqual({ status: 'waiting', why: 'not yet launched on bbbbbbbb...' });
    expect(judge(t, obs({ states: [state({}), state({ machine: 'bbbbbbbb0000' })] }), machines)).toEqual({
      status: 'done',
      message: 'Unit a.service launched on 2 machines',
    });
  });

  it('derives the current state as fleet did', () => {
    expect(currentState(undefined, [state({})])).toBe('inactive');
    expect(currentState(decided('launched')[0], [])).toBe('inactive');
    expect(currentState(decided('launched')[0], [state({})])).toBe('launched');
    expect(currentState(decided('loaded')[0], [state({ activeState: 'inactive' })])).toBe('loaded');
  });
});

describe('progress line', () => {
  it('shows done/total, elapsed time and the slowest unit, cut to width', () => {
    expect(progressLine({ done: 3, total: 10, verb: 'launched', elapsedMs: 2345, slowest: { unit: 'web@7.service', why: 'pending: x' } })).toBe(
      '3/10 launched, 2.3s, slowest: web@7.service (pending: x)',
    );
    const long = progressLine({ done: 0, total: 2, verb: 'launched', elapsedMs: 0, slowest: { unit: 'u', why: 'x'.repeat(200) } }, 40);
    expect(long).toHaveLength(40);
    expect(long.endsWith('...')).toBe(true);
  });
});

describe('blocking flags', () => {
  it('reads --no-block and --block-attempts, refusing them together', () => {
    expect(blockAttempts({})).toBe(0);
    expect(blockAttempts({ noBlock: true })).toBe(-1);
    expect(blockAttempts({ blockAttempts: 5 })).toBe(5);
    expect(() => blockAttempts({ noBlock: true, blockAttempts: 5 })).toThrow(UsageError);
    expect(() => blockAttempts({ blockAttempts: -1 })).toThrow(/whole number/);
    expect(() => blockAttempts({ blockAttempts: NaN })).toThrow(/whole number/);
  });
});

describe('command prefixes', () => {
  const index: CommandIndex = {
    visible: ['list-machines', 'list-unit-files', 'list-units', 'start', 'stop', 'status', 'submit'],
    hidden: ['__complete-units'],
    valueFlags: new Set(['endpoint']),
  };

  it('expands an unambiguous prefix, after global flags and their values', () => {
    expect(expandCommand(['--endpoint', 'http://x', 'list-m', '-l'], index)).toEqual({
      args: ['--endpoint', 'http://x', 'list-machines', '-l'],
      command: 'list-machines',
    });
    expect(expandCommand(['--endpoint=http://x', 'star', 'a'], index).command).toBe('start');
    expect(expandCommand(['list-units'], index).command).toBe('list-units');
    expect(expandCommand(['--debug'], index).command).toBeUndefined();
  });

  it('refuses an ambiguous prefix naming the candidates, and an unknown command', () => {
    expect(() => expandCommand(['list-unit'], index)).toThrow('ambiguous command "list-unit": could be list-unit-files, list-units');
    expect(() => expandCommand(['st'], index)).toThrow(/start, stop, status/);
    expect(() => expandCommand(['nope'], index)).toThrow(/unknown command "nope"/);
    expect(() => expandCommand(['__complete'], index)).toThrow(/unknown/);
  });

  it('finds the command position', () => {
    expect(commandPosition(['--endpoint', 'x', '--debug', 'cat', 'u'], index.valueFlags)).toBe(3);
    expect(commandPosition(['--debug'], index.valueFlags)).toBe(-1);
  });
});

describe('options', () => {
  it('names the environment variables FLOTCTL_<FLAG>', () => {
    expect(envName('etcd-key-prefix')).toBe('FLOTCTL_ETCD_KEY_PREFIX');
    expect(envName('request-timeout')).toBe('FLOTCTL_REQUEST_TIMEOUT');
  });

  it('takes defaults from the environment, typed', () => {
    const flag = (name: string) => GLOBAL_FLAGS.find((f) => f.flag === name)!;
    expect(envDefault(flag('endpoint'), {})).toBeUndefined(); // each driver has its own default
    expect(envDefault(flag('endpoint'), { FLOTCTL_ENDPOINT: 'http://a:1,http://b:2' })).toBe('http://a:1,http://b:2');
    expect(envDefault(flag('request-timeout'), { FLOTCTL_REQUEST_TIMEOUT: '1.5' })).toBe(1.5);
    expect(envDefault(flag('debug'), { FLOTCTL_DEBUG: 'yes' })).toBe(true);
    expect(() => envDefault(flag('request-timeout'), { FLOTCTL_REQUEST_TIMEOUT: 'soon' })).toThrow(/not a number/);
  });

  it('--driver api uses the endpoint given (flag or FLOTCTL_ENDPOINT, even etcd\'s default URL), else the local socket', async () => {
    const endpointsFor = async (argv: string[], env: Record<string, string> = {}): Promise<string[]> => {
      let seen: string[] = [];
      const driverFactory = (g: GlobalOptions): CtlDriver => {
        seen = apiEndpoints(g);
        throw new CtlError('no driver here');
      };
      await runFlotctl([...argv, 'list-units'], captureIO({ env }), { driverFactory });
      return seen;
    };
    expect(await endpointsFor(['--driver', 'api'])).toEqual(['unix:///run/flotilla/flotilla.sock']);
    expect(await endpointsFor(['--driver', 'api', '--endpoint', 'http://127.0.0.1:2379'])).toEqual(['http://127.0.0.1:2379']);
    expect(await endpointsFor(['--driver', 'api'], { FLOTCTL_ENDPOINT: 'http://127.0.0.1:2379' })).toEqual(['http://127.0.0.1:2379']);
    expect(await endpointsFor([], { FLOTCTL_DRIVER: 'api', FLOTCTL_ENDPOINT: 'unix:///x.sock,http://10.0.0.1:7480' })).toEqual(['unix:///x.sock', 'http://10.0.0.1:7480']);
  });

  it('parses endpoint lists', () => {
    expect(parseEndpoints(' http://a:1 , https://b:2,')).toEqual(['http://a:1', 'https://b:2']);
    expect(() => parseEndpoints('')).toThrow(UsageError);
    expect(() => parseEndpoints('a:1')).toThrow(/not a URL|only http/);
  });
});

describe('unit arguments', () => {
  it('normalises names and local paths as fleetctl did', () => {
    expect(unitArg('hello')).toEqual({ arg: 'hello', name: 'hello.service', file: 'hello.service' });
    expect(unitArg('units/web@.service')).toEqual({ arg: 'units/web@.service', name: 'web@.service', file: 'units/web@.service' });
    expect(unitArg('./db.target')).toMatchObject({ name: 'db.target', file: './db.target' });
    expect(() => unitArg('bad name')).toThrow(CtlError);
  });

  it('refuses templates where only instances can go', () => {
    expect(() => refuseTemplates(['web@.service'], 'started')).toThrow('web@.service is a template and cannot be started; start an instance such as web@1.service');
    expect(() => refuseTemplates(['web@1.service', 'a.service'], 'started')).not.toThrow();
  });
});

describe('submit lookup', () => {
  const text = (cmd: string): string => `[Service]\nExecStart=${cmd}\n`;
  function stored(name: string, t: string): StoredUnit {
    const p = parseUnit(name, t);
    return { name, text: p.text, hash: p.hash, global: false, desiredState: 'inactive' };
  }
  function driver(units: StoredUnit[]): CtlDriver {
    const byName = new Map(units.map((u) => [u.name, u]));
    return {
      getStoredUnits: async (names: readonly string[]) => new Map(names.flatMap((n) => (byName.has(n) ? [[n, byName.get(n)!] as const] : []))),
    } as unknown as CtlDriver;
  }
  const files = (f: Record<string, string>) => (p: string) => f[p];

  it('takes the registry first, then a local file, then the registry template, then a local template', async () => {
    const d = driver([stored('a.service', text('/a')), stored('t@.service', text('/t'))]);
    const plan = await planSubmit(d, ['a', 'b.service', 't@1', 'dir/u@2.service'], {
      replace: false,
      read: files({ 'b.service': text('/b'), 'dir/u@.service': text('/u') }),
    });
    expect(plan.kept).toEqual(['a.service']);
    expect(plan.writes.map((w) => [w.name, w.text])).toEqual([
      ['b.service', '[Service]\nExecStart=/b\n'],
      ['t@1.service', '[Service]\nExecStart=/t\n'],
      ['u@2.service', '[Service]\nExecStart=/u\n'],
    ]);
  });

  it('warns when the local file differs, and replaces only with --replace', async () => {
    const d = driver([stored('a.service', text('/a'))]);
    const read = files({ 'a.service': text('/new') });
    const kept = await planSubmit(d, ['a.service'], { replace: false, read });
    expect(kept.writes).toEqual([]);
    expect(kept.warnings).toEqual(['unit a.service in the registry differs from the local unit file a.service; add --replace to replace it']);
    const replaced = await planSubmit(d, ['a.service'], { replace: true, read });
    expect(replaced.writes.map((w) => w.name)).toEqual(['a.service']);
    expect(replaced.warnings).toEqual([]);
  });

  it('refuses the whole batch on one bad file, naming file and line', async () => {
    const d = driver([]);
    const read = files({ 'ok.service': text('/ok'), 'bad.service': '[Service]\nExecStart=/x\n[X-Fleet]\nMachineID=a\nGlobal=true\n' });
    await expect(planSubmit(d, ['ok.service', 'bad.service'], { replace: false, read })).rejects.toThrow(/^bad\.service: /);
    const syntax = files({ 'bad.service': '[Service]\nExecStart=/x\nnot a key value line\n' });
    await expect(planSubmit(d, ['bad.service'], { replace: false, read: syntax })).rejects.toThrow(/line 3/);
  });

  it('says where it looked for a unit it cannot find', async () => {
    await expect(planSubmit(driver([]), ['x@1'], { replace: false, read: files({}) })).rejects.toThrow(
      'unit x@1.service not found: not in the registry, no file x@1.service, and no template x@.service in the registry or at x@.service',
    );
  });
});

describe('completion scripts', () => {
  const spec = completionSpec();

  it('lists the visible commands and their flags, never the hidden helpers as commands', () => {
    const script = bashCompletion(spec);
    expect(script).toMatch(/local commands="list-machines list-unit-files list-units submit load start stop unload restart destroy drain undrain cat status journal announce services completion version help"/);
    expect(script).toContain('start) flags="--no-block --block-attempts --replace --allow-unknown-keys --help"; kind="units-or-files"');
    expect(script).toContain('__complete-units');
    expect(script).toContain('complete -o filenames -F _flotctl flotctl');
    expect(zshCompletion(spec)).toMatch(/^#compdef flotctl\n/);
  });

  it('is valid bash, and completes commands and flags', () => {
    const script = bashCompletion(spec);
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    const complete = (words: string[]): string[] => {
      const prog = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _flotctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return spawnSync('bash', ['-c', prog], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    };
    expect(complete(['flotctl', 'list-'])).toEqual(['list-machines', 'list-unit-files', 'list-units']);
    expect(complete(['flotctl', '--endpoint', 'http://x', 'sta'])).toEqual(['start', 'status']);
    expect(complete(['flotctl', 'start', '--no-'])).toEqual(['--no-block']);
    expect(complete(['flotctl', '--driver', ''])).toEqual(['etcd', 'api']);
    expect(complete(['flotctl', 'completion', ''])).toEqual(['bash', 'zsh']);
  });
});
