// A fake systemd with the driver's interface, for the agent's reconciler
// logic only (every behaviour that depends on real systemd is tested against
// real systemd in lab nodes). It records every call, so tests can assert on
// reloads and ordering, and can be told to fail a unit's start.
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
    const u = this.unit(name);
    if (!u.linked) return 'invalid';
    if (this.failing.has(name)) {
      this.set(name, 'failed', 'failed');
      return 'failed';
    }
    this.set(name, 'active', 'running');
    return 'done';
  }
  async stopUnit(name: string): Promise<JobResult> {
    this.calls.push(`stop ${name}`);
    this.set(name, 'inactive', 'dead');
    return 'done';
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
