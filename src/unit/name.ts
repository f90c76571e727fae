/**
 * Unit names: validation (systemd's and fleet's rules), the template/instance
 * split, and fleetctl's normalisation of command-line arguments.
 *
 * `prefix@instance.type`: a template has `@` and an empty instance
 * (`web@.service`); an instance has a non-empty one (`web@3.service`). The
 * instance is everything between the first `@` and the last `.`.
 */
import { UnitError, quote } from './errors.js';

export const UNIT_TYPES = [
  'automount',
  'busname',
  'device',
  'mount',
  'path',
  'scope',
  'service',
  'slice',
  'snapshot',
  'socket',
  'swap',
  'target',
  'timer',
] as const;

/** Only these types may be templates or instances. */
export const TEMPLATE_TYPES = ['path', 'service', 'socket', 'target', 'timer'] as const;

export type UnitType = (typeof UNIT_TYPES)[number];

/** systemd's UNIT_NAME_MAX (256) counts the terminating NUL, so a name has at most 255 characters. */
export const MAX_UNIT_NAME_LENGTH = 255;

export interface UnitName {
  /** The full name, e.g. `web@3.service`. */
  name: string;
  /** Before the `@`, or the whole name without its type: `web`. */
  prefix: string;
  /** The instance of an instance unit (`3`); undefined for templates and plain units. */
  instance: string | undefined;
  /** The type suffix without its dot: `service`. */
  type: string;
  isTemplate: boolean;
  isInstance: boolean;
}

/** Validates `name` and splits it; throws UnitError (rule 'name.*'). */
export function parseUnitName(name: string): UnitName {
  validateUnitName(name);
  const dot = name.lastIndexOf('.');
  const stem = name.slice(0, dot);
  const type = name.slice(dot + 1);
  const at = stem.indexOf('@');
  if (at < 0) {
    return { name, prefix: stem, instance: undefined, type, isTemplate: false, isInstance: false };
  }
  const instance = stem.slice(at + 1);
  const isInstance = instance !== '';
  return {
    name,
    prefix: stem.slice(0, at),
    instance: isInstance ? instance : undefined,
    type,
    isTemplate: !isInstance,
    isInstance,
  };
}

// systemd's VALID_CHARS plus "@": the backslash is there for the escapes
// systemd-escape writes (x\x2dy.service). Names never contain "/", so every
// one is a safe file name and etcd key suffix.
const NAME_CHAR = /^[A-Za-z0-9:_.@\\-]$/;

/** Throws UnitError naming the first rule `name` breaks. */
export function validateUnitName(name: string): void {
  const fail = (rule: string, detail: string): never => {
    throw new UnitError(rule, detail, { unit: name === '' ? undefined : printable(name) });
  };
  if (name === '') fail('name.empty', 'a unit name must not be empty');
  if (name.length > MAX_UNIT_NAME_LENGTH) {
    fail('name.too-long', `a unit name may have at most ${MAX_UNIT_NAME_LENGTH} characters, this one has ${name.length}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) fail('name.control-character', 'a unit name must not contain NUL or other control characters');
  if (name.includes('/')) fail('name.path-separator', 'a unit name must not contain "/": give the file\'s base name, e.g. web.service');
  if (name.includes('..')) fail('name.dot-dot', 'a unit name must not contain ".."');
  for (const ch of name) {
    if (!NAME_CHAR.test(ch)) {
      fail('name.characters', `${quote(ch)} is not allowed in a unit name; use only letters, digits and : _ . @ - \\ (systemd-escape writes other characters as \\xNN)`);
    }
  }
  if (name.startsWith('@')) fail('name.leading-at', 'a unit name must not start with "@"; templates look like web@.service');
  const dot = name.lastIndexOf('.');
  if (dot < 0) fail('name.no-type', `a unit name must end in a type such as .service (one of ${UNIT_TYPES.join(', ')})`);
  const type = name.slice(dot + 1);
  if (!isUnitType(type)) fail('name.type', `${quote(type)} is not a unit type; use one of ${UNIT_TYPES.join(', ')}`);
  const stem = name.slice(0, dot);
  if (stem === '') fail('name.empty-prefix', 'a unit name needs something before its type, e.g. web.service');
  if (stem.includes('@') && !isTemplateType(type)) {
    fail('name.template-type', `only ${TEMPLATE_TYPES.join(', ')} units can be templates or instances, not ${type}`);
  }
}

/** True when `name` is a valid unit name. */
export function isValidUnitName(name: string): boolean {
  try {
    validateUnitName(name);
    return true;
  } catch (e) {
    if (e instanceof UnitError) return false;
    throw e;
  }
}

/** `web@3.service` → `web@.service`; undefined for templates and plain units. Throws for invalid names. */
export function templateOf(name: string): string | undefined {
  const n = parseUnitName(name);
  return n.isInstance ? `${n.prefix}@.${n.type}` : undefined;
}

/** (`web@.service`, `3`) → `web@3.service`, validated. */
export function instanceOf(template: string, instance: string): string {
  const t = parseUnitName(template);
  if (!t.isTemplate) {
    throw new UnitError('name.not-template', 'only a template (a name like web@.service) can have instances', { unit: template });
  }
  if (instance === '') {
    throw new UnitError('name.instance-empty', 'the instance part of a unit name must not be empty, e.g. web@1.service', { unit: template });
  }
  return parseUnitName(`${t.prefix}@${instance}.${t.type}`).name;
}

/**
 * fleetctl's reading of a unit argument: the base name of a path, with
 * `.service` appended when it does not already end in a unit type. Unlike
 * fleetctl (which knew only seven types and so turned `db.target` into
 * `db.target.service`) every type in UNIT_TYPES counts. The result is validated.
 */
export function normalizeUnitName(arg: string): string {
  const trimmed = arg.replace(/\/+$/, '');
  const base = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  if (base === '') {
    throw new UnitError('name.empty', `${quote(arg)} does not name a unit`);
  }
  const dot = base.lastIndexOf('.');
  const name = dot >= 0 && isUnitType(base.slice(dot + 1)) ? base : `${base}.service`;
  validateUnitName(name);
  return name;
}

export function isUnitType(type: string): type is UnitType {
  return (UNIT_TYPES as readonly string[]).includes(type);
}

export function isTemplateType(type: string): boolean {
  return (TEMPLATE_TYPES as readonly string[]).includes(type);
}

/** A name fit for an error message: control characters escaped, length capped. */
function printable(name: string): string {
  const short = name.length > 80 ? `${name.slice(0, 77)}...` : name;
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(short) ? quote(short) : short;
}
