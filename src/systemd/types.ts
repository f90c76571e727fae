// The systemd driver as the agent sees it: unit files, their links into
// systemd, jobs and unit states. The D-Bus implementation is dbus.ts; the
// agent's pure tests use a fake with this same interface.

/** A unit's state as systemd reports it (ListUnitsByNames, PropertiesChanged). */
export interface UnitStatus {
  name: string;
  /** loaded, not-found, bad-setting, error, masked, … */
  loadState: string;
  /** active, reloading, inactive, failed, activating, deactivating, … */
  activeState: string;
  /** The unit type's own state: running, dead, exited, failed, … */
  subState: string;
}

/** How a job ended, as JobRemoved says. */
export type JobResult = 'done' | 'failed' | 'timeout' | 'canceled' | 'dependency' | 'skipped' | 'invalid';

export const JOB_RESULTS: readonly JobResult[] = ['done', 'failed', 'timeout', 'canceled', 'dependency', 'skipped', 'invalid'];

export interface SystemdDriver {
  /** Writes (or rewrites) the unit file; `changed` is false when the content was already identical. */
  writeUnitFile(name: string, text: string): Promise<{ changed: boolean }>;
  /** Removes the unit file (and its link); missing is fine. */
  removeUnitFile(name: string): Promise<void>;
  /**
   * The unit files in the folder, name → SHA-1 of the content (src/unit
   * hashText, the registry's hash of canonical text): what an agent wrote
   * before it restarted.
   */
  listUnitFiles(): Promise<Map<string, string>>;
  /** LinkUnitFiles(runtime=true, force=true) for the written files, in one call. */
  linkUnitFiles(names: readonly string[]): Promise<void>;
  /** EnableUnitFiles / DisableUnitFiles (runtime, force), one call each for many units. */
  enableUnitFiles(names: readonly string[]): Promise<void>;
  disableUnitFiles(names: readonly string[]): Promise<void>;
  /** One daemon-reload. */
  reload(): Promise<void>;
  /** StartUnit/StopUnit mode "replace", resolving with the job's result from JobRemoved. */
  startUnit(name: string): Promise<JobResult>;
  stopUnit(name: string): Promise<JobResult>;
  /**
   * StartUnit/StopUnit mode "replace", resolving with the job's object path
   * as soon as systemd has queued the job (its reply, bounded by the call
   * timeout), not when the job ends: how it ends shows in the unit's status
   * (onStatus). The agent's passes use these, so a slow job holds up no
   * other unit (test/e2e/agent.test.ts, "a slow unit ...").
   */
  queueStart(name: string): Promise<string>;
  queueStop(name: string): Promise<string>;
  resetFailedUnit(name: string): Promise<void>;
  /** ListUnitsByNames: units systemd does not know come back with loadState 'not-found'. */
  listUnitsByNames(names: readonly string[]): Promise<UnitStatus[]>;
  /** Whether a loaded unit's file changed on disk since systemd loaded it (NeedDaemonReload property). */
  needsReload(name: string): Promise<boolean>;
  /** Called with a unit's new status whenever systemd signals a change for a unit being watched. */
  onStatus(handler: (status: UnitStatus) => void): () => void;
  /** Start watching these units' state signals (idempotent); stop watching others with unwatch. */
  watch(names: readonly string[]): Promise<void>;
  unwatch(names: readonly string[]): void;
  /** Emitted after the bus connection was lost and re-established (the agent then resyncs). */
  onReconnect(handler: () => void): () => void;
  /** `systemctl status`-like text and journal lines are served by other code later; not needed now. */
  close(): Promise<void>;
}
