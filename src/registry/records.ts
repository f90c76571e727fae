// The values stored under the key layout: JSON objects with a version field
// `v`. Decoders check shape and version, so a corrupt or foreign value is
// reported as a DecodeError instead of reaching the daemons.
export const RECORD_VERSION = 1;

export type DesiredState = 'inactive' | 'loaded' | 'launched';
export const DESIRED_STATES: readonly DesiredState[] = ['inactive', 'loaded', 'launched'];

/** `units/<name>`: the unit file as submitted (canonical text) and facts derived from it at submit time. */
export interface UnitRecord {
  name: string;
  /** Canonical unit file text. */
  text: string;
  /** SHA-1 of the canonical text. */
  hash: string;
  /** Whether [X-Fleet] Global is set, so the global index stays in step. */
  global: boolean;
}

/** `desired/<name>`: what the user asked for. */
export interface DesiredRecord {
  state: DesiredState;
}

/** `global/<name>`: what every agent needs to run a global unit. */
export interface GlobalRecord {
  name: string;
  hash: string;
  state: DesiredState;
}

/** `machines/<id>`: a live machine, bound to its agent's lease. */
export interface MachineRecord {
  id: string;
  publicIp: string;
  metadata: Record<string, string>;
  version: string;
  hostname: string;
  bootId: string;
  /** ISO time the agent registered. */
  since: string;
  /** Where this machine's flotillad serves the API on TCP (http(s)://host:port), when it does. */
  apiUrl?: string;
  /** agent_fence_after in seconds (0: off). Absent: an agent that does not fence, so the engine holds none of its units. */
  fenceAfter?: number;
}

/** `duplicates/<id>/<host>`: a host that has this machine ID too and, refused, does not act on its schedule. */
export interface DuplicateRecord {
  machine: string;
  hostname: string;
  publicIp: string;
  /** ISO time it was refused. */
  since: string;
}

/** `metadata/<id>/<key>`: metadata set at run time (API), outliving the lease. */
export interface MetadataRecord {
  value: string;
}

/** `drain/<id>`: the machine is being drained (flotctl drain); cleared by flotctl undrain. */
export interface DrainRecord {
  /** ISO time the drain was asked for. */
  since: string;
}

/** `schedule/<machine>/<unit>`: the engine's decision that a unit runs on a machine. */
export interface DecisionRecord {
  unit: string;
  machine: string;
  hash: string;
  state: Exclude<DesiredState, 'inactive'>;
  /**
   * Seconds: the unit's effective fence on that machine (src/unit/fence.ts),
   * written by the engine, so a leader that takes over after the machine
   * vanished still knows how long to hold the unit. Absent: no fence.
   */
  fenceAfter?: number;
}

/** `pending/<unit>`: why the engine could not place a unit. */
export interface PendingRecord {
  unit: string;
  reason: string;
  since: string;
}

/** `states/<unit>/<machine>`: what systemd on that machine says about the unit. */
export interface StateRecord {
  unit: string;
  machine: string;
  hash: string;
  loadState: string;
  activeState: string;
  subState: string;
  /** ISO time of the last change. */
  since: string;
}

/** `engine/leader`: the current engine. */
export interface LeaderRecord {
  id: string;
  since: string;
}

/** `services/<service>/<instance>`: an endpoint announced for discovery. */
export interface EndpointRecord {
  service: string;
  instance: string;
  host: string;
  port: number;
  attributes: Record<string, string>;
  unit?: string;
  machine?: string;
}

/** `schema`: the layout version of this prefix. */
export interface SchemaRecord {
  layout: number;
  writtenBy: string;
}

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

type Check<T> = (value: unknown, path: string) => T;

const str: Check<string> = (v, p) => {
  if (typeof v !== 'string') throw new DecodeError(`${p} is not a string`);
  return v;
};
const nonEmpty: Check<string> = (v, p) => {
  const s = str(v, p);
  if (s === '') throw new DecodeError(`${p} is empty`);
  return s;
};
const bool: Check<boolean> = (v, p) => {
  if (typeof v !== 'boolean') throw new DecodeError(`${p} is not a boolean`);
  return v;
};
const int: Check<number> = (v, p) => {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new DecodeError(`${p} is not an integer`);
  return v;
};
const seconds: Check<number> = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new DecodeError(`${p} is not a number of seconds`);
  return v;
};
const stringMap: Check<Record<string, string>> = (v, p) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DecodeError(`${p} is not an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) out[k] = str(val, `${p}.${k}`);
  return out;
};
function oneOf<T extends string>(allowed: readonly T[]): Check<T> {
  return (v, p) => {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      throw new DecodeError(`${p} is not one of ${allowed.join(', ')}`);
    }
    return v as T;
  };
}
function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, p) => (v === undefined ? undefined : check(v, p));
}

type Shape<T> = { [K in keyof T]-?: Check<T[K]> };

function record<T>(shape: Shape<T>): (raw: string) => T {
  return (raw) => {
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch {
      throw new DecodeError('not JSON');
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DecodeError('not a JSON object');
    const o = obj as Record<string, unknown>;
    if (o['v'] !== RECORD_VERSION) {
      throw new DecodeError(`record version ${JSON.stringify(o['v'])} is not ${RECORD_VERSION}`);
    }
    const out = {} as T;
    for (const key of Object.keys(shape) as (keyof T & string)[]) {
      const value = shape[key](o[key], key);
      if (value !== undefined) out[key] = value;
    }
    return out;
  };
}

/** Serializes a record with its version field first. */
export function encode<T extends object>(value: T): string {
  return JSON.stringify({ v: RECORD_VERSION, ...value });
}

export const decode = {
  unit: record<UnitRecord>({ name: nonEmpty, text: str, hash: nonEmpty, global: bool }),
  desired: record<DesiredRecord>({ state: oneOf(DESIRED_STATES) }),
  global: record<GlobalRecord>({ name: nonEmpty, hash: nonEmpty, state: oneOf(DESIRED_STATES) }),
  machine: record<MachineRecord>({
    id: nonEmpty,
    publicIp: str,
    metadata: stringMap,
    version: str,
    hostname: str,
    bootId: str,
    since: str,
    apiUrl: optional(str),
    fenceAfter: optional(seconds),
  }),
  metadata: record<MetadataRecord>({ value: str }),
  duplicate: record<DuplicateRecord>({ machine: nonEmpty, hostname: str, publicIp: str, since: str }),
  drain: record<DrainRecord>({ since: str }),
  decision: record<DecisionRecord>({
    unit: nonEmpty,
    machine: nonEmpty,
    hash: nonEmpty,
    state: oneOf(['loaded', 'launched'] as const),
    fenceAfter: optional(seconds),
  }),
  pending: record<PendingRecord>({ unit: nonEmpty, reason: str, since: str }),
  state: record<StateRecord>({
    unit: nonEmpty,
    machine: nonEmpty,
    hash: str,
    loadState: str,
    activeState: str,
    subState: str,
    since: str,
  }),
  leader: record<LeaderRecord>({ id: nonEmpty, since: str }),
  endpoint: record<EndpointRecord>({
    service: nonEmpty,
    instance: nonEmpty,
    host: nonEmpty,
    port: int,
    attributes: stringMap,
    unit: optional(str),
    machine: optional(str),
  }),
  schema: record<SchemaRecord>({ layout: int, writtenBy: str }),
} as const;
