import { describe, expect, it } from 'vitest';
import { planTasks, type LocalUnit } from '../../../src/agent/tasks.js';
import type { DesiredUnit } from '../../../src/agent/desired.js';

const want = (name: string, state: 'loaded' | 'launched', hash = 'h1'): [string, DesiredUnit] => [name, { name, hash, state }];
const have = (name: string, over: Partial<LocalUnit> = {}): [string, LocalUnit] => [
  name,
  { name, hash: 'h1', loadState: 'loaded', activeState: 'inactive', subState: 'dead', launched: false, ...over },
];
const plan = (d: [string, DesiredUnit][], l: [string, LocalUnit][]) => planTasks(new Map(d), new Map(l));

describe('agent tasks', () => {
  it('loads and starts a new launched unit, without a reload', () => {
    expect(plan([want('a.service', 'launched')], [])).toEqual([
      { kind: 'load', name: 'a.service', hash: 'h1' },
      { kind: 'start', name: 'a.service' },
    ]);
  });

  it('only loads a unit desired loaded', () => {
    expect(plan([want('a.service', 'loaded')], [])).toEqual([{ kind: 'load', name: 'a.service', hash: 'h1' }]);
  });

  it('starts a loaded unit that should be launched, and stops one that should only be loaded', () => {
    expect(plan([want('a.service', 'launched')], [have('a.service')])).toEqual([{ kind: 'start', name: 'a.service' }]);
    expect(plan([want('a.service', 'loaded')], [have('a.service', { launched: true, activeState: 'active' })])).toEqual([
      { kind: 'stop', name: 'a.service' },
    ]);
  });

  it('does nothing when desired and local agree (also for a unit that failed after its start)', () => {
    expect(plan([want('a.service', 'launched')], [have('a.service', { launched: true, activeState: 'active' })])).toEqual([]);
    expect(plan([want('a.service', 'launched')], [have('a.service', { launched: true, activeState: 'failed' })])).toEqual([]);
    expect(plan([want('a.service', 'loaded')], [have('a.service')])).toEqual([]);
  });

  it('unloads what is no longer desired, first', () => {
    expect(plan([want('b.service', 'launched')], [have('a.service', { activeState: 'failed' })])).toEqual([
      { kind: 'unload', name: 'a.service' },
      { kind: 'load', name: 'b.service', hash: 'h1' },
      { kind: 'start', name: 'b.service' },
    ]);
  });

  it('stops a running unit before unloading it, and unloads it only once it has stopped', () => {
    for (const activeState of ['active', 'activating', 'reloading']) {
      expect(plan([], [have('a.service', { launched: true, activeState })])).toEqual([{ kind: 'stop', name: 'a.service' }]);
    }
    // its stop job is in flight: nothing until systemd reports it stopped
    expect(plan([], [have('a.service', { activeState: 'deactivating' })])).toEqual([]);
    expect(plan([], [have('a.service', { activeState: 'inactive' })])).toEqual([{ kind: 'unload', name: 'a.service' }]);
  });

  it('does not start again a unit whose start is in flight', () => {
    expect(plan([want('a.service', 'launched')], [have('a.service', { launched: true, activeState: 'activating' })])).toEqual([]);
  });

  it('stops a unit set to loaded while its start is in flight (the stop replaces the start job)', () => {
    expect(plan([want('a.service', 'loaded')], [have('a.service', { launched: true, activeState: 'activating' })])).toEqual([
      { kind: 'stop', name: 'a.service' },
    ]);
  });

  it('replaces a unit whose hash changed: stop it, then unload, load, one reload, start', () => {
    expect(
      plan(
        [want('a.service', 'launched', 'h2'), want('b.service', 'launched', 'h2')],
        [have('a.service', { launched: true, activeState: 'active' }), have('b.service', { activeState: 'deactivating' })],
      ),
    ).toEqual([{ kind: 'stop', name: 'a.service' }]);
    expect(
      plan(
        [want('a.service', 'launched', 'h2'), want('b.service', 'launched', 'h2')],
        [have('a.service'), have('b.service', { launched: true, activeState: 'failed' })],
      ),
    ).toEqual([
      { kind: 'unload', name: 'a.service' },
      { kind: 'unload', name: 'b.service' },
      { kind: 'load', name: 'a.service', hash: 'h2' },
      { kind: 'load', name: 'b.service', hash: 'h2' },
      { kind: 'reload' },
      { kind: 'start', name: 'a.service' },
      { kind: 'start', name: 'b.service' },
    ]);
  });

  it('replaces a loaded-only unit without starting it', () => {
    expect(plan([want('a.service', 'loaded', 'h2')], [have('a.service')])).toEqual([
      { kind: 'unload', name: 'a.service' },
      { kind: 'load', name: 'a.service', hash: 'h2' },
      { kind: 'reload' },
    ]);
  });

  it('takes over a unit found running after an agent restart without starting it again', () => {
    // after a restart, the agent counts a running unit as launched
    expect(plan([want('a.service', 'launched')], [have('a.service', { launched: true, activeState: 'active' })])).toEqual([]);
  });

  it('leaves alone units it never wrote and does not run', () => {
    expect(plan([], [have('x.service', { hash: undefined })])).toEqual([]);
  });
});
