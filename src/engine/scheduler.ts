/**
 * The scheduler: a pure function from the cluster as the engine sees it
 * (units, live machines, committed decisions) to a plan of decisions to add
 * and remove, plus the units left waiting and why.
 *
 * How a plan is made:
 *   1. Units are taken in name order, except that a MachineOf target comes
 *      before its followers and a replacing unit before the units it
 *      replaces (see order.ts).
 *   2. Every committed decision is checked in that order and kept when it
 *      still holds: the unit still wants to run, its machine is live and
 *      still matches MachineID/MachineMetadata, its MachineOf peers are still
 *      there, and nothing kept before it conflicts with it or replaces it.
 *      Keeping what holds is what makes the scheduler stable.
 *   3. Every unit that wants a machine and has none is placed, in the same
 *      order, on the least-loaded machine able to run it (ties by machine
 *      id). A follower goes where its targets are; a unit that replaces
 *      another pushes that one off its machine, and the pushed unit (and its
 *      followers) are placed again.
 *   4. The plan is the difference between the committed decisions and the
 *      result. Scheduling the result again yields an empty plan.
 *
 * Global units are never placed; they count as running (for load,
 * Conflicts and MachineOf) on every live machine their MachineMetadata
 * matches, and they win over ordinary units in a conflict.
 */
import type { Requirements } from '../unit/requirements.js';
import type { StaticMatch } from './feasibility.js';
import { StaticMatches, formatMetadata, machineIdMatches, requiredMachineId, shortId } from './feasibility.js';
import { LoadBoard, popMin, pushMin } from './machine-heap.js';
import { NamePatternIndex } from './name-patterns.js';
import { acyclicReplaces, dependencyOrder } from './order.js';

export type DesiredState = 'inactive' | 'loaded' | 'launched';

export interface SchedulableUnit {
  name: string;
  desiredState: DesiredState;
  requirements: Requirements;
}

export interface MachineInfo {
  id: string;
  /** Static and dynamic metadata, already merged. */
  metadata: Readonly<Record<string, string>>;
}

export interface ClusterState {
  /** Every unit in the registry, templates excluded; names are unique. */
  units: readonly SchedulableUnit[];
  /** Machines whose presence is live. */
  machines: readonly MachineInfo[];
  /** Unit name → machine id, as currently committed. */
  decisions: ReadonlyMap<string, string>;
}

export interface Placement {
  unit: string;
  machine: string;
}

export interface Unplacement {
  unit: string;
  machine: string;
  /** Why the decision goes, for logs and users. */
  reason: string;
}

export interface PendingUnit {
  unit: string;
  /** Why the unit has no machine, in words a user can act on. */
  reason: string;
}

export interface Plan {
  /** New decisions, by unit name. */
  place: Placement[];
  /** Decisions to remove, by unit name. A unit in both lists moves. */
  unplace: Unplacement[];
  /** Units that want a machine and cannot have one now, by unit name. */
  pending: PendingUnit[];
}

export interface Move {
  unit: string;
  from: string;
  to: string;
  reason: string;
}

/** Decides where every unit should run; see the top of this file. */
export function schedule(state: ClusterState): Plan {
  return new Scheduling(state).run();
}

/** The units a plan moves from one machine to another (an unplace and a place of the same unit). */
export function planMoves(plan: Plan): Move[] {
  const to = new Map(plan.place.map((p) => [p.unit, p.machine]));
  const moves: Move[] = [];
  for (const u of plan.unplace) {
    const target = to.get(u.unit);
    if (target !== undefined) moves.push({ unit: u.unit, from: u.machine, to: target, reason: u.reason });
  }
  return moves;
}

/** True when the plan changes no decision (units may still be pending). */
export function isEmptyPlan(plan: Plan): boolean {
  return plan.place.length === 0 && plan.unplace.length === 0;
}

/** The decisions after a plan is committed: what the engine's reconciler writes, as a map. */
export function applyPlan(decisions: ReadonlyMap<string, string>, plan: Plan): Map<string, string> {
  const next = new Map(decisions);
  for (const u of plan.unplace) if (next.get(u.unit) === u.machine) next.delete(u.unit);
  for (const p of plan.place) next.set(p.unit, p.machine);
  return next;
}

/** How many times one unit may be placed in one plan before it is declared unsettled. */
const MAX_PLACEMENTS = 4;
/** Below this many able machines, a constrained unit scans them directly instead of walking the heap. */
const SHORT_LIST = 32;
/** How many machines a "no machine can take it" reason names. */
const REASON_EXAMPLES = 3;

const NONE = -1;
const EMPTY: readonly number[] = Object.freeze([]);

/** An array of n `undefined`s (filled, so V8 keeps it a fast packed array). */
function sparse<T>(n: number): (T | undefined)[] {
  return new Array<T | undefined>(n).fill(undefined);
}

class Scheduling {
  private readonly units: SchedulableUnit[];
  private readonly byName = new Map<string, number>();
  private readonly machines: MachineInfo[];
  private readonly rankOf = new Map<string, number>();
  private readonly statics: StaticMatches;
  private readonly staticByUnit: (StaticMatch | undefined)[] = [];
  private readonly names: NamePatternIndex;
  private readonly decisions: ReadonlyMap<string, string>;

  /** Unit wants a machine from the engine: not inactive, not global. */
  private readonly wants: Uint8Array;
  /** Unit is global and not inactive: it runs on every machine it matches. */
  private readonly activeGlobal: Uint8Array;
  /** Unit has no constraint at all: the least-loaded machine will do. */
  private readonly plain: Uint8Array;

  /** Where each unit is in the plan being built (machine rank or NONE). */
  private readonly at: Int32Array;
  /** The machine rank each unit was committed to, NONE when none or not live. */
  private readonly originalRank: Int32Array;
  private readonly unitsOn: number[][];
  private readonly loads: Float64Array;
  private board: LoadBoard | undefined;

  // Conflicts=, by distinct pattern: patternsOf[u] are u's own patterns,
  // matchedBy[u] the patterns that match u's name; matching[p] counts, per
  // machine, the units there whose name p matches, holding[p] the units
  // there that carry p.
  private readonly patterns: string[] = [];
  private readonly patternsOf: (number[] | undefined)[];
  private readonly matchedBy: (number[] | undefined)[];
  private readonly matching: Map<number, number>[] = [];
  private readonly holding: Map<number, number>[] = [];
  private readonly conflictingGlobals: number[] = [];

  /** MachineOf target → its followers (non-global targets only). */
  private readonly followers: (number[] | undefined)[];
  /** Replaces=, circular relations dropped: what each unit replaces, and what replaces it. */
  private readonly replaces: (number[] | undefined)[];
  private readonly replacedBy: (number[] | undefined)[];
  private readonly order: Int32Array;
  private readonly position: Int32Array;

  private readonly placements: Uint8Array;
  private readonly leaveReason = new Map<number, string>();
  private readonly pendingReason = new Map<number, string>();
  /** Positions (in `order`) of units pushed off their machine, to place again. */
  private readonly agenda: number[] = [];
  /** Something happened that may let a pending unit run after all. */
  private unblocked = false;

  constructor(state: ClusterState) {
    this.units = uniqueSorted(state.units, (u) => u.name);
    this.units.forEach((u, i) => this.byName.set(u.name, i));
    this.machines = uniqueSorted(state.machines, (m) => m.id);
    this.machines.forEach((m, r) => this.rankOf.set(m.id, r));
    this.decisions = state.decisions;
    this.statics = new StaticMatches(this.machines);
    this.names = new NamePatternIndex(
      this.units.map((u) => u.name),
      this.byName,
    );

    const n = this.units.length;
    const machineCount = this.machines.length;
    this.wants = new Uint8Array(n);
    this.activeGlobal = new Uint8Array(n);
    this.plain = new Uint8Array(n);
    this.at = new Int32Array(n).fill(NONE);
    this.originalRank = new Int32Array(n).fill(NONE);
    this.placements = new Uint8Array(n);
    this.unitsOn = Array.from({ length: machineCount }, () => []);
    this.loads = new Float64Array(machineCount);
    this.patternsOf = sparse<number[]>(n);
    this.matchedBy = sparse<number[]>(n);
    this.followers = sparse<number[]>(n);

    this.units.forEach((u, i) => {
      if (u.desiredState === 'inactive') return;
      if (u.requirements.global) this.activeGlobal[i] = 1;
      else this.wants[i] = 1;
    });
    this.indexConflicts();
    const after = this.indexFollowers();
    ({ replaces: this.replaces, replacedBy: this.replacedBy } = this.indexReplaces(after));
    this.order = dependencyOrder(n, after);
    this.position = new Int32Array(n);
    this.order.forEach((i, pos) => (this.position[i] = pos));
    this.units.forEach((u, i) => {
      const r = u.requirements;
      this.plain[i] = Number(
        this.wants[i] === 1 &&
          requiredMachineId(r) === undefined &&
          r.machineMetadata.length === 0 &&
          r.machineOf.length === 0 &&
          this.patternsOf[i] === undefined &&
          this.matchedBy[i] === undefined &&
          this.replacedBy[i] === undefined,
      );
    });
    this.countGlobals();
  }

  run(): Plan {
    this.keepValidDecisions();
    this.board = new LoadBoard(this.loads);
    this.placeTheRest();
    return this.plan();
  }

  // ---- indexing -----------------------------------------------------------

  private indexConflicts(): void {
    const idOf = new Map<string, number>();
    this.units.forEach((u, i) => {
      if (u.requirements.conflicts.length === 0) return;
      if (this.wants[i] === 0 && this.activeGlobal[i] === 0) return;
      const own = new Set<number>();
      for (const pattern of u.requirements.conflicts) {
        let p = idOf.get(pattern);
        if (p === undefined) {
          p = this.patterns.length;
          idOf.set(pattern, p);
          this.patterns.push(pattern);
          this.matching.push(new Map());
          this.holding.push(new Map());
        }
        own.add(p);
      }
      this.patternsOf[i] = [...own];
    });
    this.patterns.forEach((pattern, p) => {
      for (const j of this.names.matches(pattern)) (this.matchedBy[j] ??= []).push(p);
    });
  }

  /** Fills `followers`; returns the "decide before" edges MachineOf implies. */
  private indexFollowers(): (number[] | undefined)[] {
    const after = sparse<number[]>(this.units.length);
    this.units.forEach((u, i) => {
      if (this.wants[i] === 0) return;
      for (const peer of new Set(u.requirements.machineOf)) {
        const t = this.byName.get(peer);
        if (t === undefined || t === i || this.units[t]?.requirements.global === true) continue;
        (this.followers[t] ??= []).push(i);
        (after[t] ??= []).push(i);
      }
    });
    return after;
  }

  /** Replaces= between units that want a machine, circular ones dropped; adds their edges to `after`. */
  private indexReplaces(after: (number[] | undefined)[]): {
    replaces: (number[] | undefined)[];
    replacedBy: (number[] | undefined)[];
  } {
    const n = this.units.length;
    const raw = sparse<number[]>(n);
    const seen = new Int32Array(n).fill(NONE);
    this.units.forEach((u, x) => {
      if (this.wants[x] === 0 || u.requirements.replaces.length === 0) return;
      const out: number[] = [];
      for (const pattern of u.requirements.replaces) {
        for (const y of this.names.matches(pattern)) {
          if (y === x || this.wants[y] === 0 || seen[y] === x) continue;
          seen[y] = x;
          out.push(y);
        }
      }
      if (out.length > 0) raw[x] = out;
    });
    if (!raw.some((r) => r !== undefined)) return { replaces: raw, replacedBy: sparse<number[]>(n) };
    const replaces = acyclicReplaces(raw);
    const replacedBy = sparse<number[]>(n);
    replaces.forEach((ys, x) => {
      for (const y of ys ?? EMPTY) {
        (replacedBy[y] ??= []).push(x);
        (after[x] ??= []).push(y);
      }
    });
    return { replaces, replacedBy };
  }

  /** Global units as load, and as holders of (or targets of) Conflicts patterns, on their machines. */
  private countGlobals(): void {
    let everywhere = 0;
    this.units.forEach((u, g) => {
      if (this.activeGlobal[g] === 0) return;
      const where = this.staticOf(g);
      if (where.everywhere) everywhere++;
      else for (const m of where.ranks) this.loads[m] = (this.loads[m] as number) + 1;
      if (this.patternsOf[g] === undefined && this.matchedBy[g] === undefined) return;
      this.conflictingGlobals.push(g);
      for (const m of where.ranks) this.countConflicts(g, m, 1);
    });
    if (everywhere > 0) for (let m = 0; m < this.loads.length; m++) this.loads[m] = (this.loads[m] as number) + everywhere;
  }

  // ---- phase 1: keep what still holds --------------------------------------

  private keepValidDecisions(): void {
    for (const i of this.order) {
      const committed = this.decisions.get(this.nameOf(i));
      if (committed === undefined) continue;
      const m = this.rankOf.get(committed);
      if (m !== undefined) this.originalRank[i] = m;
      const why = this.whyNotKeep(i, committed, m);
      if (why !== null) {
        this.leaveReason.set(i, why);
        continue;
      }
      this.put(i, m as number);
    }
  }

  private whyNotKeep(i: number, committed: string, m: number | undefined): string | null {
    const unit = this.units[i] as SchedulableUnit;
    if (unit.desiredState === 'inactive') return 'desired state is inactive';
    if (unit.requirements.global) return 'global units are not scheduled: every matching machine runs them';
    if (m === undefined) return `machine ${shortId(committed)} is gone`;
    const where = `machine ${shortId(committed)}`;
    const r = unit.requirements;
    const wanted = requiredMachineId(r);
    if (wanted !== undefined && !machineIdMatches(committed, wanted)) return `${where} does not match MachineID=${wanted}`;
    if (this.staticOf(i).mask[m] !== 1) return `${where} no longer matches MachineMetadata ${formatMetadata(r.machineMetadata)}`;
    for (const peer of r.machineOf) {
      const t = this.byName.get(peer);
      if (t === i) continue; // MachineOf itself: trivially true
      if (t !== undefined && this.activeGlobal[t] === 1) continue; // checked with the rest below
      if (t === undefined || this.at[t] !== m) return `MachineOf peer ${peer} is not on ${where}`;
    }
    const dynamic = this.whyNotOn(i, m);
    return dynamic === null ? null : `${where} ${dynamic}`;
  }

  // ---- phase 2: place the rest ---------------------------------------------

  private placeTheRest(): void {
    const n = this.units.length;
    // Whatever phase 1 pushed off its machine is placed in order below anyway.
    this.agenda.length = 0;
    this.unblocked = false;
    let next = 0;
    for (;;) {
      let pos: number;
      if (this.agenda.length > 0 && (next >= n || (this.agenda[0] as number) < next)) pos = popMin(this.agenda);
      else if (next < n) pos = next++;
      else if (this.unblocked) {
        // Something moved out of the way or became a MachineOf target: give the waiting units another look.
        this.unblocked = false;
        for (const i of this.pendingReason.keys()) pushMin(this.agenda, this.position[i] as number);
        continue;
      } else break;
      const i = this.order[pos] as number;
      if (this.wants[i] === 1 && this.at[i] === NONE) this.placeOne(i);
    }
  }

  private placeOne(i: number): void {
    if (this.placements[i] === MAX_PLACEMENTS) {
      this.pend(i, 'scheduling does not settle: it keeps being moved by Replaces or MachineOf peers');
      return;
    }
    const r = (this.units[i] as SchedulableUnit).requirements;
    if (this.machines.length === 0) return this.pend(i, 'no machines are available');

    // MachineOf: the unit goes where its (non-global) peers already are.
    let target = NONE;
    let targetPeer = '';
    for (const peer of r.machineOf) {
      const t = this.byName.get(peer);
      if (t === undefined) return this.pend(i, `waiting for MachineOf peer ${peer}, which is not submitted`);
      if (t === i || this.activeGlobal[t] === 1) continue;
      if ((this.units[t] as SchedulableUnit).requirements.global) {
        return this.pend(i, `waiting for MachineOf peer ${peer}, a global unit whose desired state is inactive`);
      }
      if (this.wants[t] === 0) return this.pend(i, `waiting for MachineOf peer ${peer}, whose desired state is inactive`);
      const tm = this.at[t] as number;
      if (tm === NONE) return this.pend(i, `waiting for MachineOf peer ${peer}, which is not scheduled`);
      if (target === NONE) {
        target = tm;
        targetPeer = peer;
      } else if (target !== tm) {
        return this.pend(
          i,
          `MachineOf peers ${targetPeer} and ${peer} are on different machines (${this.shortOf(target)}, ${this.shortOf(tm)})`,
        );
      }
    }
    if (target !== NONE) {
      const why = this.whyNotStatic(i, target) ?? this.whyNotOn(i, target);
      if (why !== null) {
        return this.pend(i, `cannot follow MachineOf peer ${targetPeer} to machine ${this.shortOf(target)}: it ${why}`);
      }
      return this.placeAt(i, target);
    }

    const able = this.staticOf(i);
    if (able.ranks.length === 0) return this.pend(i, this.noStaticMatch(r));
    const board = this.board as LoadBoard;
    let best = NONE;
    if (this.plain[i] === 1) {
      best = board.all.first();
    } else if (able.ranks.length <= SHORT_LIST) {
      let bestLoad = Infinity;
      for (const m of able.ranks) {
        const load = board.loads[m] as number;
        if (load < bestLoad && this.ableOn(i, m)) {
          best = m;
          bestLoad = load;
        }
      }
    } else {
      const heap = able.everywhere ? board.all : board.subset(able, able.ranks);
      best =
        heap === undefined
          ? board.all.find((m) => able.mask[m] === 1 && this.ableOn(i, m))
          : heap.find((m) => this.ableOn(i, m));
    }
    if (best === NONE) return this.pend(i, this.noMachineCanTakeIt(i, able));
    this.placeAt(i, best);
  }

  private placeAt(i: number, m: number): void {
    this.placements[i] = (this.placements[i] as number) + 1;
    this.pendingReason.delete(i);
    this.put(i, m);
  }

  private pend(i: number, reason: string): void {
    this.pendingReason.set(i, reason);
  }

  // ---- the schedule being built ----------------------------------------------

  /** Records unit i on machine m, and pushes off m the units i replaces. */
  private put(i: number, m: number): void {
    this.at[i] = m;
    this.unitsOn[m]?.push(i);
    this.addLoad(m, 1);
    this.countConflicts(i, m, 1);
    if (this.followers[i]?.some((f) => this.pendingReason.has(f))) this.unblocked = true;
    for (const y of this.replaces[i] ?? EMPTY) {
      if (this.at[y] === m) this.evict(y, `replaced by ${this.nameOf(i)} on machine ${this.shortOf(m)}`);
    }
  }

  /** Takes unit y off its machine to be placed again; its followers there go with it. */
  private evict(y: number, reason: string): void {
    const m = this.at[y] as number;
    const on = this.unitsOn[m] as number[];
    on.splice(on.indexOf(y), 1);
    this.at[y] = NONE;
    this.addLoad(m, -1);
    this.countConflicts(y, m, -1);
    if (this.originalRank[y] === m && !this.leaveReason.has(y)) this.leaveReason.set(y, reason);
    pushMin(this.agenda, this.position[y] as number);
    this.unblocked = true;
    for (const f of this.followers[y] ?? EMPTY) {
      if (this.at[f] === m) this.evict(f, `MachineOf peer ${this.nameOf(y)} left machine ${this.shortOf(m)}`);
    }
  }

  private addLoad(m: number, delta: number): void {
    if (this.board === undefined) this.loads[m] = (this.loads[m] as number) + delta;
    else this.board.adjust(m, delta);
  }

  private countConflicts(u: number, m: number, delta: number): void {
    for (const p of this.matchedBy[u] ?? EMPTY) bump(this.matching[p] as Map<number, number>, m, delta);
    for (const p of this.patternsOf[u] ?? EMPTY) bump(this.holding[p] as Map<number, number>, m, delta);
  }

  // ---- feasibility against the schedule --------------------------------------

  /** Fast yes/no for a machine that already passes MachineID/MachineMetadata. */
  private ableOn(i: number, m: number): boolean {
    return this.whyNotOn(i, m) === null;
  }

  private whyNotStatic(i: number, m: number): string | null {
    const r = (this.units[i] as SchedulableUnit).requirements;
    if (this.staticOf(i).mask[m] === 1) return null;
    const wanted = requiredMachineId(r);
    if (wanted !== undefined && !machineIdMatches((this.machines[m] as MachineInfo).id, wanted)) {
      return `does not match MachineID=${wanted}`;
    }
    return `does not match MachineMetadata ${formatMetadata(r.machineMetadata)}`;
  }

  /**
   * Why unit i (not itself scheduled) cannot join machine m given what is
   * scheduled there: global MachineOf peers, Conflicts both ways, Replaces.
   * Null when it can. Non-global MachineOf peers are the caller's business.
   */
  private whyNotOn(i: number, m: number): string | null {
    const r = (this.units[i] as SchedulableUnit).requirements;
    for (const peer of r.machineOf) {
      const t = this.byName.get(peer);
      if (t === undefined || this.activeGlobal[t] === 0) continue;
      if (this.staticOf(t).mask[m] !== 1) {
        return `does not run global MachineOf peer ${peer}`;
      }
    }
    if (this.conflictsOn(i, m)) return `runs conflicting ${this.conflictingUnitOn(i, m)}`;
    for (const x of this.replacedBy[i] ?? EMPTY) {
      if (this.at[x] === m) return `runs ${this.nameOf(x)}, which replaces it`;
    }
    return null;
  }

  private conflictsOn(i: number, m: number): boolean {
    for (const p of this.patternsOf[i] ?? EMPTY) if (((this.matching[p] as Map<number, number>).get(m) ?? 0) > 0) return true;
    for (const p of this.matchedBy[i] ?? EMPTY) if (((this.holding[p] as Map<number, number>).get(m) ?? 0) > 0) return true;
    return false;
  }

  /** The first (by name) unit on m that conflicts with i, for reasons. */
  private conflictingUnitOn(i: number, m: number): string {
    let found = NONE;
    const consider = (j: number): void => {
      if (j !== i && (found === NONE || j < found) && (this.patternHits(i, j) || this.patternHits(j, i))) found = j;
    };
    for (const j of this.unitsOn[m] ?? EMPTY) consider(j);
    for (const g of this.conflictingGlobals) {
      if (this.staticOf(g).mask[m] === 1) consider(g);
    }
    return found === NONE ? 'a unit' : `${this.nameOf(found)}${this.activeGlobal[found] === 1 ? ' (global)' : ''}`;
  }

  /** One of a's Conflicts patterns matches b's name. */
  private patternHits(a: number, b: number): boolean {
    return (this.patternsOf[a] ?? EMPTY).some((p) => binarySearch(this.names.matches(this.patterns[p] as string), b));
  }

  // ---- reasons ---------------------------------------------------------------

  private noStaticMatch(r: Requirements): string {
    const wanted = requiredMachineId(r);
    if (wanted !== undefined) {
      const pinned = this.machines.find((m) => machineIdMatches(m.id, wanted));
      if (pinned === undefined) return `no live machine matches MachineID=${wanted}`;
      return `machine ${shortId(pinned.id)} (MachineID=${wanted}) does not match MachineMetadata ${formatMetadata(r.machineMetadata)}`;
    }
    return `no machine matches MachineMetadata ${formatMetadata(r.machineMetadata)}`;
  }

  private noMachineCanTakeIt(i: number, able: StaticMatch): string {
    const examples: string[] = [];
    for (const m of able.ranks) {
      if (examples.length === REASON_EXAMPLES) break;
      examples.push(`${this.shortOf(m)} ${this.whyNotOn(i, m) ?? 'is busy'}`);
    }
    const more = able.ranks.length - examples.length;
    const which = able.everywhere ? 'no machine can take it' : 'no machine matching its requirements can take it';
    return `${which}: ${examples.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
  }

  // ---- the plan --------------------------------------------------------------

  private plan(): Plan {
    const place: Placement[] = [];
    const unplace: Unplacement[] = [];
    const pending: PendingUnit[] = [];
    const unknown = [...this.decisions.keys()].filter((name) => !this.byName.has(name)).sort(compare);
    let u = 0;
    this.units.forEach((unit, i) => {
      for (; u < unknown.length && (unknown[u] as string) < unit.name; u++) {
        const name = unknown[u] as string;
        unplace.push({ unit: name, machine: this.decisions.get(name) as string, reason: 'unit no longer exists' });
      }
      const committed = this.decisions.get(unit.name);
      const now = this.at[i] as number;
      const nowId = now === NONE ? undefined : (this.machines[now] as MachineInfo).id;
      if (committed !== undefined && committed !== nowId) {
        unplace.push({ unit: unit.name, machine: committed, reason: this.leaveReason.get(i) ?? 'rescheduled' });
      }
      if (nowId !== undefined && nowId !== committed) place.push({ unit: unit.name, machine: nowId });
      if (this.wants[i] === 1 && nowId === undefined) {
        pending.push({ unit: unit.name, reason: this.pendingReason.get(i) ?? 'not scheduled' });
      }
    });
    for (; u < unknown.length; u++) {
      const name = unknown[u] as string;
      unplace.push({ unit: name, machine: this.decisions.get(name) as string, reason: 'unit no longer exists' });
    }
    return { place, unplace, pending };
  }

  /** The machines whose MachineID/MachineMetadata suit unit u, memoized per unit. */
  private staticOf(u: number): StaticMatch {
    let found = this.staticByUnit[u];
    if (found === undefined) {
      found = this.statics.of((this.units[u] as SchedulableUnit).requirements);
      this.staticByUnit[u] = found;
    }
    return found;
  }

  private nameOf(i: number): string {
    return (this.units[i] as SchedulableUnit).name;
  }

  private shortOf(m: number): string {
    return shortId((this.machines[m] as MachineInfo).id);
  }
}

function bump(counts: Map<number, number>, m: number, delta: number): void {
  const next = (counts.get(m) ?? 0) + delta;
  if (next === 0) counts.delete(m);
  else counts.set(m, next);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted by key, first occurrence kept for a repeated key. Input that is already sorted (etcd returns keys in order) is not re-sorted. */
function uniqueSorted<T>(items: readonly T[], key: (t: T) => string): T[] {
  let sorted = true;
  for (let i = 1; i < items.length && sorted; i++) sorted = key(items[i - 1] as T) < key(items[i] as T);
  if (sorted) return items.slice();
  const seen = new Set<string>();
  const out = items.filter((t) => {
    const k = key(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return out.sort((a, b) => compare(key(a), key(b)));
}

function binarySearch(sorted: readonly number[], v: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const x = sorted[mid] as number;
    if (x === v) return true;
    if (x < v) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
