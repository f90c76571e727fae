import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { UnitError } from '../../../src/unit/errors.js';
import { parseUnitFile } from '../../../src/unit/file.js';
import { effectiveFence, parseFenceSeconds } from '../../../src/unit/fence.js';
import { parseRequirements } from '../../../src/unit/requirements.js';

// Self-fencing's inputs: [X-Fleet] FenceAfter=, agent_fence_after, and the
// rule that combines them (issue 15.5).
function read(xfleet: string, stored = false): ReturnType<typeof parseRequirements> {
  return parseRequirements('web.service', parseUnitFile(`[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n${xfleet}\n`), { stored });
}

function refusal(xfleet: string): UnitError {
  try {
    read(xfleet);
  } catch (e) {
    if (e instanceof UnitError) return e;
    throw e;
  }
  throw new Error('expected a UnitError');
}

describe('FenceAfter= in [X-Fleet]', () => {
  it('reads systemd time spans into seconds; 0 and off turn fencing off for the unit', () => {
    expect(read('FenceAfter=30').requirements.fenceAfter).toBe(30);
    expect(read('FenceAfter=30s').requirements.fenceAfter).toBe(30);
    expect(read('FenceAfter=2min').requirements.fenceAfter).toBe(120);
    expect(read('FenceAfter=1h 30min').requirements.fenceAfter).toBe(5400);
    expect(read('FenceAfter=1500ms').requirements.fenceAfter).toBe(1.5);
    expect(read('FenceAfter=0').requirements.fenceAfter).toBe(0);
    expect(read('FenceAfter=off').requirements.fenceAfter).toBe(0);
    expect(read('MachineMetadata=a=b').requirements.fenceAfter).toBeUndefined();
  });

  it('the last value counts and an empty value clears it', () => {
    expect(read('FenceAfter=10s\nFenceAfter=20s').requirements.fenceAfter).toBe(20);
    expect(read('FenceAfter=10s\nFenceAfter=').requirements.fenceAfter).toBeUndefined();
  });

  it('refuses a value that is not a time span, naming it; a stored unit keeps running unfenced with a warning', () => {
    const e = refusal('FenceAfter=soon');
    expect(e.rule).toBe('xfleet.duration');
    expect(e.message).toContain('FenceAfter=soon is not a time span');
    expect(parseFenceSeconds('10 parsecs')).toBeUndefined();
    const stored = read('FenceAfter=soon', true);
    expect(stored.requirements.fenceAfter).toBeUndefined();
    expect(stored.warnings).toEqual(['web.service: FenceAfter=soon is not a time span and is ignored']);
  });

  it('refuses FenceAfter on a global unit, which is never fenced', () => {
    const e = refusal('Global=true\nFenceAfter=10s');
    expect(e.rule).toBe('xfleet.combination');
    expect(e.message).toContain('Global cannot be combined with FenceAfter');
  });

  it('is a known key, so a typo of it is refused with a suggestion', () => {
    expect(refusal('FenceAftr=10s').message).toContain('did you mean FenceAfter=?');
  });
});

describe('the effective fence of a unit on a machine', () => {
  it("is the unit's FenceAfter when given, else the machine's agent_fence_after; 0 means none", () => {
    expect(effectiveFence({ global: false }, 30)).toBe(30);
    expect(effectiveFence({ global: false, fenceAfter: 10 }, 30)).toBe(10);
    expect(effectiveFence({ global: false, fenceAfter: 10 }, 0)).toBe(10);
    expect(effectiveFence({ global: false, fenceAfter: 0 }, 30)).toBeUndefined();
    expect(effectiveFence({ global: false }, 0)).toBeUndefined();
  });

  it('is none for global units and on machines that do not publish a fence (older agents)', () => {
    expect(effectiveFence({ global: true }, 30)).toBeUndefined();
    expect(effectiveFence({ global: false, fenceAfter: 10 }, undefined)).toBeUndefined();
  });
});

describe('agent_fence_after', () => {
  it('is off by default (fleet keeps units running) and reads a duration', () => {
    expect(loadConfig({ env: {}, file: undefined }).agentFenceAfter).toBeUndefined();
    expect(loadConfig({ env: { FLOTILLA_AGENT_FENCE_AFTER: '45s' }, file: undefined }).agentFenceAfter).toBe(45);
    expect(loadConfig({ env: {}, file: undefined, flags: { agent_fence_after: '2m' } }).agentFenceAfter).toBe(120);
    for (const off of ['off', '0', '']) {
      expect(loadConfig({ env: { FLOTILLA_AGENT_FENCE_AFTER: off }, file: undefined }).agentFenceAfter).toBeUndefined();
    }
  });

  it('refuses a bad value with one message naming the option', () => {
    expect(() => loadConfig({ env: { FLOTILLA_AGENT_FENCE_AFTER: 'soon' }, file: undefined })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { FLOTILLA_AGENT_FENCE_AFTER: 'soon' }, file: undefined })).toThrow(/agent_fence_after.*"soon" is not a duration/);
  });
});
