import { describe, expect, it } from 'vitest';
import { desiredUnits, type GlobalUnit } from '../../../src/agent/desired.js';
import { EMPTY_REQUIREMENTS, type Requirements } from '../../../src/unit/requirements.js';

const req = (over: Partial<Requirements>): Requirements => ({ ...EMPTY_REQUIREMENTS, machineOf: [], conflicts: [], replaces: [], machineMetadata: [], ...over });
const global = (name: string, over: Partial<Requirements> = {}, state: GlobalUnit['state'] = 'launched'): GlobalUnit => ({
  name,
  hash: 'g',
  state,
  requirements: req({ global: true, ...over }),
});

describe('desired units of a machine', () => {
  const machine = { machineId: 'm1', metadata: { role: 'web' } };

  it('is its schedule plus the matching global units', () => {
    const r = desiredUnits({
      ...machine,
      schedule: [{ name: 'a.service', hash: 'h', state: 'launched' }],
      globals: [
        global('g-all.service'),
        global('g-web.service', { machineMetadata: [{ key: 'role', values: ['web'], negate: false }] }),
        global('g-db.service', { machineMetadata: [{ key: 'role', values: ['db'], negate: false }] }),
        global('g-notweb.service', { machineMetadata: [{ key: 'role', values: ['web'], negate: true }] }),
        global('g-off.service', {}, 'inactive'),
      ],
    });
    expect([...r.units.keys()].sort()).toEqual(['a.service', 'g-all.service', 'g-web.service']);
    expect(r.units.get('g-all.service')).toEqual({ name: 'g-all.service', hash: 'g', state: 'launched' });
  });

  it('waits for a global unit whose file is not read yet', () => {
    const r = desiredUnits({ ...machine, schedule: [], globals: [{ name: 'g.service', hash: 'g', state: 'launched', requirements: undefined }] });
    expect(r.units.size).toBe(0);
  });

  it('leaves out global units that conflict with an earlier one, and scheduled units that conflict with a global one', () => {
    const r = desiredUnits({
      ...machine,
      schedule: [
        { name: 'web-1.service', hash: 'h', state: 'launched' },
        { name: 'db.service', hash: 'h', state: 'launched', requirements: req({ conflicts: ['g-a*'] }) },
        // conflicts only with a global unit that is itself left out
        { name: 'cache.service', hash: 'h', state: 'launched', requirements: req({ conflicts: ['g-b*'] }) },
      ],
      globals: [global('g-a.service', { conflicts: ['web-*'] }), global('g-b.service', { conflicts: ['g-a.service'] })],
    });
    expect([...r.units.keys()].sort()).toEqual(['cache.service', 'g-a.service']);
    expect(r.excluded).toEqual([
      { unit: 'g-b.service', reason: 'conflicts with g-a.service' },
      { unit: 'db.service', reason: 'conflicts with global unit g-a.service' },
      { unit: 'web-1.service', reason: 'conflicts with global unit g-a.service' },
    ]);
  });
});
