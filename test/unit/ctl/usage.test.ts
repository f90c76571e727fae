// Usage errors read as flotctl's, not yargs': each bad command line gives
// exit code 2 and one line naming the flag or value and what is allowed.
import { afterEach, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { captureIO } from '../../../src/ctl/io.js';
import { usageMessage } from '../../../src/ctl/usage.js';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO({ env: {} });
  const code = await runFlotctl(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('usage errors', () => {
  const saved = process.env['LC_ALL'];
  afterEach(() => {
    if (saved === undefined) delete process.env['LC_ALL'];
    else process.env['LC_ALL'] = saved;
  });

  const cases: [string[], string][] = [
    [['--bogus', 'list-units'], 'unknown flag --bogus; see flotctl help'],
    [['list-units', '--bogus'], 'unknown flag --bogus; see flotctl help list-units'],
    [['list-units', '-x'], 'unknown flag -x; see flotctl help list-units'],
    [['cat', 'a.service', 'b.service'], 'unexpected argument "b.service"; see flotctl help cat'],
    [['list-units', '--output', 'yaml'], '--output must be one of: table, json (got "yaml"); see flotctl help list-units'],
    [['list-units', '-o', 'yaml'], '--output must be one of: table, json (got "yaml"); see flotctl help list-units'],
    [['--driver', 'ssh', 'list-machines'], '--driver must be one of: etcd, api (got "ssh"); see flotctl help list-machines'],
    [['frobnicate'], 'unknown command "frobnicate"; see flotctl help'],
  ];
  for (const [args, want] of cases) {
    it(`flotctl ${args.join(' ')}`, async () => {
      expect(await run(args)).toEqual({ code: 2, stdout: '', stderr: `flotctl: ${want}\n` });
    });
  }

  it('says the same whatever the locale', async () => {
    process.env['LC_ALL'] = 'de_DE.UTF-8';
    expect((await run(['list-units', '--bogus'])).stderr).toBe('flotctl: unknown flag --bogus; see flotctl help list-units\n');
  });

  it('rewrites several invalid values and a flag without its value', () => {
    const yargs = 'Invalid values:\n  Argument: output, Given: "yaml", Choices: "table", "json"\n  Argument: driver, Given: "x", Choices: "etcd", "api"';
    expect(usageMessage(yargs, [])).toBe('--output must be one of: table, json (got "yaml"); --driver must be one of: etcd, api (got "x")');
    expect(usageMessage('Not enough arguments following: fields', ['--fields'])).toBe('--fields needs a value');
    expect(usageMessage('Unknown arguments: a, b', ['x', 'a', 'b'])).toBe('unexpected arguments "a", "b"');
  });
});
