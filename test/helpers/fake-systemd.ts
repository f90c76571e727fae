// A fake systemd with the driver's interface, for the agent's reconciler
// logic only (every behaviour that depends on real systemd is tested against
// real systemd in lab nodes). It records every call, so tests can assert on
// reloads and ordering, and can be told to fail a unit's start. Jobs run as
// systemd's do: queued at once (activating, deactivating), ended a moment
// later, or for a `slow` unit's start only when the test calls finish(); a
// job queued for a unit with a job of the other kind replaces it.
import { EventEmitter } from 'node:events';
import type { JobResult, SystemdDriver, UnitStatus } from '../../src/systemd/types.js';
import { hashText } from '../../src/unit/hash.js';

interface FakeUnit {
  file: string | undefined;
  linked: boolean;
  enabled: boolean;
  loadedText: string | undefined;
  activeState: string;
  subState: string;
}

export class FakeSystemd implements SystemdDriver {
  readonly calls: string[] = [];
  readonly units = new Map<string, FakeUnit>();
  /** Units whose start fails (ExecStart exits non-zero). */
  readonly failing = new Set<string>();
  /** Units whose start job stays pending (activating) until finish(). */
  readonly slow = new Set<string>();
  private readonly jobs = new Map<string, { kind: 'start' | 'stop'; waiters: ((r: JobResult) => void)[] }>();
  private readonly events = new EventEmitter();
  private readonly watched = new Set<string>();

  private unit(name: string): FakeUnit {
    let u = this.units.get(name);
    if (!u) {
      u = { file: undefined, linked: false, enabled: false, loadedText: undefined, activeState: 'inactive', subState: 'dead' };
      this.units.set(name, u);
    }
    return u;
  }

  async writeUnitFile(name: string, text: string): Promise<{ changed: boolean }> {
    this.calls.push(`write ${name}`);
    const u = this.unit(name);
    const changed = u.file !== text;
    u.file = text;
    return { changed };
  }
  async removeUnitFile(name: string): Promise<void> {
    this.calls.push(`remove ${name}`);
    const u = this.unit(name);
    u.file = undefined;
    u.linked = false;
  }
  async listUnitFiles(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const [name, u] of this.units) if (u.file !== undefined) out.set(name, hashText(u.file));
    return out;
  }
  async linkUnitFiles(names: readonly string[]): Promise<void> {
    this.calls.push(`link ${names.join(',')}`);
    for (const n of names) {
      const u = this.unit(n);
      if (u.file === undefined) throw new Error(`no file for ${n}`);
      u.linked = true;
      // systemd loads a unit it did not know when it is first used
      if (u.loadedText === undefined) u.loadedText = u.file;
    }
  }
  async enableUnitFiles(names: readonly string[]): Promise<void> {
    this.calls.push(`enable ${names.join(',')}`);
    for (const n of names) this.unit(n).enabled = true;
  }
  async disableUnitFiles(names: readonly string[]): Promise<void> {
    this.calls.push(`disable ${names.join(',')}`);
    for (const n of names) this.unit(n).enabled = false;
  }
  async reload(): Promise<void> {
    this.calls.push('reload');
    for (const u of this.units.values()) u.loadedText = u.linked ? u.file : undefined;
  }
  async startUnit(name: string): Promise<JobResult> {
    this.calls.push(`start ${name}`);
    if (!this.unit(name).linked) return 'invalid';
    return this.job(name, 'start');
  }
  async stopUnit(name: string): Promise<JobResult> {
    this.calls.push(`stop ${name}`);
    return this.job(name, 'stop');
  }
  async queueStart(name: string): Promise<string> {
    this.calls.push(`start ${name}`);
    // systemd refuses to queue a job for a unit it cannot load
    if (!this.unit(name).linked) throw new Error(`Unit ${name} not found.`);
    void this.job(name, 'start');
    return `/job/${name}`;
  }
  async queueStop(name: string): Promise<string> {
    this.calls.push(`stop ${name}`);
    void this.job(name, 'stop');
    return `/job/${name}`;
  }

  /** Ends the unit's pending job (a slow start: the unit becomes active, or failed if failing). */
  finish(name: string): void {
    const job = this.jobs.get(name);
    if (!job) return;
    this.jobs.delete(name);
    let result: JobResult = 'done';
    if (job.kind === 'stop') this.set(name, 'inactive', 'dead');
    else if (this.failing.has(name)) {
      this.set(name, 'failed', 'failed');
      result = 'failed';
    } else this.set(name, 'active', 'running');
    for (const w of job.waiters) w(result);
  }

  private job(name: string, kind: 'start' | 'stop'): Promise<JobResult> {
    const u = this.unit(name);
    const pending = this.jobs.get(name);
    if (pending?.kind === kind) return new Promise((resolve) => pending.waiters.push(resolve));
    if (pending) {
      // mode "replace": the other job is canceled
      this.jobs.delete(name);
      for (const w of pending.waiters) w('canceled');
    }
    if (kind === 'start' ? u.activeState === 'active' : u.activeState === 'inactive' || u.activeState === 'failed') {
      return Promise.resolve('done');
    }
    this.set(name, kind === 'start' ? 'activating' : 'deactivating', kind === 'start' ? 'start' : 'stop-sigterm');
    const job = { kind, waiters: [] as ((r: JobResult) => void)[] };
    this.jobs.set(name, job);
    const result = new Promise<JobResult>((resolve) => job.waiters.push(resolve));
    if (kind === 'stop' || !this.slow.has(name)) setImmediate(() => this.jobs.get(name) === job && this.finish(name));
    return result;
  }
  async resetFailedUnit(name: string): Promise<void> {
    this.calls.push(`reset-failed ${name}`);
    const u = this.unit(name);
    if (u.activeState === 'failed') this.set(name, 'inactive', 'dead');
  }
  async listUnitsByNames(names: readonly string[]): Promise<UnitStatus[]> {
    return names.map((name) => {
      const u = this.units.get(name);
      return {
        name,
        loadState: u?.linked ? 'loaded' : 'not-found',
        activeState: u?.activeState ?? 'inactive',
        subState: u?.subState ?? 'dead',
      };
    });
  }
  async needsReload(name: string): Promise<boolean> {
    const u = this.units.get(name);
    return !!u && u.linked && u.loadedText !== u.file;
  }
  onStatus(handler: (status: UnitStatus) => void): () => void {
    this.events.on('status', handler);
    return () => this.events.off('status', handler);
  }
  async watch(names: readonly string[]): Promise<void> {
    for (const n of names) this.watched.add(n);
  }
  unwatch(names: readonly string[]): void {
    for (const n of names) this.watched.delete(n);
  }
  onReconnect(handler: () => void): () => void {
    this.events.on('reconnect', handler);
    return () => this.events.off('reconnect', handler);
  }
  async close(): Promise<void> {}

  /** The unit exits by itself (as a crash would). */
  crash(name: string): void {
    this.set(name, 'failed', 'failed');
  }

  running(): string[] {
    return [...this.units].filter(([, u]) => u.activeState === 'active').map(([n]) => n).sort();
  }

  private set(name: string, activeState: string, subState: string): void {
    const u = this.unit(name);
    u.activeState = activeState;
    u.subState = subState;
    if (this.watched.has(name)) {
      this.events.emit('status', { name, loadState: u.linked ? 'loaded' : 'not-found', activeState, subState });
    }
  }
}
