// flotctl writing to a pipe, as in `flotctl cat big.service | wc -c`: the
// real process (node --import tsx cli/flotctl.ts) with stdout a pipe read by
// a deliberately slow reader gets out all of its output before it exits,
// and a reader that goes away early ends it quietly.
import { type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseUnit } from '../../../src/unit/unit.js';
import { killChild, spawnTs } from '../../helpers/child.js';
import { useEtcd } from '../../helpers/etcd.js';
import { cli, onCleanup, unitDir, type Cli } from './harness.js';

const etcd = useEtcd();
const MiB = 1024 * 1024;

interface Piped {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs flotctl with stdout a pipe whose reader pauses after every chunk, so
 * the pipe stays full and flotctl has output queued when its command ends.
 * With `closeAfterFirstChunk`, the reader closes the pipe after its first chunk.
 */
function piped(c: Cli, args: string[], opts: { closeAfterFirstChunk?: boolean } = {}): Promise<Piped> {
  const child: ChildProcess = spawnTs('cli/flotctl.ts', {}, { args: ['--endpoint', etcd.endpoints.join(','), '--etcd-key-prefix', c.prefix, ...args], stderr: 'pipe' });
  onCleanup(() => killChild(child));
  const stdout = child.stdout!;
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  stdout.on('data', (d: Buffer) => {
    chunks.push(d);
    if (opts.closeAfterFirstChunk) {
      stdout.destroy();
      return;
    }
    stdout.pause();
    setTimeout(() => stdout.resume(), 5);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flotctl ${args.join(' ')} did not exit`)), 60_000);
    // 'close': the process has exited and its stdout and stderr are read to the end.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr });
    });
  });
}

/** `count` launched units with long names and descriptions: list-units and list-unit-files print over 1 MiB of JSON. */
async function manyUnits(c: Cli, count: number): Promise<void> {
  const pad = 'p'.repeat(150);
  const units = Array.from({ length: count }, (_, i) => {
    const name = `pipe-${pad}-${String(i).padStart(5, '0')}.service`;
    const p = parseUnit(name, `[Unit]\nDescription=unit ${i} ${'d'.repeat(300)}\n\n[Service]\nExecStart=/bin/sleep infinity\n`);
    return { name, text: p.text, hash: p.hash, global: p.requirements.global };
  });
  await c.registry.createUnits(units, { desiredState: 'launched' });
}

function expectComplete(r: Piped): void {
  expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
}

describe('flotctl output through a pipe', () => {
  it('cat writes the whole unit file to a slow reader, as text and as JSON', async () => {
    const c = cli(etcd.endpoints);
    // A file near the size limit (512 KiB), eight times a pipe's 64 KiB
    // buffer, stored as it is (no comments, nothing to canonicalize); quotes
    // double in JSON, so `cat -o json` prints about 1 MiB.
    let text = '[Unit]\nDescription=big\n\n[Service]\nExecStart=/bin/sleep infinity\n';
    for (let i = 0; text.length < 511 * 1024; i++) text += `Environment=X${i}=${'"'.repeat(1000)}\n`;
    const files = unitDir({ 'big.service': text });
    expect((await c.run(['submit', 'big'], { cwd: files.dir })).code).toBe(0);

    const plain = await piped(c, ['cat', 'big']);
    expectComplete(plain);
    expect(plain.stdout.length).toBeGreaterThan(510 * 1024);
    expect(plain.stdout.equals(Buffer.from(text))).toBe(true);

    const json = await piped(c, ['cat', '-o', 'json', 'big']);
    expectComplete(json);
    expect(json.stdout.length).toBeGreaterThan(1000 * 1024);
    expect((JSON.parse(json.stdout.toString()) as { text: string }).text).toBe(text);
  });

  it('list-units -o json and list-unit-files (JSON and table) write over 1 MiB to a slow reader', async () => {
    const c = cli(etcd.endpoints);
    await manyUnits(c, 3000);
    for (const args of [['list-units', '-o', 'json'], ['list-unit-files', '-o', 'json']]) {
      const r = await piped(c, args);
      expectComplete(r);
      expect(r.stdout.length).toBeGreaterThan(MiB);
      const parsed = JSON.parse(r.stdout.toString()) as { units?: unknown[]; unitFiles?: unknown[] };
      expect((parsed.units ?? parsed.unitFiles)?.length).toBe(3000);
    }
    const table = await piped(c, ['list-unit-files', '--no-legend']);
    expectComplete(table);
    expect(table.stdout.length).toBeGreaterThan(MiB / 2);
    expect(table.stdout.toString().split('\n')).toHaveLength(3001);
  });

  it('ends quietly, with the status of a process killed by SIGPIPE, when the reader closes the pipe', async () => {
    const c = cli(etcd.endpoints);
    await manyUnits(c, 3000);
    const r = await piped(c, ['list-unit-files', '-o', 'json'], { closeAfterFirstChunk: true });
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.stdout.length).toBeLessThan(MiB);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 141, signal: null, stderr: '' });
  });
});
