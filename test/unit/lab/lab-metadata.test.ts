import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkMetadataNodes, configuredMetadata, metadataFor, parseMetadataSpecs } from '../../../src/lab/lab-metadata.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-lab-metadata-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("flotilla-lab's --metadata", () => {
  it('refuses NODE=k=v for a node that is not booted (a typo), naming it and the nodes booted', () => {
    const typo = parseMetadataSpecs(['n9=role=x']);
    expect(() => checkMetadataNodes(typo, ['n6'])).toThrow('--metadata names node n9, which is not booted here (booting: n6)');
    const two = parseMetadataSpecs(['zone=a', 'n1=role=db', 'n4=role=x', 'n5=role=y']);
    expect(() => checkMetadataNodes(two, ['n1', 'n2', 'n3'])).toThrow('--metadata names nodes n4, n5, which are not booted here (booting: n1, n2, n3)');
  });

  it('accepts metadata for every node and for the nodes booted', () => {
    const specs = parseMetadataSpecs(['zone=a', 'n6=role=x']);
    expect(() => checkMetadataNodes(specs, ['n6'])).not.toThrow();
    expect(() => checkMetadataNodes(parseMetadataSpecs(['zone=a']), ['n1', 'n2'])).not.toThrow();
    expect(metadataFor(specs, 'n6')).toEqual({ zone: 'a', role: 'x' });
  });

  it("reads the metadata a node's flotilla.conf sets from its upper layer; undefined without one", () => {
    const upper = path.join(dir, 'upper');
    expect(configuredMetadata(upper)).toBeUndefined();
    mkdirSync(path.join(upper, 'etc', 'flotilla'), { recursive: true });
    writeFileSync(path.join(upper, 'etc', 'flotilla', 'flotilla.conf'), 'etcd_servers=http://127.0.0.1:2379\nmetadata=role=db,zone=b\n');
    expect(configuredMetadata(upper)).toEqual({ role: 'db', zone: 'b' });
    writeFileSync(path.join(upper, 'etc', 'flotilla', 'flotilla.conf'), 'agent_ttl=never\n');
    expect(configuredMetadata(upper)).toBeUndefined();
  });
});
