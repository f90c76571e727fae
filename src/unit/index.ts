/** The unit module's public API: unit files, names, specifiers, [X-Fleet] requirements. */
export { UnitError, quote } from './errors.js';
export type { UnitErrorLocation } from './errors.js';
export {
  DEFAULT_MAX_UNIT_BYTES,
  getLastValue,
  getValues,
  hasSection,
  mergeSections,
  parseUnitFile,
  serializeUnitFile,
} from './file.js';
export type { ParseOptions, UnitEntry, UnitFile, UnitSection } from './file.js';
export { globMatch, isValidGlob, validateGlob } from './glob.js';
export { hashText, shortHash, unitHash } from './hash.js';
export { metadataSatisfied, parseMetadataRequirements } from './metadata.js';
export type { MachineMetadata } from './metadata.js';
export {
  MAX_UNIT_NAME_LENGTH,
  TEMPLATE_TYPES,
  UNIT_TYPES,
  instanceOf,
  isTemplateType,
  isUnitType,
  isValidUnitName,
  normalizeUnitName,
  parseUnitName,
  templateOf,
  validateUnitName,
} from './name.js';
export type { UnitName, UnitType } from './name.js';
export { EMPTY_REQUIREMENTS, parseRequirements } from './requirements.js';
export type { MetadataRequirement, Requirements, RequirementsOptions, RequirementsReading } from './requirements.js';
export { expandSpecifiers } from './specifiers.js';
export { instantiate, parseUnit } from './unit.js';
export type { ParseUnitOptions, ParsedUnit } from './unit.js';
export { DEPRECATED_XFLEET_KEYS, XFLEET_KEYS, XFLEET_SECTION, splitFields, splitQuoted } from './xfleet.js';
export type { XFleetOption, XFleetOptions } from './xfleet.js';
