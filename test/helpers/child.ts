// Child processes a test starts, killed by PID when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Runs a TypeScript file of this repository in its own node process (with
 * tsx's loader), with these arguments; stdout is a pipe, stderr inherited
 * unless `stderr: 'pipe'`.
 */
export function spawnTs(file: string, env: Record<string, string>, opts: { args?: readonly string[]; stderr?: 'pipe' | 'inherit' } = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, file), ...(opts.args ?? [])], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', opts.stderr ?? 'inherit'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Resolves when the child prints a line matching re. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`child did not print ${re} within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing ${re}`));
    });
  });
}

export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}
