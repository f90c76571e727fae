// One command at a time changes a lab (up, add, kill, stop): a lock file in
// the lab's folder naming its holder by PID and start time, so a lock left
// by a crashed command is recognised as stale and taken over.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, startTime } from './proc.js';

export async function withLabLock<T>(dir: string, fn: () => Promise<T>, waitMs = 60_000): Promise<T> {
  const file = path.join(dir, 'lab.lock');
  const me = JSON.stringify({ pid: process.pid, start: startTime(process.pid) });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(file, me + '\n', { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(file);
    // An unreadable lock is being written right now, unless it is old.
    const unreadableAndOld = holder === undefined && Date.now() - mtimeMs(file) > 2_000;
    if (unreadableAndOld || (holder !== undefined && (!isAlive(holder.pid) || startTime(holder.pid) !== holder.start))) {
      rmSync(file, { force: true }); // stale: its command died holding it
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`another flotilla-lab command (pid ${holder?.pid ?? '?'}) is changing the lab in ${dir}; try again when it is done`);
    }
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    // Only our own lock: down may have removed the folder meanwhile.
    if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
  }
}

function readHolder(file: string): { pid: number; start: number | undefined } | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; start?: unknown };
    if (typeof value.pid !== 'number') return undefined;
    return { pid: value.pid, start: typeof value.start === 'number' ? value.start : undefined };
  } catch {
    return undefined;
  }
}

function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
