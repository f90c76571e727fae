// What flotctl needs from a cluster, independent of how it is reached. The
// etcd driver (etcd-driver.ts) reads and writes the registry directly; the
// API driver (api-driver.ts) implements the same interface over HTTP. Its
// records are flotctl's own (its JSON output), not the registry's.
import type { CreateResult, DesiredState } from '../registry/index.js';

/** The state of a unit as fleet reported it: derived from its decision and its machine's report. */
export type CurrentState = 'inactive' | 'loaded' | 'launched';

/** A unit as stored: its file and desired state. */
export interface StoredUnit {
  name: string;
  /** Canonical unit file text, as stored. */
  text: string;
  /** SHA-1 of text. */
  hash: string;
  global: boolean;
  desiredState: DesiredState;
}

/** A unit with what is known of it in the cluster. */
export interface UnitInfo extends StoredUnit {
  /** For global units always derived as inactive: they have no single machine. */
  currentState: CurrentState;
  /** The machine the engine decided the unit onto (not for global units). */
  machine?: string | undefined;
  /** Why the engine could not place it, when it could not. */
  pending?: PendingInfo | undefined;
}

export interface MachineInfo {
  id: string;
  publicIp: string;
  hostname: string;
  metadata: Record<string, string>;
  version: string;
  since: string;
  /** Where the machine's flotillad serves the API on TCP, when it does (status, journal). */
  apiUrl?: string | undefined;
  /** Other hosts that have this machine ID too and, refused, do not act on its schedule. */
  duplicates?: DuplicateHostInfo[] | undefined;
}

export interface DuplicateHostInfo {
  hostname: string;
  publicIp: string;
  since: string;
}

/** What systemd on one machine reports about one unit. */
export interface UnitStateInfo {
  unit: string;
  machine: string;
  hash: string;
  loadState: string;
  activeState: string;
  subState: string;
  since: string;
}

export interface PendingInfo {
  unit: string;
  reason: string;
  since: string;
}

/** A unit to write: its canonical text, hash and whether it is global. */
export interface NewUnit {
  name: string;
  text: string;
  hash: string;
  global: boolean;
}

/** The engine's decision that a unit runs on a machine. */
export interface DecisionInfo {
  unit: string;
  machine: string;
  hash: string;
  state: 'loaded' | 'launched';
}

/** What is known now about one unit, for blocking commands. */
export interface Observation {
  decisions: readonly DecisionInfo[];
  states: readonly UnitStateInfo[];
  pending: PendingInfo | undefined;
}

/** A live view of the cluster, kept current (by a watch where the driver can). */
export interface ClusterWatch {
  observe(unit: string): Observation;
  machine(id: string): MachineInfo | undefined;
  /** Calls fn after each change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void;
  close(): Promise<void>;
}

export interface CtlDriver {
  listUnits(): Promise<UnitInfo[]>;
  /** The named units that exist, with their current state. */
  getUnits(names: readonly string[]): Promise<Map<string, UnitInfo>>;
  /** The stored files of the named units that exist (cheaper than getUnit: no states). */
  getStoredUnits(names: readonly string[]): Promise<Map<string, StoredUnit>>;
  listMachines(): Promise<MachineInfo[]>;
  listStates(): Promise<UnitStateInfo[]>;
  listPending(): Promise<PendingInfo[]>;
  /** Writes units all or nothing; an existing unit with other contents is refused unless replace. */
  /** allowUnknownKeys: the API server checks the units again, and must accept unknown [X-Fleet] keys too. */
  createUnits(units: readonly NewUnit[], opts: { replace: boolean; allowUnknownKeys?: boolean | undefined }): Promise<Map<string, CreateResult>>;
  /** createUnits, also giving the units it writes (created or replaced) this desired state in the same writes. Without it, setDesiredState follows. */
  createUnitsInState?(units: readonly NewUnit[], opts: { replace: boolean }, state: DesiredState): Promise<Map<string, CreateResult>>;
  /** Refuses unknown units before writing anything. */
  setDesiredState(names: readonly string[], state: DesiredState): Promise<void>;
  destroyUnit(name: string): Promise<void>;
  /** Many units in a few requests; unknown units are refused after the others are destroyed. Without it, destroyUnit one by one. */
  destroyUnits?(names: readonly string[]): Promise<void>;
  watch(): Promise<ClusterWatch>;
  /** Marks a machine drained or clears the mark (flotctl drain, undrain). Without it, drain is refused. */
  setDraining?(machine: string, draining: boolean): Promise<void>;
  close(): Promise<void>;
}
