// Pure formatting of what flotctl lists: the columns fleetctl printed (same
// names, same defaults, same `-` for nothing) and the JSON of `-o json`.
// No I/O here: commands pass in what the driver returned.
import { UnitError, getLastValue, parseUnitFile, shortHash } from '../unit/index.js';
import type { MachineInfo, UnitInfo, UnitStateInfo } from './driver.js';
import { cmp } from './util.js';
import { UsageError } from './errors.js';
import { formatTable } from './table.js';

export interface TableOptions {
  /** --fields, comma separated; undefined for the command's default. */
  fields?: string | undefined;
  /** -l/--full: whole machine IDs and hashes. */
  full?: boolean | undefined;
  /** --no-legend: no header line. */
  noLegend?: boolean | undefined;
}

/** `abcdef12...` or the whole ID. */
export function machineIdLegend(id: string, full: boolean): string {
  return full ? id : `${id.slice(0, 8)}...`;
}

/** `abcdef12.../10.0.0.1`: the ID legend with the machine's IP when known. */
export function machineLegend(id: string, ip: string | undefined, full: boolean): string {
  const legend = machineIdLegend(id, full);
  return ip ? `${legend}/${ip}` : legend;
}

/** `k=v,k2=v2`, keys sorted; `-` for none. */
export function formatMetadata(metadata: Record<string, string>): string {
  const keys = Object.keys(metadata).sort(cmp);
  return keys.length === 0 ? '-' : keys.map((k) => `${k}=${metadata[k]}`).join(',');
}

/** The [Unit] Description of a stored unit file, if any. */
export function unitDescription(text: string): string | undefined {
  try {
    return getLastValue(parseUnitFile(text), 'Unit', 'Description') || undefined;
  } catch (err) {
    if (err instanceof UnitError) return undefined;
    throw err;
  }
}

type Field<T> = (row: T, full: boolean) => string;

interface Table<T> {
  defaults: string;
  fields: Record<string, Field<T>>;
  /** Fields accepted with a warning, and their replacement. */
  deprecated?: Record<string, string>;
}

/** Parses --fields against a table's fields; throws UsageError for an unknown one. */
export function parseFields(spec: string | undefined, known: readonly string[], defaults: string): string[] {
  const raw = spec ?? defaults;
  if (raw.trim() === '') throw new UsageError('--fields must name at least one field');
  const cols = raw.split(',').map((c) => c.trim());
  for (const c of cols) {
    if (!known.includes(c)) {
      throw new UsageError(`invalid field ${JSON.stringify(c)} in --fields; valid fields are ${[...known].sort(cmp).join(',')}`);
    }
  }
  return cols;
}

function render<T>(table: Table<T>, rows: readonly T[], opts: TableOptions, warn?: (msg: string) => void): string {
  const cols = parseFields(opts.fields, Object.keys(table.fields), table.defaults);
  for (const c of cols) {
    const instead = table.deprecated?.[c];
    if (instead) warn?.(`the "${c}" field is deprecated; use "${instead}" instead`);
  }
  const full = opts.full ?? false;
  const lines: string[][] = [];
  if (!opts.noLegend) lines.push(cols.map((c) => c.toUpperCase()));
  for (const r of rows) lines.push(cols.map((c) => table.fields[c]!(r, full)));
  return formatTable(lines);
}

const dash = (s: string | undefined | null): string => (s === undefined || s === null || s === '' ? '-' : s);

// ---- list-machines ---------------------------------------------------------

const MACHINE_TABLE: Table<MachineInfo> = {
  defaults: 'machine,ip,metadata',
  fields: {
    machine: (m, full) => machineIdLegend(m.id, full),
    ip: (m) => dash(m.publicIp),
    metadata: (m) => formatMetadata(m.metadata),
    hostname: (m) => dash(m.hostname),
    state: (m) => (m.duplicates?.length ? `duplicate ID (${m.duplicates.map(duplicateHost).join(', ')} not acting)` : 'ok'),
  },
};

/** A host with a duplicate machine ID, as list-machines names it. */
export function duplicateHost(d: { hostname: string; publicIp: string }): string {
  return `${d.hostname || 'a host'}${d.publicIp ? ` ${d.publicIp}` : ''}`;
}

export const MACHINE_FIELDS = Object.keys(MACHINE_TABLE.fields);

export function formatMachines(machines: readonly MachineInfo[], opts: TableOptions = {}): string {
  return render(MACHINE_TABLE, machines, opts);
}

export interface MachineJson {
  id: string;
  ip: string;
  hostname: string;
  metadata: Record<string, string>;
  version: string;
  since: string;
  /** Hosts that have this machine ID too and do not act on it (only when there are some). */
  duplicates?: { hostname: string; ip: string; since: string }[];
}

export function machinesJson(machines: readonly MachineInfo[]): { machines: MachineJson[] } {
  return {
    machines: machines.map((m) => {
      const out: MachineJson = { id: m.id, ip: m.publicIp, hostname: m.hostname, metadata: m.metadata, version: m.version, since: m.since };
      if (m.duplicates?.length) out.duplicates = m.duplicates.map((d) => ({ hostname: d.hostname, ip: d.publicIp, since: d.since }));
      return out;
    }),
  };
}

// ---- list-unit-files -------------------------------------------------------

/** A unit with what list-unit-files shows about its machine. */
export interface UnitFileRow {
  unit: UnitInfo;
  machineIp: string | undefined;
}

function targetField(r: UnitFileRow, full: boolean): string {
  if (r.unit.global) return 'global';
  if (!r.unit.machine) return '-';
  return machineLegend(r.unit.machine, r.machineIp, full);
}

const UNIT_FILE_TABLE: Table<UnitFileRow> = {
  defaults: 'unit,hash,dstate,state,target',
  fields: {
    unit: (r) => r.unit.name,
    hash: (r, full) => (full ? r.unit.hash : shortHash(r.unit.hash)),
    dstate: (r) => r.unit.desiredState,
    state: (r) => (r.unit.global ? '-' : r.unit.currentState),
    target: targetField,
    tmachine: targetField,
    global: (r) => String(r.unit.global),
    desc: (r) => dash(unitDescription(r.unit.text)),
  },
  deprecated: { tmachine: 'target' },
};

export const UNIT_FILE_FIELDS = Object.keys(UNIT_FILE_TABLE.fields).filter((f) => f !== 'tmachine');

export function unitFileRows(units: readonly UnitInfo[], machines: readonly MachineInfo[]): UnitFileRow[] {
  const ip = new Map(machines.map((m) => [m.id, m.publicIp]));
  return units.map((unit) => ({ unit, machineIp: unit.machine ? ip.get(unit.machine) : undefined }));
}

export function formatUnitFiles(rows: readonly UnitFileRow[], opts: TableOptions = {}, warn?: (msg: string) => void): string {
  return render(UNIT_FILE_TABLE, rows, opts, warn);
}

export interface UnitFileJson {
  unit: string;
  hash: string;
  desiredState: string;
  /** null for global units, which have no single machine. */
  currentState: string | null;
  global: boolean;
  machine: string | null;
  ip: string | null;
  description: string | null;
  pending: string | null;
}

export function unitFilesJson(rows: readonly UnitFileRow[]): { unitFiles: UnitFileJson[] } {
  return {
    unitFiles: rows.map(({ unit: u, machineIp }) => ({
      unit: u.name,
      hash: u.hash,
      desiredState: u.desiredState,
      currentState: u.global ? null : u.currentState,
      global: u.global,
      machine: u.machine ?? null,
      ip: u.machine ? (machineIp ?? null) : null,
      description: unitDescription(u.text) ?? null,
      pending: u.pending?.reason ?? null,
    })),
  };
}

// ---- list-units ------------------------------------------------------------

/** One row of list-units: a state a machine reports, or a unit with none yet. */
export interface UnitRow {
  unit: string;
  machine: string | null;
  ip: string | null;
  hash: string | null;
  loadState: string | null;
  activeState: string | null;
  subState: string | null;
  since: string | null;
  /** The engine's reason, for a unit it could not place. */
  pending: string | null;
}

/**
 * Every reported state (one row per machine, so a global unit has one per
 * machine running it), then each unit that should be loaded somewhere but
 * has no report yet: with its machine if decided, or pending with a reason.
 */
export function unitRows(units: readonly UnitInfo[], states: readonly UnitStateInfo[], machines: readonly MachineInfo[]): UnitRow[] {
  const ip = new Map(machines.map((m) => [m.id, m.publicIp]));
  const ipOf = (id: string): string | null => ip.get(id) || null;
  const rows: UnitRow[] = states.map((s) => ({
    unit: s.unit,
    machine: s.machine,
    ip: ipOf(s.machine),
    hash: s.hash || null,
    loadState: s.loadState,
    activeState: s.activeState,
    subState: s.subState,
    since: s.since,
    pending: null,
  }));
  const reported = new Set(states.map((s) => s.unit));
  for (const u of units) {
    if (reported.has(u.name) || u.desiredState === 'inactive') continue;
    rows.push({
      unit: u.name,
      machine: u.machine ?? null,
      ip: u.machine ? ipOf(u.machine) : null,
      hash: null,
      loadState: null,
      activeState: null,
      subState: null,
      since: null,
      pending: u.pending?.reason ?? null,
    });
  }
  return rows.sort((a, b) => cmp(a.unit, b.unit) || cmp(a.machine ?? '', b.machine ?? ''));
}

const UNIT_TABLE: Table<UnitRow> = {
  defaults: 'unit,machine,active,sub',
  fields: {
    unit: (r) => r.unit,
    machine: (r, full) => (r.machine ? machineLegend(r.machine, r.ip ?? undefined, full) : '-'),
    active: (r) => (r.pending !== null ? 'pending' : dash(r.activeState)),
    sub: (r) => dash(r.subState),
    load: (r) => dash(r.loadState),
    hash: (r, full) => (r.hash ? (full ? r.hash : shortHash(r.hash)) : '-'),
    reason: (r) => dash(r.pending),
  },
};

export const UNIT_FIELDS = Object.keys(UNIT_TABLE.fields);

export function formatUnits(rows: readonly UnitRow[], opts: TableOptions = {}): string {
  return render(UNIT_TABLE, rows, opts);
}

/**
 * The note printed (on stderr) under a table with pending units whose
 * reasons the chosen fields do not show; empty when there is nothing to say.
 */
export function pendingNote(rows: readonly UnitRow[], fields: string | undefined): string {
  const cols = parseFields(fields, UNIT_FIELDS, UNIT_TABLE.defaults);
  if (cols.includes('reason')) return '';
  return rows
    .filter((r) => r.pending !== null)
    .map((r) => `${r.unit} is pending: ${r.pending}\n`)
    .join('');
}

export function unitsJson(rows: readonly UnitRow[]): { units: UnitRow[] } {
  return { units: rows.map((r) => ({ ...r })) };
}

// ---- cat ---------------------------------------------------------------------

export interface CatJson {
  unit: string;
  hash: string;
  global: boolean;
  desiredState: string;
  text: string;
}

export function catJson(u: UnitInfo): CatJson {
  return { unit: u.name, hash: u.hash, global: u.global, desiredState: u.desiredState, text: u.text };
}

/** JSON as flotctl prints it: two-space indent, a final newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
