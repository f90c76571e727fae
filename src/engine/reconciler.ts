// The engine's reconciler: while this engine leads, watches the registry
// through informers and, on any change (or a slow resync), computes a plan
// with the pure scheduler and commits it in batched, fenced transactions.
// No truth lives here: a new leader starts from the registry and converges.
import { silentLogger, type Logger } from '../log.js';
import { ReconcileLoop } from '../reconcile-loop.js';
import {
  Informer,
  NotLeaderError,
  decode,
  type DecisionRecord,
  type DesiredRecord,
  type LeaderToken,
  type MachineRecord,
  type MetadataRecord,
  type DrainRecord,
  type PendingRecord,
  type PlanOp,
  type Registry,
  type UnitRecord,
} from '../registry/index.js';
import { UnitError } from '../unit/errors.js';
import { parseUnitFile, type UnitFile } from '../unit/file.js';
import { parseUnitName } from '../unit/name.js';
import { parseRequirements, type Requirements } from '../unit/requirements.js';
import { schedule, type ClusterState, type MachineInfo, type SchedulableUnit } from './scheduler.js';
import { schedulableMachines } from './feasibility.js';
import { FenceClock } from './fence.js';
import { effectiveFence } from '../unit/fence.js';

export interface EngineReconcilerOptions {
  registry: Registry;
  token: LeaderToken;
  logger?: Logger | undefined;
  /** Changes arriving within this window are reconciled in one pass. */
  batchDelayMs?: number | undefined;
  /** Safety-net pass interval, in case an event was missed. */
  resyncMs?: number | undefined;
  /** Called when the registry says this engine no longer leads. */
  onDeposed?: ((reason: string) => void) | undefined;
}

export interface EngineStats {
  passes: number;
  txns: number;
  placed: number;
  unplaced: number;
  lastPassMs: number;
  /** Time spent, summed over passes: building the scheduler's input, scheduling, committing, waiting for the watch. */
  buildMs: number;
  scheduleMs: number;
  commitMs: number;
  echoMs: number;
  /** Time to fill the caches when this engine became leader. */
  listMs: number;
  /** Plan transactions refused because a decision changed since the pass read it. */
  stale: number;
  /** Passes whose own writes had not come back within ECHO_WAIT_MS. */
  echoTimeouts: number;
}

/** How long a pass waits for its own writes to come back through the watches. */
const ECHO_WAIT_MS = 2_000;
/** Refused plans in a row re-planned at once; past that the loop backs off. */
const MAX_STALE_STREAK = 3;

interface ParsedRequirements {
  hash: string;
  template: boolean;
  requirements: Requirements | undefined;
  error: string | undefined;
}

export class EngineReconciler {
  readonly stats: EngineStats = {
    passes: 0,
    txns: 0,
    placed: 0,
    unplaced: 0,
    lastPassMs: 0,
    buildMs: 0,
    scheduleMs: 0,
    commitMs: 0,
    echoMs: 0,
    listMs: 0,
    stale: 0,
    echoTimeouts: 0,
  };
  private readonly log: Logger;
  private readonly units: Informer<UnitRecord>;
  private readonly desired: Informer<DesiredRecord>;
  private readonly machines: Informer<MachineRecord>;
  private readonly metadata: Informer<MetadataRecord>;
  private readonly draining: Informer<DrainRecord>;
  private readonly decisions: Informer<DecisionRecord>;
  private readonly pending: Informer<PendingRecord>;
  private readonly parsed = new Map<string, ParsedRequirements>();
  private readonly files = new Map<string, UnitFile>();
  private readonly loop: ReconcileLoop;
  private readonly listeners: (() => void)[] = [];
  /** Revisions of our own plan transactions not yet seen coming back. */
  private readonly ownRevisions = new Set<number>();
  private staleStreak = 0;
  /** When this engine saw machines gone, for holding their fenced units (fence.ts). */
  private readonly fence = new FenceClock();

  constructor(private readonly opts: EngineReconcilerOptions) {
    const r = opts.registry;
    this.log = (opts.logger ?? silentLogger).child('engine');
    const k = r.keys;
    const infOpts = { logger: this.log };
    this.units = new Informer(r, k.unitsPrefix, decode.unit, infOpts);
    this.desired = new Informer(r, k.desiredPrefix, decode.desired, infOpts);
    this.machines = new Informer(r, k.machinesPrefix, decode.machine, infOpts);
    this.metadata = new Informer(r, k.metadataPrefix, decode.metadata, infOpts);
    this.draining = new Informer(r, k.drainPrefix, decode.drain, infOpts);
    this.decisions = new Informer(r, k.schedulePrefix, decode.decision, infOpts);
    this.pending = new Informer(r, k.pendingPrefix, decode.pending, infOpts);
    this.loop = new ReconcileLoop({
      pass: () => this.pass(),
      // Wait at least as long as the last pass took, so that under a flood
      // of events the engine spends at most half its time planning and each
      // pass takes in a larger batch.
      delayMs: () => Math.max(opts.batchDelayMs ?? 5, Math.min(this.stats.lastPassMs, 1_000)),
      onError: (err) => {
        if (err instanceof NotLeaderError) {
          this.log.warn('plan refused: no longer the leader', {});
          opts.onDeposed?.(err.message);
          return 'stop';
        }
        this.log.error('reconcile pass failed; retrying', { error: (err as Error).message });
        return 'retry';
      },
      retryMs: 500,
      resyncMs: opts.resyncMs ?? 60_000,
    });
  }

  private get informers(): Informer<unknown>[] {
    return [this.units, this.desired, this.machines, this.metadata, this.draining, this.decisions, this.pending] as Informer<unknown>[];
  }

  /** Fills the caches and runs the first pass. */
  async start(): Promise<void> {
    for (const inf of [this.units, this.desired, this.machines, this.metadata, this.draining] as Informer<unknown>[]) {
      this.listeners.push(inf.subscribe(() => this.kick()));
    }
    // Our own decisions coming back through the watch need no new pass;
    // anything else written there (by hand, by another engine) does.
    for (const inf of [this.decisions, this.pending] as Informer<unknown>[]) {
      this.listeners.push(
        inf.subscribe((events) => {
          if (events.some((e) => !this.ownRevisions.has(e.revision))) this.kick();
        }),
      );
    }
    const started = performance.now();
    await Promise.all(this.informers.map((inf) => inf.start()));
    this.stats.listMs = performance.now() - started;
    // Decisions written before placement keys existed get theirs now.
    await this.opts.registry.repairPlacements(this.opts.token);
    // No pass on half-filled caches: kicks count from here.
    this.loop.start();
  }

  /** Stops at once: no further plan is committed by this reconciler. */
  async stop(): Promise<void> {
    const stopping = this.loop.stop();
    for (const off of this.listeners) off();
    await Promise.all(this.informers.map((inf) => inf.stop()));
    await stopping;
  }

  /** Resolves when no pass is running or due (for tests and benchmarks). */
  whenIdle(): Promise<void> {
    return this.loop.whenIdle();
  }

  private kick(): void {
    this.loop.kick();
  }

  /** One level-triggered pass: registry state in, fenced plan out. */
  private async pass(): Promise<void> {
    const started = performance.now();
    const held = this.fenceHolds(started);
    const { state, hashes, stray } = this.clusterState(held);
    const built = performance.now();
    const plan = schedule(state);
    const scheduled = performance.now();
    this.stats.buildMs += built - started;
    this.stats.scheduleMs += scheduled - built;
    // Each op names the machine the unit is decided onto as this pass saw it;
    // the commit compares that with the unit's placement key, so a pass made
    // from a stale cache is refused rather than deciding a unit twice.
    const ops: PlanOp[] = [];
    for (const s of stray) ops.push({ type: 'unplace', machine: s.machine, unit: s.unit, stray: true });
    const placing = new Set(plan.place.map((p) => p.unit));
    for (const u of plan.unplace) if (!placing.has(u.unit)) ops.push({ type: 'unplace', machine: u.machine, unit: u.unit });

    const desired = new Map(state.units.map((u) => [u.name, u.desiredState]));
    const requirements = new Map(state.units.map((u) => [u.name, u.requirements]));
    const decide = (unit: string, machine: string): DecisionRecord => {
      const r = requirements.get(unit);
      // In the decision, so a leader taking over after the machine is gone knows it.
      const fenceAfter = r && effectiveFence(r, this.machines.get(machine)?.fenceAfter);
      const state = desired.get(unit) === 'loaded' ? 'loaded' : 'launched';
      return { unit, machine, hash: hashes.get(unit) ?? '', state, ...(fenceAfter === undefined ? {} : { fenceAfter }) };
    };
    for (const p of plan.place) ops.push({ type: 'place', decision: decide(p.unit, p.machine), from: state.decisions.get(p.unit) });
    // Kept decisions whose desired state or file changed are rewritten, so
    // the agent (which reads only its own decisions) sees the change.
    const moved = new Set(plan.unplace.map((u) => u.unit));
    for (const [unit, machine] of state.decisions) {
      if (moved.has(unit) || placing.has(unit)) continue;
      const current = this.decisions.get(`${machine}/${unit}`);
      const want = decide(unit, machine);
      const changed = current && (current.hash !== want.hash || current.state !== want.state || current.fenceAfter !== want.fenceAfter);
      if (changed && desired.get(unit) !== 'inactive') ops.push({ type: 'place', decision: want, from: machine });
    }

    const stillPending = new Set<string>();
    for (const p of plan.pending) {
      stillPending.add(p.unit);
      if (this.pending.get(p.unit)?.reason !== p.reason) {
        ops.push({ type: 'pending', record: { unit: p.unit, reason: p.reason, since: new Date().toISOString() } });
      }
    }
    for (const [unit, rec] of this.invalidUnits()) {
      stillPending.add(unit);
      if (this.pending.get(unit)?.reason !== rec) ops.push({ type: 'pending', record: { unit, reason: rec, since: new Date().toISOString() } });
    }
    for (const [unit] of this.pending.entries()) {
      if (!stillPending.has(unit)) ops.push({ type: 'clear-pending', unit });
    }

    if (ops.length > 0 && !this.loop.isStopped) {
      const commitStart = performance.now();
      const res = await this.opts.registry.applyPlan(this.opts.token, ops);
      const committed = performance.now();
      this.stats.commitMs += committed - commitStart;
      this.stats.txns += res.txns;
      ops.forEach((op, i) => {
        if (!res.opRevisions[i]) return;
        const moves = op.type === 'place' && op.from !== undefined && op.from !== op.decision.machine;
        if (op.type === 'place' && op.from !== op.decision.machine) this.stats.placed++;
        if (op.type === 'unplace' || moves) this.stats.unplaced++;
      });
      // Our own writes come back through the watches: wait for them (bounded),
      // so the next pass does not plan the same changes again. Correctness
      // does not rest on this wait: a pass planned from caches that lag is
      // refused by the placement compares and planned again.
      if (this.ownRevisions.size > 10_000) this.ownRevisions.clear();
      for (const rev of res.opRevisions) this.ownRevisions.add(rev);
      let decisionRev = 0;
      let pendingRev = 0;
      ops.forEach((op, i) => {
        const rev = res.opRevisions[i] ?? 0;
        if (op.type === 'place' || op.type === 'unplace') decisionRev = Math.max(decisionRev, rev);
        else pendingRev = Math.max(pendingRev, rev);
      });
      // After a refusal, wait for the caches to reach the revision that refused
      // it: the next pass then sees what changed behind this one.
      if (res.stale > 0) decisionRev = Math.max(decisionRev, res.revision);
      // (A delete of a key already gone, a stray's, makes no event; then the
      // wait times out and the next pass plans from what the caches say.)
      await Promise.all([
        this.decisions.waitForRevision(decisionRev, ECHO_WAIT_MS),
        this.pending.waitForRevision(pendingRev, ECHO_WAIT_MS),
      ]).catch((err: unknown) => {
        this.stats.echoTimeouts++;
        this.log.debug('own writes not seen in time; the next pass may be refused and re-planned', { error: (err as Error).message });
      });
      this.stats.echoMs += performance.now() - committed;
      if (res.stale > 0) await this.replan(res.stale);
      else this.staleStreak = 0;
      this.log.debug('plan committed', {
        placed: plan.place.length,
        unplaced: plan.unplace.length,
        pending: plan.pending.length,
        txns: res.txns,
      });
    }
    this.stats.passes++;
    this.stats.lastPassMs = performance.now() - started;
  }

  /**
   * A plan was refused because a unit's decision was not what the pass saw:
   * repair placement keys (older data, hand edits) and plan again at once,
   * a few times; past that, fail the pass so the loop backs off.
   */
  private async replan(refused: number): Promise<void> {
    this.stats.stale += refused;
    this.staleStreak++;
    const repaired = await this.opts.registry.repairPlacements(this.opts.token);
    this.log.info('plan refused: a decision changed since the pass read it; planning again', { refused, repaired });
    if (this.staleStreak > MAX_STALE_STREAK) {
      this.staleStreak = 0;
      throw new Error(`plans refused ${MAX_STALE_STREAK + 1} times in a row: decisions keep changing behind the engine`);
    }
    this.kick();
  }

  /** Units of vanished machines within their fence (fence.ts), left out of the pass; a pass is due when the first hold ends. */
  private fenceHolds(now: number): ReadonlyMap<string, number> {
    const live = new Set([...this.machines.values()].map((m) => m.id));
    const { held, nextAt } = this.fence.update([...this.decisions.values()], live, now, this.log);
    if (nextAt !== undefined) this.loop.kickAfter(nextAt - now);
    return held;
  }

  /** The scheduler's input, built from the caches; held units are left out (neither kept, moved nor pending). */
  private clusterState(held: ReadonlyMap<string, number>): {
    state: ClusterState;
    hashes: Map<string, string>;
    stray: { unit: string; machine: string }[];
  } {
    const units: SchedulableUnit[] = [];
    const hashes = new Map<string, string>();
    for (const [name, unit] of this.units.entries()) {
      if (held.has(name)) continue;
      const parsed = this.requirementsOf(name, unit);
      if (parsed.template || !parsed.requirements) continue;
      hashes.set(name, unit.hash);
      units.push({ name, desiredState: this.desired.get(name)?.state ?? 'inactive', requirements: parsed.requirements });
    }
    const dynamic = new Map<string, Record<string, string>>();
    for (const [key, rec] of this.metadata.entries()) {
      const i = key.indexOf('/');
      if (i <= 0) continue;
      const m = key.slice(0, i);
      const md = dynamic.get(m) ?? {};
      md[key.slice(i + 1)] = rec.value;
      dynamic.set(m, md);
    }
    const machines: MachineInfo[] = [];
    for (const m of schedulableMachines(this.machines.values(), this.draining)) {
      machines.push({ id: m.id, metadata: { ...m.metadata, ...dynamic.get(m.id) } });
    }
    // A unit decided onto two machines (only possible through manual edits)
    // keeps its first decision; the rest are stray and removed. Decisions of
    // units that no longer exist stay in: the scheduler unplaces them.
    const decisions = new Map<string, string>();
    const stray: { unit: string; machine: string }[] = [];
    for (const d of this.decisions.values()) {
      if (held.has(d.unit)) continue;
      if (decisions.has(d.unit)) stray.push({ unit: d.unit, machine: d.machine });
      else decisions.set(d.unit, d.machine);
    }
    units.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { state: { units, machines, decisions }, hashes, stray };
  }

  /**
   * Requirements of a unit, parsed once per file version. The file itself is
   * parsed once per hash: a template's many instances share it, and only
   * their specifiers differ.
   */
  private requirementsOf(name: string, unit: UnitRecord): ParsedRequirements {
    const cached = this.parsed.get(name);
    if (cached?.hash === unit.hash) return cached;
    let result: ParsedRequirements;
    try {
      const unitName = parseUnitName(name);
      let file = this.files.get(unit.hash);
      if (!file) {
        file = parseUnitFile(unit.text, { unit: name });
        this.files.set(unit.hash, file);
      }
      // Read as the version that accepted it did: a unit submitted before a
      // check was added keeps its schedule, and what the check found is logged.
      const { requirements, warnings } = parseRequirements(name, file, { stored: true });
      for (const w of warnings) this.log.warn('unit in the registry read with a warning', { unit: name, warning: w });
      result = { hash: unit.hash, template: unitName.isTemplate, requirements, error: undefined };
    } catch (err) {
      const msg = err instanceof UnitError ? err.message : String(err);
      this.log.warn('unit in the registry cannot be scheduled', { unit: name, error: msg });
      result = { hash: unit.hash, template: false, requirements: undefined, error: `invalid unit file: ${msg}` };
    }
    this.parsed.set(name, result);
    if (this.parsed.size > this.units.size * 2 + 1024) this.pruneParsed();
    return result;
  }

  private *invalidUnits(): Iterable<[string, string]> {
    for (const [name, p] of this.parsed) {
      const wanted = (this.desired.get(name)?.state ?? 'inactive') !== 'inactive';
      if (p.error && wanted && this.units.has(name)) yield [name, p.error];
    }
  }

  private pruneParsed(): void {
    for (const name of this.parsed.keys()) if (!this.units.has(name)) this.parsed.delete(name);
    const live = new Set([...this.parsed.values()].map((p) => p.hash));
    for (const hash of this.files.keys()) if (!live.has(hash)) this.files.delete(hash);
  }
}
