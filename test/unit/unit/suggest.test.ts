import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../../src/unit/suggest.js';

describe('did you mean', () => {
  it.each<[string, string, number]>([
    ['', '', 0],
    ['abc', '', 3],
    ['kitten', 'sitting', 3],
    ['MachineMetdata', 'MachineMetadata', 1],
    ['Global', 'Global', 0],
    ['ab', 'ba', 2],
  ])('editDistance(%j, %j) = %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });

  const keys = ['MachineID', 'MachineOf', 'MachineMetadata', 'Conflicts', 'Global', 'Replaces'];
  it.each<[string, string | undefined]>([
    ['MachineMetdata', 'MachineMetadata'],
    ['machineof', 'MachineOf'],
    ['GLOBAL', 'Global'],
    ['Replace', 'Replaces'],
    ['MachineId', 'MachineID'],
    ['Colour', undefined],
    ['X', undefined],
    ['MachineIdentity', undefined],
  ])('closest(%j) is %j', (word, expected) => {
    expect(closest(word, keys)).toBe(expected);
  });
});
