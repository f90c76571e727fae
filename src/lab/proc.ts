// Reading the host's /proc: which processes exist, who their children are,
// which PID namespace they live in. The lab identifies a node's processes by
// facts the kernel reports, never by name patterns, so it can end exactly
// the processes it started and nothing else.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** True while pid names a process that has not exited (zombies count as gone). */
export function isAlive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** The one-letter state of pid from /proc/<pid>/stat, or undefined if there is no such process. */
export function procState(pid: number): string | undefined {
  const stat = readStat(pid);
  return stat?.[0];
}

/**
 * The start time of pid in clock ticks since boot (field 22 of stat). With
 * the PID it names one process for the machine's uptime: a reused PID has a
 * different start time.
 */
export function startTime(pid: number): number | undefined {
  const stat = readStat(pid);
  const field = stat?.[19];
  return field === undefined ? undefined : Number(field);
}

/** The parent PID of pid, or undefined. */
export function parentPid(pid: number): number | undefined {
  const stat = readStat(pid);
  const field = stat?.[1];
  return field === undefined ? undefined : Number(field);
}

/** The command line of pid as its argument vector ([] if gone or a kernel thread). */
export function cmdline(pid: number): string[] {
  const raw = readText(`/proc/${pid}/cmdline`);
  if (!raw) return [];
  return raw.replace(/\0$/, '').split('\0');
}

/** The comm (short executable name) of pid. */
export function comm(pid: number): string | undefined {
  return readText(`/proc/${pid}/comm`)?.trimEnd();
}

/** The direct children of pid, read from every thread's children list. */
export function childrenOf(pid: number): number[] {
  const children = new Set<number>();
  for (const tid of listDir(`/proc/${pid}/task`)) {
    const text = readText(`/proc/${pid}/task/${tid}/children`) ?? '';
    for (const word of text.split(/\s+/)) {
      if (word) children.add(Number(word));
    }
  }
  return [...children];
}

/** The PID namespace of pid as the kernel names it ("pid:[4026532xxx]"). */
export function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** Every PID on the host. */
export function allPids(): number[] {
  return listDir('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Every live process in the given PID namespace (as named by pidNamespace()). */
export function pidsInNamespace(ns: string): number[] {
  return allPids().filter((pid) => pidNamespace(pid) === ns && isAlive(pid));
}

/** Resident memory of pid in bytes (VmRSS), 0 if gone or a kernel thread. */
export function rssBytes(pid: number): number {
  const status = readText(`/proc/${pid}/status`) ?? '';
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Waits until pid has exited; false if it is still alive after timeoutMs. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

// Fields of /proc/<pid>/stat after the parenthesised comm (which may itself
// hold spaces and parentheses): [0] is the state, [1] the parent PID, ...
function readStat(pid: number): string[] | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  const close = text.lastIndexOf(')');
  return text.slice(close + 2).split(' ');
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
