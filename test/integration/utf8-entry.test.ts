// Text that is not UTF-8 entering through a process (flotctl's arguments and
// FLOTCTL_* variables, flotillad's flags) or the discovery library is refused
// with one line naming it, and nothing reaches etcd. The bytes are real: a
// shell's printf puts them into argv, where Node would silently have turned
// them into U+FFFD.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/discovery/index.js';
import { Registry } from '../../src/registry/index.js';
import { useEtcd } from '../helpers/etcd.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const etcd = useEtcd();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const newPrefix = (): string => `/t-${randomBytes(4).toString('hex')}/`;

async function keysUnder(prefix: string): Promise<string[]> {
  const r = Registry.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 5_000 });
  try {
    return (await r.client.getAll().prefix(prefix).keys()).sort();
  } finally {
    r.close();
  }
}

interface Run {
  code: number | null;
  stderr: string;
}

/**
 * Runs a flotilla program through sh, `shell` setting up the bytes: `"$@"`
 * is the program and its arguments. Killed (by its PID) if it is still
 * running after `ms`, as `flotctl announce` would be if it took the argument.
 */
function runSh(shell: string, program: string, args: string[], ms = 15_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', shell, 'sh', process.execPath, '--import', 'tsx', path.join(root, program), ...args], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** `--attr zone=caf<ff><fe>` as the last argument. */
const BAD_LAST_ARG = `exec "$@" "$(printf 'zone=caf\\377\\376')"`;

describe('text that is not UTF-8, from a process or the library', () => {
  it('flotctl announce refuses an attribute that is not UTF-8, naming the argument, and announces nothing', async () => {
    const prefix = newPrefix();
    const r = await runSh(BAD_LAST_ARG, 'cli/flotctl.ts', ['--endpoint', etcd.endpoints.join(','), '--etcd-key-prefix', prefix, 'announce', 'web', '127.0.0.1:8080', '--attr']);
    expect(r).toEqual({ code: 2, stderr: 'flotctl: argument 9 is not valid UTF-8 (byte 0xff at offset 8): zone=caf\\xff\\xfe\n' });
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('flotctl refuses a FLOTCTL_* variable that is not UTF-8 before using it', async () => {
    const prefix = newPrefix();
    const shell = `export FLOTCTL_ETCD_KEY_PREFIX="$(printf '${prefix}x\\377/')"; exec "$@"`;
    const r = await runSh(shell, 'cli/flotctl.ts', ['--endpoint', etcd.endpoints.join(','), 'announce', 'web', '127.0.0.1:8080']);
    expect(r).toEqual({
      code: 2,
      stderr: `flotctl: environment variable FLOTCTL_ETCD_KEY_PREFIX is not valid UTF-8 (byte 0xff at offset ${'FLOTCTL_ETCD_KEY_PREFIX='.length + prefix.length + 1}): FLOTCTL_ETCD_KEY_PREFIX=${prefix}x\\xff/\n`,
    });
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('flotillad refuses a flag that is not UTF-8 before it starts', async () => {
    const prefix = newPrefix();
    const r = await runSh(BAD_LAST_ARG, 'cli/flotillad.ts', ['--etcd-servers', etcd.endpoints.join(','), '--etcd-key-prefix', prefix, '--config', '/nonexistent/flotilla.conf', '--metadata']);
    expect(r).toEqual({ code: 2, stderr: 'flotillad: argument 8 is not valid UTF-8 (byte 0xff at offset 8): zone=caf\\xff\\xfe\n' });
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('the library refuses text UTF-8 cannot hold (lone surrogates), naming the field, and writes nothing', async () => {
    const prefix = newPrefix();
    const d = Discovery.connect({ endpoints: etcd.endpoints, prefix, requestTimeoutMs: 5_000 });
    cleanups.push(() => d.close());
    await expect(d.announce('web', { host: '127.0.0.1', port: 80, attributes: { zone: 'caf\uD800' } })).rejects.toThrow(
      'attribute "zone" is not valid UTF-8 (lone surrogate \\uD800 at character 3)',
    );
    await expect(d.announce('web', { host: '127.0.0.1', port: 80, attributes: { ['\uDC00']: 'x' } })).rejects.toThrow(/^attribute name "\\udc00" is not valid UTF-8/);
    await expect(d.announce('web', { host: '127.0.0.1', port: 80, instance: 'i\uD83D' })).rejects.toThrow(/^instance name is not valid UTF-8/);
    await expect(d.announce('web', { host: '127.0.0.1', port: 80, unit: 'web\uDFFF.service' })).rejects.toThrow(/^unit is not valid UTF-8/);
    expect(await keysUnder(prefix)).toEqual([]);
    const ok = await d.announce('web', { host: '127.0.0.1', port: 80, attributes: { zone: 'café 😀' } });
    expect((await d.resolve('web'))[0]?.attributes).toEqual({ zone: 'café 😀' });
    await ok.stop();
  });
});
