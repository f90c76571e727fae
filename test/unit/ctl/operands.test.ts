import { describe, expect, it } from 'vitest';
import { markOperands, unmarkOperands, unmarkText } from '../../../src/ctl/operands.js';

describe('-- ends the options', () => {
  const roundTrip = (args: string[], command: number): string[] => markOperands(args, command).map(unmarkText);

  it('drops the first -- after the command and keeps every later argument as written', () => {
    expect(roundTrip(['submit', '--', '-lead.service', '--', '--replace'], 0)).toEqual(['submit', '-lead.service', '--', '--replace']);
    expect(roundTrip(['--endpoint', 'x', 'submit', '--replace', '--', '-a'], 2)).toEqual(['--endpoint', 'x', 'submit', '--replace', '-a']);
    expect(markOperands(['submit', '--', '-a'], 0)[1]).not.toMatch(/^-/);
  });

  it('leaves arguments without -- after the command alone', () => {
    expect(markOperands(['submit', 'a', '-b'], 0)).toEqual(['submit', 'a', '-b']);
    expect(markOperands(['--', 'submit', 'a'], 1)).toEqual(['--', 'submit', 'a']);
    expect(markOperands(['--debug'], -1)).toEqual(['--debug']);
  });

  it('unmarks parsed strings and string arrays in place', () => {
    const marked = markOperands(['cat', '--', '-x.service'], 0);
    const argv: Record<string, unknown> = { unit: marked[1], units: [marked[1], 'b'], n: 3 };
    unmarkOperands(argv);
    expect(argv).toEqual({ unit: '-x.service', units: ['-x.service', 'b'], n: 3 });
  });
});
