// flotctl loads only what the command needs (docs/flotctl.md, Speed): runs
// flotctl in a child process with a module hook that records every module
// Node loads, and checks what was not loaded. No timings: the structure is
// what keeps the start short.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let dir = '';
let hook = '';

// Registered before flotctl starts; its load hook appends each module's URL to $LOAD_LOG.
const HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(
  "import { appendFileSync } from 'node:fs'; let file;" +
  "export function initialize(d) { file = d.file; }" +
  "export async function load(url, context, next) { appendFileSync(file, url + '\\\\n'); return next(url, context); }"),
  { data: { file: process.env.LOAD_LOG } });
`;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotctl-lazy-'));
  hook = path.join(dir, 'hook.mjs');
  writeFileSync(hook, HOOK);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The modules (repository-relative paths, or package names) flotctl loads for these arguments. */
function loaded(args: string[]): { code: number | null; stdout: string; modules: string[] } {
  const log = path.join(dir, `${args.join('_').replace(/[^\w.-]/g, '-')}.log`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOTCTL_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', hook, 'cli/flotctl.ts', ...args], {
    cwd: repo,
    env: { ...env, LOAD_LOG: log },
    encoding: 'utf8',
  });
  const urls = readFileSync(log, 'utf8').split('\n').filter((u) => u.startsWith('file://'));
  const modules = urls.map((u) => {
    const p = fileURLToPath(u);
    const pkg = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(p);
    return pkg ? pkg[1]!.replace('\\', '/') : path.relative(repo, p);
  });
  return { code: r.status, stdout: r.stdout, modules: [...new Set(modules)] };
}

const HEAVY = ['etcd3', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'dbus-next', 'cockatiel'];

describe('flotctl loads only what the command needs', () => {
  it('--version loads neither yargs, nor the commands, nor any client', () => {
    const r = loaded(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^flotctl version /);
    expect(r.modules).toContain('cli/flotctl/run.ts');
    for (const m of ['yargs', ...HEAVY, 'cli/flotctl/commands.ts', 'src/ctl/api-driver.ts']) expect(r.modules).not.toContain(m);
  });

  it('help loads yargs and the commands, but no command code and no client', () => {
    const r = loaded(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('list-units');
    expect(r.modules).toContain('yargs');
    expect(r.modules).toContain('cli/flotctl/commands.ts');
    const code = ['src/ctl/api-driver.ts', 'src/ctl/lifecycle.ts', 'src/ctl/remote.ts', 'src/ctl/drain.ts', 'src/ctl/etcd-driver.ts', 'src/registry/connection.ts', 'src/discovery/client.ts'];
    for (const m of [...HEAVY, ...code]) expect(r.modules).not.toContain(m);
  });

  it('a command with the API driver loads no etcd client', () => {
    const r = loaded(['--driver', 'api', '--endpoint', `unix://${dir}/none.sock`, 'list-units']);
    expect(r.code).toBe(1);
    expect(r.modules).toContain('src/ctl/api-driver.ts');
    for (const m of HEAVY) expect(r.modules).not.toContain(m);
  });

  it('a command with the etcd driver loads the etcd client as it runs (the hook sees it)', () => {
    const r = loaded(['--endpoint', 'http://127.0.0.1:1', '--request-timeout', '0.2', 'list-units']);
    expect(r.code).toBe(1);
    expect(r.modules).toContain('etcd3');
    expect(r.modules).toContain('src/ctl/etcd-driver.ts');
  });
});
