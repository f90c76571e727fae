// `--metadata` for flotilla-lab up: `k=v,k2=v2` for every node, or
// `NODE=k=v,k2=v2` for one node (the first piece then has two '=').
// The result is written into each node's flotilla.conf as `metadata=`.
import path from 'node:path';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/config.js';

export interface MetadataSpecs {
  /** For every node. */
  all: Record<string, string>;
  /** Per node name, over `all`. */
  byNode: Map<string, Record<string, string>>;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const VALUE = /^[A-Za-z0-9_.:/@+-]*$/;

export function parseMetadataSpecs(specs: readonly string[]): MetadataSpecs {
  const result: MetadataSpecs = { all: {}, byNode: new Map() };
  for (const spec of specs) {
    const pieces = spec.split(',').map((p) => p.trim()).filter(Boolean);
    if (pieces.length === 0) continue;
    let target = result.all;
    const first = pieces[0] ?? '';
    if (first.split('=').length === 3) {
      const eq = first.indexOf('=');
      const node = first.slice(0, eq);
      pieces[0] = first.slice(eq + 1);
      target = result.byNode.get(node) ?? {};
      result.byNode.set(node, target);
    }
    for (const piece of pieces) {
      const eq = piece.indexOf('=');
      const key = piece.slice(0, eq);
      const value = piece.slice(eq + 1);
      if (eq <= 0 || !KEY.test(key) || !VALUE.test(value)) {
        throw new Error(`--metadata ${JSON.stringify(spec)}: ${JSON.stringify(piece)} is not key=value (letters, digits, . _ - in keys)`);
      }
      target[key] = value;
    }
  }
  return result;
}

/**
 * Refuses `NODE=k=v` for a node that is not among those being booted: a
 * typo in the name would boot them without that metadata, unnoticed.
 */
export function checkMetadataNodes(specs: MetadataSpecs, booting: readonly string[]): void {
  const stray = [...specs.byNode.keys()].filter((node) => !booting.includes(node));
  if (stray.length === 0) return;
  throw new Error(
    `--metadata names node${stray.length > 1 ? 's' : ''} ${stray.join(', ')}, which ${stray.length > 1 ? 'are' : 'is'} not booted here ` +
      `(booting: ${booting.join(', ') || 'none'}); give k=v,... for every node or ${booting[0] ?? 'NODE'}=k=v,...`,
  );
}

/**
 * The metadata a node's own flotilla.conf sets, read from its upper layer
 * (there also once the node has ended); undefined when the file is missing
 * or flotillad would not accept it.
 */
export function configuredMetadata(upperDir: string): Record<string, string> | undefined {
  try {
    return loadConfig({ file: path.join(upperDir, DEFAULT_CONFIG_FILE), env: {} }).metadata;
  } catch {
    return undefined;
  }
}

/** The metadata of one node: the common pairs, then its own. */
export function metadataFor(specs: MetadataSpecs, node: string): Record<string, string> {
  return { ...specs.all, ...(specs.byNode.get(node) ?? {}) };
}

/** As flotilla.conf's metadata option reads it. */
export function formatMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata).map(([k, v]) => `${k}=${v}`).join(',');
}
