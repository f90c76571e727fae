// Arguments and option variables as the kernel passed them (src/process-text.ts), with real bytes.
import { describe, expect, it } from 'vitest';
import { invalidProcessText } from '../../src/process-text.js';

const nulJoined = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p) => [Buffer.from(p), Buffer.from([0])]));
const bad = Buffer.concat([Buffer.from('zone=caf'), Buffer.from([0xff, 0xfe])]);

function reader(cmdline: Buffer, environ: Buffer = Buffer.alloc(0)): (file: string) => Uint8Array {
  return (file) => (file === '/proc/self/cmdline' ? cmdline : environ);
}

describe('invalidProcessText', () => {
  it('names the first program argument that is not UTF-8, with its bad bytes shown', () => {
    const cmdline = nulJoined('node', '--import', 'tsx', 'cli/flotctl.ts', 'announce', 'web', '--attr', bad);
    expect(invalidProcessText({ args: 4, envPrefix: 'FLOTCTL_', read: reader(cmdline) })).toBe(
      'argument 4 is not valid UTF-8 (byte 0xff at offset 8): zone=caf\\xff\\xfe',
    );
  });

  it("looks only at the program's own arguments and option variables", () => {
    // node's own path is not the program's business; another program's variable neither.
    const cmdline = nulJoined(Buffer.from([0x2f, 0xff]), 'cli/flotctl.ts', 'list-units', 'café');
    const environ = nulJoined(Buffer.concat([Buffer.from('LANG=x'), Buffer.from([0xff])]), 'FLOTCTL_DEBUG=1');
    expect(invalidProcessText({ args: 2, envPrefix: 'FLOTCTL_', read: reader(cmdline, environ) })).toBeUndefined();
  });

  it('names an option variable that is not UTF-8', () => {
    const environ = nulJoined('PATH=/bin', Buffer.concat([Buffer.from('FLOTILLA_METADATA='), bad]));
    expect(invalidProcessText({ args: 0, envPrefix: 'FLOTILLA_', read: reader(nulJoined('x'), environ) })).toBe(
      'environment variable FLOTILLA_METADATA is not valid UTF-8 (byte 0xff at offset 26): FLOTILLA_METADATA=zone=caf\\xff\\xfe',
    );
  });

  it("names fleetctl's variable too when flotctl reads FLEETCTL_* beside FLOTCTL_*", () => {
    const environ = nulJoined('FLOTCTL_DEBUG=1', Buffer.concat([Buffer.from('FLEETCTL_ENDPOINT='), bad]));
    expect(invalidProcessText({ args: 0, envPrefix: ['FLOTCTL_', 'FLEETCTL_'], read: reader(nulJoined('x'), environ) })).toBe(
      'environment variable FLEETCTL_ENDPOINT is not valid UTF-8 (byte 0xff at offset 26): FLEETCTL_ENDPOINT=zone=caf\\xff\\xfe',
    );
  });

  it('finds nothing where /proc cannot be read', () => {
    const read = (): Uint8Array => {
      throw new Error('ENOENT');
    };
    expect(invalidProcessText({ args: 3, envPrefix: 'FLOTCTL_', read })).toBeUndefined();
  });
});
