// Running a program to completion with its output captured: the host-side
// tools the lab needs (mount, umount, nsenter) and commands inside a node.
// Arguments are always an array; nothing goes through a shell.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { childrenOf, signal } from './proc.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the program's standard input, which is then closed. */
  input?: string;
  /** Kill the program (and its direct children) after this long; default 30 s. */
  timeoutMs?: number;
  /** Environment; the caller's when absent. */
  env?: NodeJS.ProcessEnv;
}

export class RunTimeoutError extends Error {
  override readonly name = 'RunTimeoutError';
}

/**
 * Runs argv[0] with the rest as arguments and resolves with its exit code
 * and output; a program killed by a signal reports 128 + the signal number.
 * Rejects only when the program cannot be started or times out.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('run: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A program that exits without reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // nsenter forks the real command into the node; it would outlive nsenter.
      if (child.pid !== undefined) {
        for (const grandchild of childrenOf(child.pid)) signal(grandchild, 'SIGKILL');
      }
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(new RunTimeoutError(`${argv.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr.trim()}`));
        return;
      }
      resolve({ code: code ?? 128 + signalNumber(sig), stdout, stderr });
    });
  });
}

/** Like run(), but rejects unless the program exits with code 0. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(argv, opts);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} exited with ${result.code}: ${(result.stderr || result.stdout).trim()}`);
  }
  return result;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig === null ? 0 : constants.signals[sig];
}
