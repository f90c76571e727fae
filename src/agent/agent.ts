// The agent: keeps this machine's systemd in step with what the registry
// says it should run, and publishes what systemd reports. It watches only
// its own schedule, the global index, its own metadata and (presence.ts) its
// own machine record, and reads a unit file only when the hash it runs
// differs, so its etcd traffic grows with its own units, not with the cluster.
import { silentLogger, type Logger } from '../log.js';
import { ReconcileLoop } from '../reconcile-loop.js';
import {
  Informer,
  decode,
  type DecisionRecord,
  type GlobalRecord,
  type MachineRecord,
  type MetadataRecord,
  type Registry,
} from '../registry/index.js';
import type { SystemdDriver, UnitStatus } from '../systemd/types.js';
import { desiredUnits, type DesiredUnit, type GlobalUnit, type ScheduledUnit } from './desired.js';
import { Presence } from './presence.js';
import { StatePublisher } from './publisher.js';
import { planTasks, isRunning, type LocalUnit, type Task } from './tasks.js';
import { UnitFiles } from './unit-files.js';
import { SelfFence, shorterFence, type FenceCandidate } from './fence.js';
import { effectiveFence } from '../unit/fence.js';

/** How long shutdown=drain waits for units to run elsewhere (flotillad.service's TimeoutStopSec is 90 s). */
const DRAIN_MS = 60_000;

export interface AgentOptions {
  registry: Registry;
  systemd: SystemdDriver;
  machine: MachineRecord;
  ttlSeconds: number;
  logger?: Logger | undefined;
  resyncMs?: number | undefined;
  batchDelayMs?: number | undefined;
}

export interface AgentStats {
  passes: number;
  reloads: number;
  tasks: number;
  failures: number;
}

export class Agent {
  readonly stats: AgentStats = { passes: 0, reloads: 0, tasks: 0, failures: 0 };
  private readonly log: Logger;
  private readonly presence: Presence;
  private readonly publisher: StatePublisher;
  private readonly schedule: Informer<DecisionRecord>;
  private readonly globals: Informer<GlobalRecord>;
  private readonly metadata: Informer<MetadataRecord>;
  private readonly files: UnitFiles;
  private readonly fence: SelfFence;
  /** Hash of the file flotilla wrote for each unit on this machine. */
  private readonly written = new Map<string, string>();
  /** Units this agent started (or found running) and has not stopped since. */
  private readonly launched = new Set<string>();
  private machine: MachineRecord;
  private readonly loop: ReconcileLoop;
  private readonly offs: (() => void)[] = [];

  constructor(private readonly opts: AgentOptions) {
    this.log = (opts.logger ?? silentLogger).child('agent');
    this.machine = opts.machine;
    const r = opts.registry;
    const k = r.keys;
    this.presence = new Presence(r, opts.machine, opts.ttlSeconds, this.log);
    this.publisher = new StatePublisher(r, opts.machine.id, this.log);
    this.files = new UnitFiles(r, this.log);
    this.fence = new SelfFence({
      lastAckAt: () => this.presence.lastAckAt,
      candidates: () => this.fenceCandidates(),
      stop: (names) => this.execute(names.map((name) => ({ kind: 'stop', name }) as const)),
      kick: () => this.kick(),
      log: this.log,
    });
    this.schedule = new Informer(r, k.scheduleOf(opts.machine.id), decode.decision, { logger: this.log });
    this.globals = new Informer(r, k.globalPrefix, decode.global, { logger: this.log });
    this.metadata = new Informer(r, k.metadataOf(opts.machine.id), decode.metadata, { logger: this.log });
    this.loop = new ReconcileLoop({
      pass: () => this.pass(),
      delayMs: () => opts.batchDelayMs ?? 2,
      onError: (err) => {
        this.log.error('reconcile pass failed; retrying', { error: (err as Error).message });
        return 'retry';
      },
      resyncMs: opts.resyncMs ?? 60_000,
    });
  }

  /** Registers the machine (a duplicate ID is thrown) and starts reconciling. */
  async start(): Promise<void> {
    this.presence.onLease((lease) => {
      this.publisher.setLease(lease);
      this.kick();
    });
    // Without its presence the machine publishes nothing: the states it would
    // write are keyed by its ID, which may be another host's now.
    this.presence.onState((state) => {
      this.publisher.setLease(state.kind === 'held' ? this.presence.current : undefined);
      this.kick();
    });
    // While fenced, etcd answering again is what lifts the fence.
    this.presence.onAck(() => {
      if (this.fence.active) this.kick();
    });
    await this.presence.start();
    const { systemd } = this.opts;
    for (const [name, hash] of await systemd.listUnitFiles()) this.written.set(name, hash);
    // After a restart, what flotilla wrote and systemd runs counts as launched.
    for (const s of await systemd.listUnitsByNames([...this.written.keys()])) {
      if (isRunning(s.activeState)) this.launched.add(s.name);
    }
    // A unit's new state is how a fired job's outcome arrives: publish it, and
    // pass again (a unit stopped for unloading is unloaded then).
    this.offs.push(
      systemd.onStatus((s) => {
        this.observed(s);
        this.kick();
      }),
    );
    this.offs.push(systemd.onReconnect(() => this.kick()));
    for (const inf of [this.schedule, this.globals, this.metadata] as Informer<unknown>[]) {
      this.offs.push(inf.subscribe(() => this.kick()));
    }
    await Promise.all([this.schedule.start(), this.globals.start(), this.metadata.start()]);
    this.loop.start();
  }

  /**
   * Stops reconciling. With purge (shutdown=drain), first drains: marks the
   * machine drained so the engine moves its units, and waits (at most
   * drainMs) until each runs elsewhere, reconciling meanwhile; then stops and
   * unloads what is left and withdraws the machine. Without (shutdown=keep,
   * the default), units keep running and the machine's presence stays for
   * agent_ttl, for the next run to adopt both.
   */
  async stop(opts: { purge: boolean; drainMs?: number | undefined }): Promise<void> {
    if (opts.purge) await this.moveAway(opts.drainMs ?? DRAIN_MS).catch((err: unknown) => this.log.warn('draining failed; stopping units here', { error: (err as Error).message }));
    await this.loop.stop();
    this.fence.close();
    for (const off of this.offs) off();
    await Promise.all([this.schedule.stop(), this.globals.stop(), this.metadata.stop()]);
    if (opts.purge) {
      const names = [...new Set([...this.written.keys(), ...this.launched])].sort();
      this.log.info('stopping and unloading every local unit', { units: names.length });
      // Shutting down, the stop jobs are waited for (flotillad's TimeoutStopSec bounds it).
      await Promise.allSettled(names.map((name) => this.opts.systemd.stopUnit(name)));
      await this.execute(names.map((name) => ({ kind: 'unload', name }) as const));
    }
    await this.presence.stop({ withdraw: opts.purge });
    // Withdrawn, the machine is gone; the mark would only make its next run start drained.
    if (opts.purge) await this.opts.registry.setDraining(this.machine.id, false).catch(() => undefined);
  }

  /** The drain of shutdown=drain: mark, then wait until every unit decided here runs elsewhere. */
  private async moveAway(timeoutMs: number): Promise<void> {
    const id = this.machine.id;
    const units = [...this.schedule.values()].map((d) => d.unit);
    await this.opts.registry.setDraining(id, true);
    this.log.info('draining: waiting for the engine to move every unit elsewhere', { units: units.length });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.schedule.size === 0) {
        // Each unit runs elsewhere, or can run nowhere else (pending): waiting longer would not move it.
        const [states, pending] = await Promise.all([this.opts.registry.listStates(), this.opts.registry.listPending()]);
        const settled = new Set(pending.map((p) => p.unit));
        for (const st of states) if (st.machine !== id && isRunning(st.activeState)) settled.add(st.unit);
        if (units.every((u) => settled.has(u))) return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    this.log.warn('draining timed out; stopping the units left here', { units: this.schedule.size });
  }

  /** New machine record (SIGHUP: metadata, public IP); global units are re-evaluated. */
  async updateMachine(record: MachineRecord): Promise<void> {
    this.machine = record;
    await this.presence.update(record);
    this.kick();
  }

  /** Resolves when no pass is running or due (tests, benchmarks). */
  whenIdle(): Promise<void> {
    return this.loop.whenIdle();
  }

  private kick(): void {
    this.loop.kick();
  }

  /** One level-triggered pass: desired (registry) against current (systemd). */
  private async pass(): Promise<void> {
    this.stats.passes++;
    // Fenced (fence.ts): units stopped, the schedule not acted on until etcd is back.
    if (this.fence.check()) return;
    // The schedule is acted on only while this machine holds its presence (presence.ts).
    const presence = this.presence.status;
    if (presence.kind === 'duplicate') await this.standDown();
    if (presence.kind !== 'held') return;
    if (this.fence.catchingUp) {
      // Decisions moved away while cut off must be seen before anything starts again.
      await this.schedule.resync();
      this.fence.caughtUp();
    }
    const desired = await this.desired();
    const { systemd } = this.opts;
    const names = [...new Set([...desired.keys(), ...this.written.keys(), ...this.launched])];
    const statuses = new Map((await systemd.listUnitsByNames(names)).map((s) => [s.name, s]));
    const local = new Map<string, LocalUnit>();
    for (const name of names) {
      const s = statuses.get(name);
      const hash = this.written.get(name);
      // A unit new to this agent that systemd still holds a definition of:
      // a unit unloaded earlier (destroyed, moved away) can stay loaded in
      // systemd after its file is gone, and systemd would start that old
      // definition. Listing it as local and loaded makes the plan reload.
      const stale = hash === undefined && desired.has(name) && s !== undefined && s.loadState !== 'not-found' && s.loadState !== '';
      if (hash === undefined && !this.launched.has(name) && !stale) continue;
      local.set(name, {
        name,
        hash,
        loadState: s?.loadState ?? 'not-found',
        activeState: s?.activeState ?? 'inactive',
        subState: s?.subState ?? 'dead',
        launched: this.launched.has(name),
      });
    }
    const tasks = planTasks(desired, local);
    if (this.fence.check()) return; // fenced while this pass read etcd
    if (tasks.length > 0) {
      await this.execute(tasks, desired);
      this.log.debug('reconciled', { tasks: tasks.length });
    }
    // Local units are watched until unloaded: their stop jobs' ends kick the pass that unloads them.
    await systemd.watch(names.filter((n) => desired.has(n) || local.has(n)));
    systemd.unwatch(names.filter((n) => !desired.has(n) && !local.has(n)));
    // publish what systemd now says about every local unit
    const after = tasks.length > 0 ? await systemd.listUnitsByNames([...desired.keys()]) : [...desired.keys()].map((n) => statuses.get(n));
    for (const s of after) if (s) this.observed(s);
    for (const unit of this.publisher.units()) if (!desired.has(unit)) this.publisher.remove(unit);
  }

  /**
   * Another live host holds this machine ID and runs what is scheduled to
   * it: this host stops the units it runs for the ID, so the two never both
   * run them. Global units stay (they run on every host anyway); files stay
   * loaded, so the units start again once this host holds the ID again.
   */
  private async standDown(): Promise<void> {
    const names = [...this.launched].filter((n) => !this.globals.has(n)).sort();
    if (names.length === 0) return;
    this.log.warn('stopping units: another host holds this machine ID', { units: names.join(',') });
    await this.execute(names.map((name) => ({ kind: 'stop', name }) as const));
  }

  /** Local non-global units, each with the shorter of its fence as read here and as the engine decided it (fence.ts). */
  private fenceCandidates(): FenceCandidate[] {
    return [...this.launched]
      .filter((name) => !this.globals.has(name))
      .map((name) => {
        const hash = this.written.get(name);
        const r = (hash !== undefined && this.files.requirementsOf(name, hash)) || { global: false };
        const here = effectiveFence(r, this.machine.fenceAfter);
        return { name, fenceAfter: shorterFence(here, this.schedule.get(name)?.fenceAfter) };
      });
  }

  /** This machine's desired units; unit files it lacks are read here. */
  private async desired(): Promise<Map<string, DesiredUnit>> {
    const decisions = [...this.schedule.values()];
    const globals = [...this.globals.values()];
    await this.files.fetch([...decisions.map((d) => ({ name: d.unit, hash: d.hash })), ...globals]);
    const schedule: ScheduledUnit[] = decisions.map((d) => ({
      name: d.unit,
      hash: d.hash,
      state: d.state,
      requirements: this.files.requirementsOf(d.unit, d.hash),
    }));
    const globalUnits: GlobalUnit[] = globals.map((g) => ({
      name: g.name,
      hash: g.hash,
      state: g.state,
      requirements: this.files.requirementsOf(g.name, g.hash),
    }));
    const metadata: Record<string, string> = { ...this.machine.metadata };
    for (const [key, rec] of this.metadata.entries()) metadata[key] = rec.value;
    const { units, excluded } = desiredUnits({ machineId: this.machine.id, metadata, schedule, globals: globalUnits });
    for (const e of excluded) this.log.debug('unit left out', e);
    // a unit whose file could not be read yet waits for a later pass
    for (const [name, u] of units) if (!this.files.has(u.hash)) units.delete(name);
    return units;
  }

  /**
   * Runs tasks phase by phase; one unit's failure never stops the others.
   * Start and stop jobs are queued, not waited for: their outcome arrives as
   * unit states (onStatus), so no job holds up the pass.
   */
  private async execute(tasks: readonly Task[], desired?: ReadonlyMap<string, DesiredUnit>): Promise<void> {
    const { systemd } = this.opts;
    const phase = (kind: Task['kind']): string[] => tasks.flatMap((t) => (t.kind === kind && 'name' in t ? [t.name] : []));
    const each = async (names: readonly string[], what: string, fn: (name: string) => Promise<void>): Promise<void> => {
      const results = await Promise.allSettled(names.map(fn));
      results.forEach((r, i) => {
        this.stats.tasks++;
        if (r.status === 'rejected') {
          this.stats.failures++;
          this.log.warn(`${what} failed`, { unit: names[i], error: (r.reason as Error).message });
        }
      });
    };

    // The plan unloads only stopped units (see tasks.ts).
    await each(phase('unload'), 'unload', async (name) => {
      this.launched.delete(name);
      await systemd.disableUnitFiles([name]).catch(() => undefined);
      await systemd.resetFailedUnit(name).catch(() => undefined);
      await systemd.removeUnitFile(name);
      this.written.delete(name);
      this.publisher.remove(name);
      systemd.unwatch([name]);
    });

    const loads = tasks.filter((t): t is Extract<Task, { kind: 'load' }> => t.kind === 'load');
    if (loads.length > 0) {
      const written: string[] = [];
      await each(
        loads.map((t) => t.name),
        'write unit file',
        async (name) => {
          const t = loads.find((l) => l.name === name)!;
          await systemd.writeUnitFile(name, this.files.get(t.hash)!.text);
          written.push(name);
        },
      );
      try {
        await systemd.linkUnitFiles(written);
        const install = loads.filter((t) => written.includes(t.name) && this.files.get(t.hash)?.install).map((t) => t.name);
        if (install.length > 0) await systemd.enableUnitFiles(install);
        for (const t of loads) if (written.includes(t.name)) this.written.set(t.name, t.hash);
      } catch (err) {
        this.stats.failures++;
        this.log.warn('linking unit files failed', { units: written.join(','), error: (err as Error).message });
      }
    }
    if (tasks.some((t) => t.kind === 'reload')) {
      this.stats.reloads++;
      await systemd.reload();
    }
    await each(phase('stop'), 'stop', async (name) => {
      await systemd.queueStop(name);
      this.launched.delete(name);
    });
    await each(
      phase('start').filter((n) => this.written.has(n) && desired?.get(n)?.state === 'launched' && !this.fence.active),
      'start',
      async (name) => {
        // Launched from now on, so a start in flight is not queued again; a
        // start systemd refused is tried again by a later pass.
        this.launched.add(name);
        await systemd.queueStart(name).catch((err: unknown) => {
          this.launched.delete(name);
          throw err;
        });
      },
    );
  }

  private observed(s: UnitStatus): void {
    const hash = this.written.get(s.name);
    if (hash === undefined) return;
    this.publisher.set({ unit: s.name, hash, loadState: s.loadState, activeState: s.activeState, subState: s.subState });
  }
}
