// The etcd driver: flotctl straight to the registry. Every read and write
// goes through Registry; no etcd key is named here.
import { deleteByUnit, setByUnit } from '../registry/by-unit.js';
import {
  Informer,
  decode,
  listDuplicates,
  type CreateResult,
  type DecisionRecord,
  type DesiredState,
  type DuplicateRecord,
  type MachineRecord,
  type PendingRecord,
  type Registry,
  type StateRecord,
  type UnitWithState,
} from '../registry/index.js';
import type { ClusterWatch, CtlDriver, DecisionInfo, MachineInfo, NewUnit, Observation, PendingInfo, StoredUnit, UnitInfo, UnitStateInfo } from './driver.js';
import { currentState } from './state.js';
import { cmp } from './util.js';

export class EtcdDriver implements CtlDriver {
  constructor(readonly registry: Registry) {}

  async listUnits(): Promise<UnitInfo[]> {
    const [units, decisions, states, pending] = await Promise.all([
      this.registry.listUnits(),
      this.registry.listDecisions(),
      this.registry.listStates(),
      this.registry.listPending(),
    ]);
    const decisionOf = new Map(decisions.map((d) => [d.unit, d]));
    const statesOf = groupBy(states, (s) => s.unit);
    const pendingOf = new Map(pending.map((p) => [p.unit, p]));
    return units
      .map((u) => toUnitInfo(u, decisionOf.get(u.name), statesOf.get(u.name) ?? [], pendingOf.get(u.name)))
      .sort((a, b) => cmp(a.name, b.name));
  }

  async getUnits(names: readonly string[]): Promise<Map<string, UnitInfo>> {
    const stored = await this.getStoredUnits(names);
    const out = new Map<string, UnitInfo>();
    if (stored.size === 0) return out;
    // A few units: their own states; many: one listing of all.
    const few = stored.size <= 16;
    const [decisions, states, pending] = await Promise.all([
      this.registry.listDecisions(),
      few ? Promise.all([...stored.keys()].map((n) => this.registry.listStates(n))).then((l) => l.flat()) : this.registry.listStates(),
      this.registry.listPending(),
    ]);
    const decisionOf = new Map(decisions.map((d) => [d.unit, d]));
    const statesOf = groupBy(states, (s) => s.unit);
    const pendingOf = new Map(pending.map((p) => [p.unit, p]));
    for (const [name, u] of stored) out.set(name, toUnitInfo(u, decisionOf.get(name), statesOf.get(name) ?? [], pendingOf.get(name)));
    return out;
  }

  async getStoredUnits(names: readonly string[]): Promise<Map<string, StoredUnit>> {
    // Many units per request (100 units: 2 requests, not 100).
    const out = new Map<string, StoredUnit>();
    for (const [name, u] of await this.registry.getUnits(names)) {
      out.set(name, { name: u.name, text: u.text, hash: u.hash, global: u.global, desiredState: u.desiredState });
    }
    return out;
  }

  async listMachines(): Promise<MachineInfo[]> {
    // Metadata set at run time (API) is shown over what the machine booted with.
    const [machines, dynamic, duplicates] = await Promise.all([this.registry.listMachines(), this.registry.listMetadata(), listDuplicates(this.registry)]);
    return machines
      .map((m) => withDuplicates(toMachineInfo({ ...m, metadata: { ...m.metadata, ...dynamic.get(m.id) } }), duplicates.get(m.id)))
      .sort((a, b) => cmp(a.id, b.id));
  }

  async listStates(): Promise<UnitStateInfo[]> {
    const states = await this.registry.listStates();
    return states.map(toStateInfo).sort((a, b) => cmp(a.unit, b.unit) || cmp(a.machine, b.machine));
  }

  async listPending(): Promise<PendingInfo[]> {
    const pending = await this.registry.listPending();
    return pending.map(toPendingInfo).sort((a, b) => cmp(a.unit, b.unit));
  }

  createUnits(units: readonly NewUnit[], opts: { replace: boolean }): Promise<Map<string, CreateResult>> {
    return this.registry.createUnits(units, { replace: opts.replace });
  }

  createUnitsInState(units: readonly NewUnit[], opts: { replace: boolean }, state: DesiredState): Promise<Map<string, CreateResult>> {
    return this.registry.createUnits(units, { replace: opts.replace, desiredState: state });
  }

  setDesiredState(names: readonly string[], state: DesiredState): Promise<void> {
    return this.registry.setDesiredState(names, state);
  }

  destroyUnit(name: string): Promise<void> {
    return this.registry.destroyUnit(name);
  }

  destroyUnits(names: readonly string[]): Promise<void> {
    return this.registry.destroyUnits(names);
  }

  setDraining(machine: string, draining: boolean): Promise<void> {
    return this.registry.setDraining(machine, draining);
  }

  async watch(): Promise<ClusterWatch> {
    const w = new EtcdClusterWatch(this.registry);
    try {
      await w.start();
    } catch (err) {
      await w.close();
      throw err;
    }
    return w;
  }

  async close(): Promise<void> {
    this.registry.close();
  }
}

/**
 * Informers over decisions, states, pending reasons and machines, indexed
 * by unit, so a blocking command reacts to each change instead of polling.
 */
class EtcdClusterWatch implements ClusterWatch {
  private readonly decisions = new Map<string, Map<string, DecisionInfo>>();
  private readonly states = new Map<string, Map<string, UnitStateInfo>>();
  private readonly schedule: Informer<DecisionRecord>;
  private readonly stateInformer: Informer<StateRecord>;
  private readonly pending: Informer<PendingRecord>;
  private readonly machines: Informer<MachineRecord>;
  private readonly listeners = new Set<() => void>();

  constructor(registry: Registry) {
    const k = registry.keys;
    this.schedule = new Informer(registry, k.schedulePrefix, decode.decision);
    this.stateInformer = new Informer(registry, k.statesPrefix, decode.state);
    this.pending = new Informer(registry, k.pendingPrefix, decode.pending);
    this.machines = new Informer(registry, k.machinesPrefix, decode.machine);
    this.schedule.subscribe((events) => {
      for (const e of events) {
        const v = e.value ?? e.prev;
        if (!v) continue;
        if (e.type === 'put' && e.value) setByUnit(this.decisions, v.unit, v.machine, e.value);
        else deleteByUnit(this.decisions, v.unit, v.machine);
      }
      this.changed();
    });
    this.stateInformer.subscribe((events) => {
      for (const e of events) {
        const v = e.value ?? e.prev;
        if (!v) continue;
        if (e.type === 'put' && e.value) setByUnit(this.states, v.unit, v.machine, toStateInfo(e.value));
        else deleteByUnit(this.states, v.unit, v.machine);
      }
      this.changed();
    });
    this.pending.subscribe(() => this.changed());
    this.machines.subscribe(() => this.changed());
  }

  async start(): Promise<void> {
    await Promise.all([this.schedule.start(), this.stateInformer.start(), this.pending.start(), this.machines.start()]);
  }

  observe(unit: string): Observation {
    const p = this.pending.get(unit);
    return {
      decisions: [...(this.decisions.get(unit)?.values() ?? [])],
      states: [...(this.states.get(unit)?.values() ?? [])],
      pending: p ? toPendingInfo(p) : undefined,
    };
  }

  machine(id: string): MachineInfo | undefined {
    const m = this.machines.get(id);
    return m ? toMachineInfo(m) : undefined;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.all([this.schedule.stop(), this.stateInformer.stop(), this.pending.stop(), this.machines.stop()]);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}



function toUnitInfo(u: UnitWithState | StoredUnit, decision: DecisionRecord | undefined, states: readonly StateRecord[], pending: PendingRecord | undefined): UnitInfo {
  const info: UnitInfo = {
    name: u.name,
    text: u.text,
    hash: u.hash,
    global: u.global,
    desiredState: u.desiredState,
    currentState: u.global ? 'inactive' : currentState(decision, states.map(toStateInfo)),
  };
  if (decision && !u.global) info.machine = decision.machine;
  if (pending) info.pending = toPendingInfo(pending);
  return info;
}

function withDuplicates(info: MachineInfo, duplicates: readonly DuplicateRecord[] | undefined): MachineInfo {
  if (duplicates && duplicates.length > 0) info.duplicates = duplicates.map((d) => ({ hostname: d.hostname, publicIp: d.publicIp, since: d.since }));
  return info;
}

function toMachineInfo(m: MachineRecord): MachineInfo {
  const info: MachineInfo = { id: m.id, publicIp: m.publicIp, hostname: m.hostname, metadata: { ...m.metadata }, version: m.version, since: m.since };
  if (m.apiUrl !== undefined) info.apiUrl = m.apiUrl;
  return info;
}

function toStateInfo(s: StateRecord): UnitStateInfo {
  return {
    unit: s.unit,
    machine: s.machine,
    hash: s.hash,
    loadState: s.loadState,
    activeState: s.activeState,
    subState: s.subState,
    since: s.since,
  };
}

function toPendingInfo(p: PendingRecord): PendingInfo {
  return { unit: p.unit, reason: p.reason, since: p.since };
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}
