/**
 * Everything about a unit at once: name, parsed file, canonical text, hash
 * and requirements. What the CLI and API call on submit, so a unit is checked
 * completely before anything is written.
 */
import { UnitError, quote } from './errors.js';
import type { ParseOptions, UnitFile } from './file.js';
import { parseUnitFile, serializeUnitFile } from './file.js';
import { hashText } from './hash.js';
import type { UnitName } from './name.js';
import { parseUnitName, templateOf } from './name.js';
import type { Requirements, RequirementsOptions } from './requirements.js';
import { parseRequirements } from './requirements.js';

export interface ParsedUnit {
  name: UnitName;
  file: UnitFile;
  /** Canonical serialization of `file`; what is stored and hashed. */
  text: string;
  /** SHA-1 of `text`, 40 hex characters. */
  hash: string;
  requirements: Requirements;
  warnings: string[];
}

export type ParseUnitOptions = Pick<ParseOptions, 'maxBytes'> & Pick<RequirementsOptions, 'allowUnknownKeys'>;

/**
 * Validates the name and parses the file. A template's requirements are read
 * against the template's own name (so `%i` is empty); instantiate() re-reads
 * them for an instance. Throws UnitError.
 */
export function parseUnit(name: string, input: string | Uint8Array, opts: ParseUnitOptions = {}): ParsedUnit {
  const unitName = parseUnitName(name);
  const file = parseUnitFile(input, { unit: name, maxBytes: opts.maxBytes });
  return build(unitName, file, opts);
}

/**
 * The instance `instanceName` (a full name such as `web@3.service`) of a
 * parsed template: same file and hash, requirements re-derived so that
 * specifiers expand to the instance's name.
 */
export function instantiate(templateUnit: ParsedUnit, instanceName: string, opts: Pick<RequirementsOptions, 'allowUnknownKeys'> = {}): ParsedUnit {
  const template = templateUnit.name.name;
  if (!templateUnit.name.isTemplate) {
    throw new UnitError('name.not-template', 'only a template (a name like web@.service) can be instantiated', { unit: template });
  }
  const name = parseUnitName(instanceName);
  if (templateOf(instanceName) !== template) {
    const example = `${templateUnit.name.prefix}@1.${templateUnit.name.type}`;
    throw new UnitError('name.not-instance-of', `${quote(instanceName)} is not an instance of this template; expected a name like ${example}`, { unit: template });
  }
  const { requirements, warnings } = parseRequirements(name.name, templateUnit.file, { allowUnknownKeys: opts.allowUnknownKeys });
  return { name, file: templateUnit.file, text: templateUnit.text, hash: templateUnit.hash, requirements, warnings };
}

function build(name: UnitName, file: UnitFile, opts: ParseUnitOptions): ParsedUnit {
  const text = serializeUnitFile(file);
  const { requirements, warnings } = parseRequirements(name.name, file, { allowUnknownKeys: opts.allowUnknownKeys });
  return { name, file, text, hash: hashText(text), requirements, warnings };
}
