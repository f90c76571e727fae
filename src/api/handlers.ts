// The routes of the API: fleet's v1 resources under /fleet/v1 and /metrics.
// Reads are answered from the cache; writes go through the Registry, and
// answer once the cache shows them, so a client reads its own writes.
import { onlyParams, withoutSystemParams } from './query.js';
import type { IncomingMessage } from 'node:http';
import { listDuplicates, type DesiredState, type DuplicateRecord, type Registry } from '../registry/index.js';
import { parseUnitName, validateUnitName } from '../unit/index.js';
import { isPlainObject, onlyFields, readJson, refuseBody } from './body.js';
import type { ApiCache } from './cache.js';
import { cmp } from './cache.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { LocalUnitHandlers, type LocalCommands, type StreamReply } from './local-units.js';
import type { MetricsRegistry } from './metrics.js';
import { DESIRED_STATES, optionsOf, parseOptions, toApiMachine, toApiState, toApiUnit, type ApiUnit, type UnitOption } from './units.js';

export const API_PREFIX = '/fleet/v1';
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 10_000;
/** How long a write waits for its change to reach the cache before answering anyway. */
const READ_YOUR_WRITES_MS = 5_000;
const FLEET_RESOURCES = ['units', 'state', 'machines'];
const MACHINE_ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;
const METADATA_KEY_RE = /^[A-Za-z0-9_.-]{1,128}$/;

export interface Reply {
  status: number;
  body?: unknown;
  /** Text bodies (metrics) with their content type. */
  text?: { body: string; type: string };
  /** A streamed text body (journal). */
  stream?: StreamReply;
}

export interface HandlerOptions {
  registry: Registry;
  cache: ApiCache;
  metrics: MetricsRegistry;
  /** This machine: the units it runs get /flotilla/v1/units/{name}/status and /journal. */
  machineId?: string | undefined;
  commands?: LocalCommands | undefined;
}

export class ApiHandlers {
  private readonly optionsByHash = new Map<string, UnitOption[]>();

  private readonly local: LocalUnitHandlers;

  constructor(private readonly opts: HandlerOptions) {
    this.local = new LocalUnitHandlers(opts.registry, opts.machineId, opts.commands);
  }

  async route(req: IncomingMessage): Promise<Reply> {
    const url = req.url ?? '';
    if (!url.startsWith('/')) throw badRequest('request target must be a path');
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const method = req.method ?? 'GET';
    const segments = path.split('/').slice(1).map(decodeSegment);

    if (path === '/metrics') {
      allow(method, ['GET']);
      onlyParams(query, []);
      await refuseBody(req);
      return { status: 200, text: { body: this.opts.metrics.render(), type: 'text/plain; version=0.0.4; charset=utf-8' } };
    }
    if (segments[0] === 'flotilla' && segments[1] === 'v1' && segments[2] === 'units' && segments.length === 5) {
      await refuseBody(req);
      return this.local.route(method, segments[3]!, segments[4]!, query);
    }
    if (segments[0] !== 'fleet' || segments[1] !== 'v1' || segments.length < 3) throw notFound(`no such resource: ${path}`);
    const [resource, name, ...rest] = segments.slice(2);
    if (rest.length > 0 || !FLEET_RESOURCES.includes(resource!)) throw notFound(`no such resource: ${path}`);
    const fleetQuery = withoutSystemParams(query);
    // fleet's resources are cluster-wide: they hold the cache's cluster view
    // (started here on first use, dropped after a while unused).
    await this.opts.cache.acquire();
    try {
      return await this.fleet(req, method, path, resource!, name, fleetQuery);
    } finally {
      this.opts.cache.release();
    }
  }

  private async fleet(req: IncomingMessage, method: string, path: string, resource: string, name: string | undefined, query: URLSearchParams): Promise<Reply> {
    switch (resource) {
      case 'units':
        if (name === undefined) {
          allow(method, ['GET']);
          await refuseBody(req);
          return this.listUnits(query);
        }
        validateUnitName(name);
        if (method === 'GET') {
          onlyParams(query, []);
          await refuseBody(req);
          return this.getUnit(name);
        }
        if (method === 'PUT') {
          onlyParams(query, ['allowUnknownKeys']);
          return this.putUnit(name, await readJson(req), allowUnknownKeys(query));
        }
        if (method === 'DELETE') {
          onlyParams(query, []);
          await refuseBody(req);
          return this.deleteUnit(name);
        }
        throw methodNotAllowed(['GET', 'PUT', 'DELETE']);
      case 'state':
        allow(method, ['GET']);
        await refuseBody(req);
        if (name === undefined) return this.listStates(query);
        validateUnitName(name);
        onlyParams(query, []);
        return this.getState(name);
      case 'machines':
        if (name !== undefined) break;
        if (method === 'GET') {
          await refuseBody(req);
          return await this.listMachines(query);
        }
        if (method === 'PATCH') {
          onlyParams(query, []);
          return this.patchMachines(await readJson(req));
        }
        throw methodNotAllowed(['GET', 'PATCH']);
    }
    throw notFound(`no such resource: ${path}`);
  }

  // ---- units -----------------------------------------------------------

  private unit(name: string): ApiUnit | undefined {
    const c = this.opts.cache;
    const u = c.units.get(name);
    if (!u) return undefined;
    let options = this.optionsByHash.get(u.hash);
    if (!options) {
      if (this.optionsByHash.size > 2 * c.units.size + 1_000) this.optionsByHash.clear();
      options = optionsOf(u.text);
      this.optionsByHash.set(u.hash, options);
    }
    return toApiUnit(u, c.desired.get(name)?.state ?? 'inactive', c.decisionsOf(name), c.statesOf(name), c.pending.get(name), options);
  }

  private listUnits(query: URLSearchParams): Reply {
    onlyParams(query, ['nextPageToken', 'pageSize']);
    const names = this.opts.cache.unitNames();
    const { start, size } = pageStart(query, names);
    const units: ApiUnit[] = [];
    let i = start;
    for (; i < names.length && units.length < size; i++) {
      const u = this.unit(names[i]!);
      if (u) units.push(u);
    }
    return { status: 200, body: withToken({ units }, i < names.length ? names[i - 1] : undefined) };
  }

  private getUnit(name: string): Reply {
    const u = this.unit(name);
    if (!u) throw notFound(`unit ${name} does not exist`);
    return { status: 200, body: u };
  }

  private async putUnit(name: string, body: unknown, allowUnknownKeys: boolean): Promise<Reply> {
    const { registry, cache } = this.opts;
    if (!isPlainObject(body)) throw badRequest('request body must be a JSON object {desiredState, options}');
    onlyFields(body, ['name', 'desiredState', 'options', 'currentState', 'machineID'], 'a unit');
    if (body['name'] !== undefined && body['name'] !== name) {
      throw badRequest(`name in the body (${JSON.stringify(body['name'])}) differs from the name in the URL (${name})`);
    }
    const options = body['options'];
    const noOptions = options === undefined || (Array.isArray(options) && options.length === 0);
    const state = body['desiredState'];
    // With options and no desiredState the unit is (re)written inactive, as
    // fleet did: fleetctl submits so, and its --replace waits for the
    // replaced unit to go inactive before it loads or starts it again.
    if ((state !== undefined || noOptions) && (typeof state !== 'string' || !(DESIRED_STATES as readonly string[]).includes(state))) {
      throw badRequest(`desiredState must be one of ${DESIRED_STATES.join(', ')}${noOptions ? ' (required without options)' : ''}`);
    }
    const desired = (state ?? 'inactive') as DesiredState;
    if (parseUnitName(name).isTemplate && desired !== 'inactive') {
      throw badRequest(`unit ${name} is a template: only its instances can be loaded or launched; its desiredState must be inactive`);
    }
    if (noOptions) {
      try {
        await registry.setDesiredState([name], desired);
      } catch (err) {
        if ((err as Error).name === 'UnitNotFoundError') throw new ApiError(409, `unit ${name} does not exist and options field empty`);
        throw err;
      }
      await cache.waitFor(() => cache.desired.get(name)?.state === desired, READ_YOUR_WRITES_MS);
      return { status: 204 };
    }
    const parsed = parseOptions(name, options, { allowUnknownKeys });
    const record = { name, text: parsed.text, hash: parsed.hash, global: parsed.requirements.global };
    let result;
    try {
      result = await registry.createUnit(record, { desiredState: desired });
    } catch (err) {
      if ((err as Error).name !== 'UnitExistsError') throw err;
      result = await registry.createUnit(record, { desiredState: desired, replace: true });
    }
    await cache.waitFor(() => cache.units.get(name)?.hash === record.hash && cache.desired.get(name)?.state === desired, READ_YOUR_WRITES_MS);
    return { status: result === 'created' ? 201 : 204 };
  }

  private async deleteUnit(name: string): Promise<Reply> {
    const { registry, cache } = this.opts;
    await registry.destroyUnit(name);
    await cache.waitFor(() => !cache.units.has(name), READ_YOUR_WRITES_MS);
    return { status: 204 };
  }

  // ---- state and machines ------------------------------------------------

  private listStates(query: URLSearchParams): Reply {
    onlyParams(query, ['nextPageToken', 'pageSize', 'machineID', 'unitName']);
    const c = this.opts.cache;
    const machine = query.get('machineID') ?? undefined;
    const unit = query.get('unitName') ?? undefined;
    if (unit !== undefined) validateUnitName(unit);
    const source = unit !== undefined ? c.statesOf(unit) : [...c.states.values()];
    const states = source
      .filter((s) => machine === undefined || s.machine === machine)
      .sort((a, b) => cmp(a.unit, b.unit) || cmp(a.machine, b.machine));
    const keys = states.map((s) => `${s.unit}\u0000${s.machine}`);
    const { start, size } = pageStart(query, keys);
    const page = states.slice(start, start + size).map(toApiState);
    const end = start + page.length;
    return { status: 200, body: withToken({ states: page }, end < keys.length ? keys[end - 1] : undefined) };
  }

  /**
   * One state of a unit, as fleet's GET /state/{unit} (fleetctl start waits
   * on it): the report of the machine the engine chose, else the first
   * machine's; 404 when no machine reports the unit.
   */
  private getState(name: string): Reply {
    const c = this.opts.cache;
    const states = [...c.statesOf(name)].sort((a, b) => cmp(a.machine, b.machine));
    const chosen = c.decisionsOf(name)[0]?.machine;
    const s = states.find((x) => x.machine === chosen) ?? states[0];
    if (!s) throw notFound(`unit state of ${name} does not exist`);
    return { status: 200, body: toApiState(s) };
  }

  private async listMachines(query: URLSearchParams): Promise<Reply> {
    onlyParams(query, ['nextPageToken', 'pageSize']);
    const c = this.opts.cache;
    // Read here, not cached: rare, and only list-machines shows them. The
    // list is served from the cache as before when etcd does not answer.
    const duplicates = await listDuplicates(this.opts.registry).catch(() => new Map<string, DuplicateRecord[]>());
    const machines = [...c.machines.values()].sort((a, b) => cmp(a.id, b.id));
    const keys = machines.map((m) => m.id);
    const { start, size } = pageStart(query, keys);
    const page = machines.slice(start, start + size).map((m) => toApiMachine(m, c.machineMetadata(m), duplicates.get(m.id)));
    const end = start + page.length;
    return { status: 200, body: withToken({ machines: page }, end < keys.length ? keys[end - 1] : undefined) };
  }

  private async patchMachines(body: unknown): Promise<Reply> {
    const { registry, cache } = this.opts;
    if (!Array.isArray(body)) throw badRequest('request body must be a JSON Patch document (an array of operations)');
    const ops = body.map((raw, i) => {
      const where = `operation ${i}`;
      if (!isPlainObject(raw)) throw badRequest(`${where} must be an object {op, path, value}`);
      onlyFields(raw, ['op', 'path', 'value'], where);
      const { op, path, value } = raw;
      if (op !== 'add' && op !== 'remove' && op !== 'replace') throw badRequest(`${where}: op must be add, remove or replace`);
      if (typeof path !== 'string') throw badRequest(`${where}: path must be a string /<machine id>/metadata/<key>`);
      const m = /^\/([^/]+)\/metadata\/([^/]+)$/.exec(path);
      if (!m) throw badRequest(`${where}: path ${JSON.stringify(path)} is not /<machine id>/metadata/<key>`);
      const machine = unescapePointer(m[1]!);
      const key = unescapePointer(m[2]!);
      if (!MACHINE_ID_RE.test(machine) || machine === '.' || machine === '..') throw badRequest(`${where}: ${JSON.stringify(machine)} is not a machine ID`);
      if (!METADATA_KEY_RE.test(key)) throw badRequest(`${where}: metadata key ${JSON.stringify(key)} may use letters, digits, _ . - only`);
      if (op === 'remove') {
        if (value !== undefined) throw badRequest(`${where}: remove takes no value`);
        return { machine, key, value: undefined };
      }
      if (typeof value !== 'string') throw badRequest(`${where}: value must be a string`);
      if (value.length > 4096 || /[\0\r\n]/.test(value)) throw badRequest(`${where}: value must be one line of at most 4096 characters`);
      return { machine, key, value };
    });
    // A remove must have something to remove: metadata from a machine's
    // configuration is not stored under metadata/ and stays (409, nothing applied).
    const setByApi = new Map<string, boolean>();
    ops.forEach((op, i) => {
      const name = `${op.machine}/${op.key}`;
      const wasSet = setByApi.get(name) ?? cache.metadata.get(name) !== undefined;
      setByApi.set(name, op.value !== undefined);
      if (op.value !== undefined || wasSet) return;
      const configured = cache.machines.get(op.machine)?.metadata[op.key];
      if (configured !== undefined) {
        throw new ApiError(
          409,
          `operation ${i}: metadata ${JSON.stringify(op.key)}=${JSON.stringify(configured)} of machine ${op.machine} comes from its configuration (flotilla.conf metadata), not from the API: it can be replaced, not removed`,
        );
      }
    });
    const final = new Map<string, string | undefined>();
    for (const op of ops) {
      if (op.value === undefined) await registry.deleteMetadata(op.machine, op.key);
      else await registry.setMetadata(op.machine, op.key, op.value);
      final.set(`${op.machine}/${op.key}`, op.value);
    }
    await cache.waitFor(() => [...final].every(([k, v]) => cache.metadata.get(k)?.value === v), READ_YOUR_WRITES_MS);
    return { status: 204 };
  }
}

/** `?allowUnknownKeys=true` (flotctl --allow-unknown-keys): unknown [X-Fleet] keys are accepted, not refused. */
function allowUnknownKeys(query: URLSearchParams): boolean {
  const v = query.get('allowUnknownKeys');
  if (v === null || v === 'false') return false;
  if (v === 'true') return true;
  throw badRequest('allowUnknownKeys must be true or false');
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest(`path segment ${JSON.stringify(s)} is not valid percent-encoding`);
  }
}

/** JSON Pointer escapes: ~1 is /, ~0 is ~. */
function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function methodNotAllowed(allowed: readonly string[]): ApiError {
  return new ApiError(405, `method not allowed; use ${allowed.join(', ')}`, { Allow: allowed.join(', ') });
}

function allow(method: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) throw methodNotAllowed(allowed);
}


/** Where a page starts in a sorted key list, from nextPageToken, and its size from pageSize. */
function pageStart(query: URLSearchParams, keys: readonly string[]): { start: number; size: number } {
  let size = DEFAULT_PAGE_SIZE;
  const rawSize = query.get('pageSize');
  if (rawSize !== null) {
    if (!/^\d{1,6}$/.test(rawSize) || Number(rawSize) < 1 || Number(rawSize) > MAX_PAGE_SIZE) {
      throw badRequest(`pageSize must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
    }
    size = Number(rawSize);
  }
  const token = query.get('nextPageToken');
  if (token === null) return { start: 0, size };
  const after = decodeToken(token);
  // first key greater than the last one served
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(keys[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return { start: lo, size };
}

function withToken<T extends object>(body: T, lastKey: string | undefined): T & { nextPageToken?: string } {
  return lastKey === undefined ? body : { ...body, nextPageToken: Buffer.from(JSON.stringify({ after: lastKey })).toString('base64url') };
}

function decodeToken(token: string): string {
  const invalid = badRequest('invalid value of nextPageToken query parameter');
  if (token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (!isPlainObject(parsed) || typeof parsed['after'] !== 'string' || Object.keys(parsed).length !== 1) throw invalid;
  return parsed['after'];
}


