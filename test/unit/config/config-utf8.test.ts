// flotillad's configuration file must be UTF-8: its metadata goes to etcd.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-config-utf8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('configuration file encoding', () => {
  it('refuses a file that is not UTF-8, naming it and the byte, instead of storing U+FFFD in metadata', () => {
    const f = path.join(dir, 'bad.conf');
    // metadata="zone=caf" then the bytes ff fe: at offset 18.
    writeFileSync(f, Buffer.concat([Buffer.from('metadata="zone=caf'), Buffer.from([0xff, 0xfe]), Buffer.from('"\n')]));
    expect(() => loadConfig({ file: f, env: {} })).toThrow(new ConfigError(`configuration file ${f} is not valid UTF-8 (byte 0xff at offset 18)`));
  });

  it('reads UTF-8 metadata as written', () => {
    const f = path.join(dir, 'ok.conf');
    writeFileSync(f, 'metadata="zone=café"\n');
    expect(loadConfig({ file: f, env: {} }).metadata).toEqual({ zone: 'café' });
  });
});
