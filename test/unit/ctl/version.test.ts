import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { captureIO } from '../../../src/ctl/io.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pkgVersion = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

describe('version', () => {
  it('flotctl version and --version report package.json version', async () => {
    for (const argv of [['version'], ['--version']]) {
      const io = captureIO();
      expect(await runFlotctl(argv, io)).toBe(0);
      expect(io.stdout).toBe(`flotctl version ${pkgVersion}\n`);
    }
  });

  it('--version has no FLOTCTL_VERSION variable: help does not offer one, and a value there changes nothing', async () => {
    const help = captureIO();
    await runFlotctl(['help', 'list-units'], help);
    expect(help.stdout).toContain('[env FLOTCTL_DEBUG, FLEETCTL_DEBUG]');
    expect(help.stdout).not.toContain('FLOTCTL_VERSION');
    const io = captureIO({ env: { FLOTCTL_VERSION: 'maybe' } });
    expect(await runFlotctl(['version'], io)).toBe(0);
    expect(io.stderr).toBe('');
  });

  it('flotillad --version reports package.json version', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/flotillad.ts'), '--version'], { cwd: root, encoding: 'utf8' });
    expect(out).toBe(`${pkgVersion}\n`);
  });

  it('the version is written only in package.json', () => {
    // The literal version string must not be repeated in the sources.
    const grep = spawnSync('git', ['grep', '--untracked', '-lF', `'${pkgVersion}'`, '--', 'src', 'cli'], { cwd: root, encoding: 'utf8' });
    expect(grep.status, grep.stderr).toBe(1); // git grep: 1 = nothing found
    expect(grep.stdout).toBe('');
  });
});
