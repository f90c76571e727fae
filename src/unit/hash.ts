/**
 * The content hash of a unit: SHA-1 over the canonical serialization, so
 * comments, spacing, continuations and repeated section headers do not change
 * it. Agents compare hashes to notice that a unit's file was replaced.
 */
import { createHash } from 'node:crypto';
import type { UnitFile } from './file.js';
import { serializeUnitFile } from './file.js';

/** 40 lowercase hex characters. */
export function unitHash(file: UnitFile): string {
  return hashText(serializeUnitFile(file));
}

/** SHA-1 of already-canonical text (as stored beside the unit). */
export function hashText(canonical: string): string {
  return createHash('sha1').update(canonical, 'utf8').digest('hex');
}

/** The 7-character form shown by list-unit-files. */
export function shortHash(hash: string): string {
  return hash.slice(0, 7);
}
