// flotilla's own routes for units this machine runs, served by the agent's
// machine (flotctl status and journal reach them through the apiUrl the
// machine advertises):
//   GET /flotilla/v1/units/{name}/status   systemctl status, as text
//   GET /flotilla/v1/units/{name}/journal  journalctl -u, streamed as text
// The commands run with argument arrays (no shell), on validated unit names.
import { onlyParams } from './query.js';
import { spawn } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { validateUnitName } from '../unit/index.js';
import type { Registry } from '../registry/index.js';
import { ApiError, badRequest, notFound } from './errors.js';

export const LOCAL_PREFIX = '/flotilla/v1';
/** journalctl's -o formats. */
export const JOURNAL_OUTPUTS = [
  'short',
  'short-full',
  'short-iso',
  'short-iso-precise',
  'short-precise',
  'short-monotonic',
  'short-delta',
  'short-unix',
  'verbose',
  'export',
  'json',
  'json-pretty',
  'json-sse',
  'json-seq',
  'cat',
  'with-unit',
] as const;
export const MAX_JOURNAL_LINES = 100_000;
const STATUS_TIMEOUT_MS = 10_000;
const MAX_STATUS_BYTES = 4 * 1024 * 1024;

export interface LocalCommands {
  /** Path or name of systemctl (tests give a stand-in). */
  systemctl?: string | undefined;
  journalctl?: string | undefined;
}

/** A streamed answer: headers are written, then start writes the body and ends it. */
export interface StreamReply {
  type: string;
  start(res: ServerResponse): void;
}

export interface LocalReply {
  status: number;
  text?: { body: string; type: string };
  stream?: StreamReply;
}

const TEXT = 'text/plain; charset=utf-8';

export class LocalUnitHandlers {
  private readonly systemctl: string;
  private readonly journalctl: string;

  constructor(
    private readonly registry: Registry,
    private readonly machineId: string | undefined,
    commands: LocalCommands = {},
  ) {
    this.systemctl = commands.systemctl ?? 'systemctl';
    this.journalctl = commands.journalctl ?? 'journalctl';
  }

  /**
   * Whether flotilla runs the unit on this machine: the engine's decision,
   * or (global units) this machine's state report. Read from etcd key by
   * key, not from the cache, so a status or journal request does not start
   * the cluster-wide view.
   */
  async isLocal(name: string): Promise<boolean> {
    const id = this.machineId;
    if (id === undefined) return false;
    const k = this.registry.keys;
    const [unit, decision, state] = await Promise.all([k.unit(name), k.decision(id, name), k.state(name, id)].map((key) => this.registry.getRaw(key)));
    return unit !== undefined && (decision !== undefined || state !== undefined);
  }

  async route(method: string, name: string, action: string, query: URLSearchParams): Promise<LocalReply> {
    if (action !== 'status' && action !== 'journal') throw notFound(`no such resource: ${action}`);
    if (method !== 'GET') throw new ApiError(405, 'method not allowed; use GET', { Allow: 'GET' });
    validateUnitName(name);
    const opts = action === 'journal' ? journalOptions(query) : (onlyParams(query, []), undefined);
    if (!(await this.isLocal(name))) throw notFound(`unit ${name} is not flotilla's on machine ${this.machineId ?? '(unknown)'}`);
    if (opts === undefined) return { status: 200, text: { body: await this.status(name), type: TEXT } };
    return { status: 200, stream: this.journal(name, opts) };
  }

  private status(name: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.systemctl, ['status', '-l', '--no-pager', '--full', name], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' },
        timeout: STATUS_TIMEOUT_MS,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_STATUS_BYTES) out.push(c);
      });
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e) => reject(new ApiError(500, `cannot run ${this.systemctl}: ${e.message}`)));
      child.on('close', (code, signal) => {
        const text = Buffer.concat(out).toString('utf8');
        // 0: active; 3: not active (stopped, failed): both are answers.
        if (code === 0 || code === 3) resolve(text);
        else {
          const why = Buffer.concat(err).toString('utf8').trim().split('\n')[0] ?? '';
          reject(new ApiError(500, `systemctl status ${name} ${signal ? `was killed (${signal})` : `exited ${code}`}${why ? `: ${why}` : ''}`));
        }
      });
    });
  }

  private journal(name: string, o: JournalOptions): StreamReply {
    const args = ['-u', name, '-n', String(o.lines), ...(o.follow ? ['-f'] : []), '-o', o.output, '--no-pager'];
    const cmd = this.journalctl;
    return {
      type: TEXT,
      start(res) {
        const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } });
        let done = false;
        const stop = (): void => {
          if (done) return;
          done = true;
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        };
        // The client went away (or the server closes): journalctl goes too.
        res.on('close', stop);
        child.stdout.pipe(res, { end: false });
        child.stderr.pipe(res, { end: false });
        child.on('error', (e) => {
          if (!res.writableEnded) res.end(`flotillad: cannot run ${cmd}: ${e.message}\n`);
          done = true;
        });
        child.on('close', () => {
          done = true;
          if (!res.writableEnded) res.end();
        });
      },
    };
  }
}

export interface JournalOptions {
  lines: number;
  follow: boolean;
  output: string;
}

function journalOptions(query: URLSearchParams): JournalOptions {
  onlyParams(query, ['lines', 'follow', 'output']);
  const rawLines = query.get('lines') ?? '10';
  if (!/^\d{1,6}$/.test(rawLines) || Number(rawLines) > MAX_JOURNAL_LINES) throw badRequest(`lines must be a whole number from 0 to ${MAX_JOURNAL_LINES}`);
  const rawFollow = query.get('follow') ?? 'false';
  if (rawFollow !== 'true' && rawFollow !== 'false') throw badRequest('follow must be true or false');
  const output = query.get('output') ?? 'short';
  if (!(JOURNAL_OUTPUTS as readonly string[]).includes(output)) throw badRequest(`output must be one of ${JOURNAL_OUTPUTS.join(', ')}`);
  return { lines: Number(rawLines), follow: rawFollow === 'true', output };
}

