// The systemd driver over D-Bus (org.freedesktop.systemd1). One bus
// connection with four match rules (JobRemoved, Reloading, PropertiesChanged
// of every unit object, systemd's name owner) and one Subscribe, so unit
// states arrive as signals rather than by polling; a slow resync of the
// watched units is only the safety net. A lost connection is re-established
// with the shared jittered backoff (src/retry.ts), after which jobs still waited for are settled, the watched
// units are listed again and onReconnect handlers run.
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../retry.js';
import { silentLogger, type Logger } from '../log.js';
import { BusConnection, type MethodCall, type Signal } from './bus.js';
import { BusClosedError, SystemdError } from './errors.js';
import { JobTracker, type JobKind } from './jobs.js';
import { UNIT_PATH_PREFIX, unitNameOfPath } from './object-paths.js';
import { UnitFileDir } from './unit-files.js';
import { UnitStateCache } from './unit-state.js';
import { asRecord, asString } from './values.js';
import type { JobResult, SystemdDriver, UnitStatus } from './types.js';

export interface DbusDriverOptions {
  /** D-Bus address; default the system bus. Tests pass `unix:path=/proc/<node init pid>/root/run/dbus/system_bus_socket` to reach a lab node's bus from the host. */
  busAddress?: string;
  /** Folder (as systemd sees it) for unit files; default /run/flotilla/units. */
  unitDir?: string;
  /** Where `/` of the machine systemd runs on is, from this process's view; default '/'. Tests use /proc/<init pid>/root so files land inside the node. */
  rootDir?: string;
  logger?: Logger;
  /** How often the watched units are listed as a safety net for lost signals; default 60 s. */
  resyncMs?: number;
  /** How long a method call may wait for its reply; default 60 s. */
  callTimeoutMs?: number;
  /** How long connecting, and finding systemd on the bus, may take; default 15 s. */
  connectTimeoutMs?: number;
}

export const DEFAULT_UNIT_DIR = '/run/flotilla/units';
export const SYSTEM_BUS_ADDRESS = 'unix:path=/run/dbus/system_bus_socket';

/** Connects to systemd, subscribes to its signals and returns the driver. */
export async function connectSystemd(opts: DbusDriverOptions = {}): Promise<DbusSystemd> {
  const driver = new DbusSystemd(opts);
  await driver.connect();
  return driver;
}

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const PROPERTIES = 'org.freedesktop.DBus.Properties';

const MATCH_RULES = [
  `type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER}',member='JobRemoved'`,
  `type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER}',member='Reloading'`,
  // One rule for every unit's state, rather than a rule or proxy per unit.
  `type='signal',sender='${SYSTEMD}',interface='${PROPERTIES}',member='PropertiesChanged',path_namespace='${UNIT_PATH_PREFIX}',arg0='${UNIT}'`,
  // systemd leaving and re-joining the bus (daemon-reexec, a bus restart).
  `type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${SYSTEMD}'`,
];

export class DbusSystemd implements SystemdDriver {
  readonly busAddress: string;
  private readonly files: UnitFileDir;
  private readonly logger: Logger;
  private readonly jobs = new JobTracker();
  private readonly states: UnitStateCache;
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly callTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly resyncMs: number;
  private conn: BusConnection | undefined;
  // Callers waiting for a connection while there is none.
  private waiting: Array<{ resolve: (c: BusConnection) => void; reject: (e: Error) => void }> = [];
  private systemdOwner = '';
  private resyncTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private reconnecting: Promise<void> | undefined;
  // Aborted by close(): ends the reconnect loop's waits at once.
  private readonly closed = new AbortController();

  /** @internal connectSystemd() makes drivers. */
  constructor(opts: DbusDriverOptions) {
    this.busAddress = opts.busAddress ?? process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? SYSTEM_BUS_ADDRESS;
    this.files = new UnitFileDir(opts.rootDir ?? '/', opts.unitDir ?? DEFAULT_UNIT_DIR);
    this.logger = opts.logger ?? silentLogger;
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.resyncMs = opts.resyncMs ?? 60_000;
    this.states = new UnitStateCache((name) => this.loadStateOf(name), this.logger);
  }

  /** @internal The first connection; throws when systemd cannot be reached in time. */
  async connect(): Promise<void> {
    this.adopt(await this.open(Date.now() + this.connectTimeoutMs));
    this.resyncTimer = setInterval(() => void this.resync('timer'), this.resyncMs);
    this.resyncTimer.unref();
  }

  // ---- unit files -------------------------------------------------------

  writeUnitFile(name: string, text: string): Promise<{ changed: boolean }> {
    return this.files.write(name, text);
  }

  removeUnitFile(name: string): Promise<void> {
    return this.files.remove(name);
  }

  listUnitFiles(): Promise<Map<string, string>> {
    return this.files.list();
  }

  async linkUnitFiles(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const paths = names.map((n) => this.files.systemdPath(n));
    await this.manager('LinkUnitFiles', 'asbb', [paths, true, true]);
  }

  async enableUnitFiles(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.manager('EnableUnitFiles', 'asbb', [[...names], true, true]);
  }

  async disableUnitFiles(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.manager('DisableUnitFiles', 'asb', [[...names], true]);
  }

  async reload(): Promise<void> {
    // systemd answers Reload once the reload is over.
    await this.manager('Reload', '', []);
  }

  // ---- jobs and states --------------------------------------------------

  startUnit(name: string): Promise<JobResult> {
    return this.job('StartUnit', name, 'start');
  }

  stopUnit(name: string): Promise<JobResult> {
    return this.job('StopUnit', name, 'stop');
  }

  queueStart(name: string): Promise<string> {
    return this.queue('StartUnit', name);
  }

  queueStop(name: string): Promise<string> {
    return this.queue('StopUnit', name);
  }

  /** RestartUnit mode "replace": stops the unit if it runs, then starts it. */
  restartUnit(name: string): Promise<JobResult> {
    return this.job('RestartUnit', name, 'restart');
  }

  async resetFailedUnit(name: string): Promise<void> {
    try {
      await this.manager('ResetFailedUnit', 's', [name]);
    } catch (err) {
      // Nothing to reset on a unit systemd has let go of.
      if (!(err instanceof SystemdError && err.dbusName === `${SYSTEMD}.NoSuchUnit`)) throw err;
    }
  }

  async listUnitsByNames(names: readonly string[]): Promise<UnitStatus[]> {
    if (names.length === 0) return [];
    const [rows] = await this.manager('ListUnitsByNames', 'as', [[...names]]);
    if (!Array.isArray(rows)) throw new SystemdError('ListUnitsByNames: unexpected reply');
    return rows.map((row: unknown) => {
      const [name, , loadState, activeState, subState] = Array.isArray(row) ? (row as unknown[]) : [];
      return {
        name: asString(name, 'ListUnitsByNames name'),
        loadState: asString(loadState, 'ListUnitsByNames load state'),
        activeState: asString(activeState, 'ListUnitsByNames active state'),
        subState: asString(subState, 'ListUnitsByNames sub state'),
      };
    });
  }

  async needsReload(name: string): Promise<boolean> {
    // GetUnit, not a property read on the computed path: that would load a
    // unit systemd does not have, and a unit not loaded needs no reload.
    let path: string;
    try {
      const [p] = await this.manager('GetUnit', 's', [name]);
      path = asString(p, 'GetUnit path');
    } catch (err) {
      if (err instanceof SystemdError && err.dbusName === `${SYSTEMD}.NoSuchUnit`) return false;
      throw err;
    }
    return (await this.property(path, UNIT, 'NeedDaemonReload')) === true;
  }

  onStatus(handler: (status: UnitStatus) => void): () => void {
    return this.states.onStatus(handler);
  }

  async watch(names: readonly string[]): Promise<void> {
    const added = this.states.add(names);
    if (added.length === 0) return;
    for (const status of await this.listUnitsByNames(added)) this.states.observed(status);
  }

  unwatch(names: readonly string[]): void {
    this.states.remove(names);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => this.reconnectHandlers.delete(handler);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.closed.abort();
    clearInterval(this.resyncTimer);
    const err = new BusClosedError('systemd driver closed');
    this.jobs.failAll(err);
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.conn?.close();
    this.conn = undefined;
    await this.reconnecting?.catch(() => undefined);
  }

  // ---- calls --------------------------------------------------------------

  // A job call: the waiter for its JobRemoved is registered from the reply,
  // before the bus reads the next message.
  private async job(member: string, name: string, kind: JobKind): Promise<JobResult> {
    let result: Promise<JobResult> | undefined;
    await this.call(
      { destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member, signature: 'ss', body: [name, 'replace'] },
      (body) => {
        result = this.jobs.expect({ path: asString(body[0], `${member} job path`), unit: name, kind });
      },
    );
    if (result === undefined) throw new SystemdError(`${member} ${name}: no job in the reply`);
    return result;
  }

  // A job call nobody waits on: no JobRemoved waiter is kept for it.
  private async queue(member: string, name: string): Promise<string> {
    const [path] = await this.manager(member, 'ss', [name, 'replace']);
    return asString(path, `${member} job path`);
  }

  private manager(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    return this.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member, signature, body });
  }

  private async property(path: string, iface: string, name: string): Promise<unknown> {
    const [value] = await this.call({ destination: SYSTEMD, path, interface: PROPERTIES, member: 'Get', signature: 'ss', body: [iface, name] });
    return value;
  }

  private async loadStateOf(name: string): Promise<string> {
    const [path] = await this.manager('GetUnit', 's', [name]);
    return asString(await this.property(asString(path, 'GetUnit path'), UNIT, 'LoadState'), 'LoadState');
  }

  // A call lost with its connection is made once more on the next one:
  // every call the driver makes is idempotent (start and stop in mode
  // "replace", links and enables with force, reload, reads).
  private async call(spec: MethodCall, onReply?: (body: unknown[]) => void): Promise<unknown[]> {
    for (let attempt = 1; ; attempt++) {
      const conn = await this.connection();
      try {
        return await conn.call(spec, { onReply, timeoutMs: this.callTimeoutMs });
      } catch (err) {
        if (!(err instanceof BusClosedError) || this.closing || attempt >= 2) throw err;
        this.logger.debug('call lost with the connection; making it again', { member: spec.member });
      }
    }
  }

  // The live connection, or the next one (within the call timeout) while reconnecting.
  private connection(): Promise<BusConnection> {
    if (this.closing) return Promise.reject(new BusClosedError('systemd driver closed'));
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn);
    return new Promise((resolve, reject) => {
      const entry = {
        resolve: (c: BusConnection) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== entry);
        reject(new BusClosedError(`no D-Bus connection to systemd at ${this.busAddress} within ${this.callTimeoutMs} ms`));
      }, this.callTimeoutMs);
      this.waiting.push(entry);
    });
  }

  // ---- connection lifecycle -----------------------------------------------

  // Opens a connection, adds the match rules, waits for systemd on the bus
  // and subscribes. Match rules come first, so that nothing systemd signals
  // after Subscribe is missed.
  private async open(deadline: number): Promise<BusConnection> {
    const conn = await BusConnection.open(this.busAddress, {
      connectTimeoutMs: Math.max(1_000, deadline - Date.now()),
      callTimeoutMs: this.callTimeoutMs,
    });
    try {
      conn.setSignalHandler((signal) => this.onSignal(conn, signal));
      await Promise.all(MATCH_RULES.map((rule) => conn.addMatch(rule)));
      this.systemdOwner = await this.waitForSystemd(conn, deadline);
      await this.subscribe(conn);
      return conn;
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  private async waitForSystemd(conn: BusConnection, deadline: number): Promise<string> {
    for (;;) {
      try {
        const [owner] = await conn.call({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'GetNameOwner',
          signature: 's',
          body: [SYSTEMD],
        });
        return asString(owner, 'GetNameOwner');
      } catch (err) {
        if (!(err instanceof SystemdError) || Date.now() > deadline || this.closing) throw err;
        await sleep(100, undefined, { signal: this.closed.signal });
      }
    }
  }

  private async subscribe(conn: BusConnection): Promise<void> {
    try {
      await conn.call({ destination: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'Subscribe' });
    } catch (err) {
      if (!(err instanceof SystemdError && err.dbusName === `${SYSTEMD}.AlreadySubscribed`)) throw err;
    }
  }

  // Makes conn the live connection, and notices its end (also one that came
  // between opening and now: onClose then calls back at once).
  private adopt(conn: BusConnection): void {
    this.conn = conn;
    conn.onClose((err) => this.lost(conn, err));
  }

  private lost(conn: BusConnection, err: Error | undefined): void {
    if (this.closing || conn !== this.conn) return;
    this.conn = undefined;
    this.logger.warn('D-Bus connection to systemd lost; reconnecting', { address: this.busAddress, error: err?.message });
    const loop: Promise<void> = this.reconnect().finally(() => {
      if (this.reconnecting === loop) this.reconnecting = undefined;
    });
    this.reconnecting = loop;
  }

  private async reconnect(): Promise<void> {
    const backoff = new Backoff();
    for (let attempt = 1; !this.closing; attempt++) {
      let conn: BusConnection;
      try {
        conn = await this.open(Date.now() + this.connectTimeoutMs);
      } catch (err) {
        this.logger.debug('reconnect attempt failed', { attempt, error: String(err) });
        await backoff.wait(this.closed.signal);
        continue;
      }
      if (this.closing) {
        conn.close();
        return;
      }
      this.adopt(conn);
      this.logger.info('D-Bus connection to systemd re-established', { address: this.busAddress, attempt });
      for (const w of this.waiting.splice(0)) w.resolve(conn);
      await this.recover('reconnect');
      return;
    }
  }

  // After signals may have been missed (a new connection, a new systemd on
  // the bus): settle jobs that ended meanwhile, list the watched units again,
  // and tell the agent, which resyncs.
  private async recover(why: string): Promise<void> {
    await Promise.all(this.jobs.pending().map((job) => this.recoverJob(job.path, job.unit, job.kind)));
    await this.resync(why);
    for (const handler of this.reconnectHandlers) {
      try {
        handler();
      } catch (err) {
        this.logger.error('reconnect handler threw', { error: String(err) });
      }
    }
  }

  // A job whose JobRemoved may have been lost. If systemd still has it, its
  // JobRemoved is yet to come (we are subscribed again); if not, its result
  // is inferred from the unit's state, the only record left of it.
  private async recoverJob(path: string, unit: string, kind: JobKind): Promise<void> {
    try {
      await this.property(path, 'org.freedesktop.systemd1.Job', 'State');
      return;
    } catch (err) {
      if (!(err instanceof SystemdError)) return;
    }
    const [status] = await this.listUnitsByNames([unit]).catch(() => []);
    const state = status?.activeState ?? 'unknown';
    const reached = kind === 'stop' ? state === 'inactive' || state === 'failed' : state === 'active' || state === 'reloading';
    const result: JobResult = reached ? 'done' : kind !== 'stop' && state === 'failed' ? 'failed' : 'canceled';
    this.logger.info('job ended while the bus was away; result inferred from the unit state', { unit, job: path, state, result });
    this.jobs.settle(path, result);
  }

  /** Lists the watched units and reports those whose state differs from the last known. */
  private async resync(why: string): Promise<void> {
    const names = this.states.names();
    if (names.length === 0 || this.closing) return;
    try {
      for (const status of await this.listUnitsByNames(names)) this.states.observed(status);
    } catch (err) {
      this.logger.warn('resync of watched units failed', { why, error: String(err) });
    }
  }

  private onSignal(conn: BusConnection, signal: Signal): void {
    if (conn !== this.conn && this.conn !== undefined) return;
    if (signal.interface === PROPERTIES) {
      const name = unitNameOfPath(signal.path);
      if (name !== undefined && signal.body[0] === UNIT) this.states.changed(name, asRecord(signal.body[1]));
      return;
    }
    if (signal.member === 'JobRemoved') {
      const [, jobPath, , result] = signal.body;
      if (typeof jobPath === 'string' && typeof result === 'string') this.jobs.removed(jobPath, result);
      return;
    }
    if (signal.member === 'Reloading') {
      // After a daemon-reload load states may have changed (files fixed or gone).
      if (signal.body[0] === false) void this.resync('reload');
      return;
    }
    if (signal.member === 'NameOwnerChanged') {
      const newOwner = signal.body[2];
      // While a connection is being opened, its own set-up finds systemd.
      if (conn !== this.conn) return;
      if (typeof newOwner !== 'string' || newOwner === '' || newOwner === this.systemdOwner) return;
      // systemd re-joined the bus on the same connection of ours (daemon-reexec).
      this.systemdOwner = newOwner;
      this.logger.info('systemd re-joined the bus; subscribing again', { owner: newOwner });
      void this.subscribe(conn)
        .then(() => this.recover('systemd re-joined the bus'))
        .catch((err: unknown) => this.logger.warn('subscribing again failed', { error: String(err) }));
    }
  }
}
