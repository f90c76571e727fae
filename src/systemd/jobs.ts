// Jobs systemd is running for us, by job object path, until JobRemoved says
// how each ended. A waiter is registered from the StartUnit/StopUnit reply
// synchronously (BusConnection's onReply), so a JobRemoved right behind the
// reply always finds it. Several calls can get the same job back (systemd
// merges identical jobs); each of them gets the result.
import { JOB_RESULTS, type JobResult } from './types.js';

export type JobKind = 'start' | 'stop' | 'restart';

export interface PendingJob {
  path: string;
  unit: string;
  kind: JobKind;
}

interface Waiter extends PendingJob {
  resolve: (result: JobResult) => void;
  reject: (err: Error) => void;
}

export class JobTracker {
  private readonly waiters = new Map<string, Waiter[]>();

  /** Waits for the job at `path`; call synchronously from the call's reply. */
  expect(job: PendingJob): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(job.path) ?? [];
      list.push({ ...job, resolve, reject });
      this.waiters.set(job.path, list);
    });
  }

  /** From JobRemoved: settles the waiters of that job, if any are ours. */
  removed(path: string, result: string): void {
    this.settle(path, toJobResult(result));
  }

  settle(path: string, result: JobResult): void {
    const list = this.waiters.get(path);
    if (list === undefined) return;
    this.waiters.delete(path);
    for (const w of list) w.resolve(result);
  }

  /** Jobs still waited for (one entry per job path). */
  pending(): PendingJob[] {
    return [...this.waiters.values()].flatMap((list) => (list[0] ? [{ path: list[0].path, unit: list[0].unit, kind: list[0].kind }] : []));
  }

  failAll(err: Error): void {
    for (const list of this.waiters.values()) for (const w of list) w.reject(err);
    this.waiters.clear();
  }
}

export function toJobResult(result: string): JobResult {
  return (JOB_RESULTS as readonly string[]).includes(result) ? (result as JobResult) : 'failed';
}
