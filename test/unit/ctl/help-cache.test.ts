// The installed flotctl prints help recorded at build time (cli/flotctl/help-cache.ts)
// only for the command lines recorded and only when no variable changes it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { cachedHelp, helpCommandLines, type HelpTable } from '../../../cli/flotctl/help-cache.js';
import { captureIO } from '../../../src/ctl/io.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotctl-help-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = pathToFileURL(path.join(dir, 'flotctl-help.json'));
const table: HelpTable = { keys: { help: 0, '--help': 0, 'help list-units': 1, 'list-units -h': 1 }, texts: ['TOP\n', 'LIST\n'] };
writeFileSync(file, JSON.stringify(table));

describe('recorded help', () => {
  it('records help, --help, -h and each command in its three spellings', () => {
    expect(helpCommandLines(['cat'])).toEqual([['help'], ['--help'], ['-h'], ['help', 'cat'], ['cat', '--help'], ['cat', '-h']]);
  });

  it('answers a recorded command line', () => {
    expect(cachedHelp(['help'], {}, file)).toBe('TOP\n');
    expect(cachedHelp(['list-units', '-h'], { PATH: '/bin' }, file)).toBe('LIST\n');
  });

  it('steps aside for other command lines, a variable that changes help, or no recorded file', () => {
    expect(cachedHelp(['help', 'li'], {}, file)).toBeUndefined();
    expect(cachedHelp(['--version'], {}, file)).toBeUndefined();
    expect(cachedHelp(['--debug', 'help'], {}, file)).toBeUndefined();
    expect(cachedHelp(['help', 'constructor'], {}, file)).toBeUndefined();
    expect(cachedHelp(['help'], { FLOTCTL_DEBUG: '1' }, file)).toBeUndefined();
    expect(cachedHelp(['help'], { FLEETCTL_ENDPOINT: 'http://x:2379' }, file)).toBeUndefined();
    expect(cachedHelp(['help'], {}, pathToFileURL(path.join(dir, 'none.json')))).toBeUndefined();
  });

  it('a FLOTCTL_* default shows in help, which is why recorded help steps aside then', async () => {
    const plain = captureIO({ env: {} });
    const withEnv = captureIO({ env: { FLOTCTL_DEBUG: '1' } });
    expect(await runFlotctl(['help'], plain)).toBe(0);
    expect(await runFlotctl(['help'], withEnv)).toBe(0);
    expect(withEnv.stdout).not.toBe(plain.stdout);
  });
});
