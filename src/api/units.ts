// fleet's Unit and UnitState entities, to and from the registry's records.
// A unit's options are its file's entries in order; the text stored is the
// canonical form src/unit makes of them, so the hash is the same as for the
// same file submitted by flotctl.
import type { DecisionRecord, DesiredState, DuplicateRecord, MachineRecord, PendingRecord, StateRecord, UnitRecord } from '../registry/index.js';
import { parseUnit, parseUnitFile, serializeUnitFile, type ParsedUnit, type ParseUnitOptions, type UnitFile } from '../unit/index.js';
import { badRequest } from './errors.js';
import { isPlainObject, onlyFields } from './body.js';

export interface UnitOption {
  section: string;
  name: string;
  value: string;
}

export type CurrentState = 'inactive' | 'loaded' | 'launched';

/** fleet's Unit entity, plus flotilla's read-only fields. */
export interface ApiUnit {
  name: string;
  options: UnitOption[];
  desiredState: DesiredState;
  currentState: CurrentState;
  machineID?: string;
  /** flotilla: SHA-1 of the canonical unit file. */
  hash: string;
  /** flotilla: [X-Fleet] Global=true. */
  global: boolean;
  /** flotilla: the engine's decision (not for global units). */
  scheduled?: { machineID: string; state: 'loaded' | 'launched'; hash: string };
  /** flotilla: why the engine could not place it. */
  pending?: { reason: string; since: string };
}

export interface ApiUnitState {
  name: string;
  hash: string;
  machineID: string;
  systemdLoadState: string;
  systemdActiveState: string;
  systemdSubState: string;
  /** flotilla: when this state was last reported. */
  since: string;
}

export interface ApiMachine {
  id: string;
  primaryIP: string;
  metadata: Record<string, string>;
  /** flotilla */
  hostname: string;
  version: string;
  since: string;
  /** flotilla: where the machine's flotillad serves the API on TCP, when it does. */
  apiURL?: string;
  /** flotilla: other hosts with this machine ID, which do not act on its schedule (absent when none). */
  duplicates?: { hostname: string; primaryIP: string; since: string }[];
}

export const DESIRED_STATES: readonly DesiredState[] = ['inactive', 'loaded', 'launched'];
const RUNNING = new Set(['active', 'reloading']);
const SECTION_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function optionsOf(text: string): UnitOption[] {
  const file = parseUnitFile(text);
  return file.sections.flatMap((s) => s.entries.map((e) => ({ section: s.name, name: e.key, value: e.value })));
}

/** The unit file the options make (sections in order of first appearance). */
export function fileOf(options: readonly UnitOption[]): UnitFile {
  const sections = new Map<string, { key: string; value: string }[]>();
  for (const o of options) {
    let entries = sections.get(o.section);
    if (!entries) sections.set(o.section, (entries = []));
    entries.push({ key: o.name, value: o.value });
  }
  return { sections: [...sections].map(([name, entries]) => ({ name, entries })) };
}

/** Checks a request's options and parses the unit they make; UnitError on a bad unit. */
export function parseOptions(name: string, raw: unknown, opts: ParseUnitOptions = {}): ParsedUnit {
  if (!Array.isArray(raw)) throw badRequest('options must be an array of {section, name, value}');
  if (raw.length === 0) throw badRequest('options must not be empty');
  const options: UnitOption[] = raw.map((o, i) => {
    const where = `options[${i}]`;
    if (!isPlainObject(o)) throw badRequest(`${where} must be an object {section, name, value}`);
    onlyFields(o, ['section', 'name', 'value'], where);
    const { section, name: key, value } = o;
    if (typeof section !== 'string' || !SECTION_RE.test(section)) throw badRequest(`${where}.section must be a section name such as Service`);
    if (typeof key !== 'string' || !KEY_RE.test(key)) throw badRequest(`${where}.name must be an option name such as ExecStart`);
    if (typeof value !== 'string') throw badRequest(`${where}.value must be a string`);
    if (/[\r\n\0]/.test(value)) throw badRequest(`${where}.value must be one line (no line breaks or NUL)`);
    return { section, name: key, value };
  });
  // Through the text, so the file is read exactly as a submitted file would be.
  return parseUnit(name, serializeUnitFile(fileOf(options)), opts);
}

export function currentStateOf(decision: DecisionRecord | undefined, states: readonly StateRecord[]): CurrentState {
  if (!decision) return 'inactive';
  const report = states.find((s) => s.machine === decision.machine);
  if (!report) return 'inactive';
  return RUNNING.has(report.activeState) ? 'launched' : 'loaded';
}

export function toApiUnit(
  u: UnitRecord,
  desired: DesiredState,
  decisions: readonly DecisionRecord[],
  states: readonly StateRecord[],
  pending: PendingRecord | undefined,
  options: UnitOption[],
): ApiUnit {
  const decision = u.global ? undefined : decisions[0];
  const out: ApiUnit = {
    name: u.name,
    options,
    desiredState: desired,
    currentState: u.global ? 'inactive' : currentStateOf(decision, states),
    hash: u.hash,
    global: u.global,
  };
  if (decision) {
    out.machineID = decision.machine;
    out.scheduled = { machineID: decision.machine, state: decision.state, hash: decision.hash };
  }
  if (pending) out.pending = { reason: pending.reason, since: pending.since };
  return out;
}

export function toApiState(s: StateRecord): ApiUnitState {
  return {
    name: s.unit,
    hash: s.hash,
    machineID: s.machine,
    systemdLoadState: s.loadState,
    systemdActiveState: s.activeState,
    systemdSubState: s.subState,
    since: s.since,
  };
}

export function toApiMachine(m: MachineRecord, metadata: Record<string, string>, duplicates: readonly DuplicateRecord[] = []): ApiMachine {
  const out: ApiMachine = { id: m.id, primaryIP: m.publicIp, metadata, hostname: m.hostname, version: m.version, since: m.since };
  if (m.apiUrl !== undefined) out.apiURL = m.apiUrl;
  if (duplicates.length > 0) out.duplicates = duplicates.map((d) => ({ hostname: d.hostname, primaryIP: d.publicIp, since: d.since }));
  return out;
}
