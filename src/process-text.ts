// Command-line arguments and environment variables as the kernel passed
// them. Node decodes both as UTF-8 and turns bad bytes into U+FFFD without a
// word, so an argument that was not UTF-8 (`--attr zone=$'\xff'`, a metadata
// flag) would reach etcd changed. This reads the bytes back from /proc/self
// and names the first argument or variable that is not UTF-8. Linux only;
// elsewhere it finds nothing.
import { readFileSync } from 'node:fs';
import { showBytes, utf8FaultOf } from './utf8.js';

export interface ProcessTextOptions {
  /** How many trailing arguments are the program's own (process.argv.length - 2). */
  args: number;
  /** Environment variables read as options, e.g. FLOTCTL_ (flotctl: also fleetctl's FLEETCTL_). */
  envPrefix: string | readonly string[];
  /** For tests: reads /proc/self/cmdline and /proc/self/environ. */
  read?: (file: string) => Uint8Array;
}

/** A one-line message naming the first argument or option variable that is not UTF-8, or undefined. */
export function invalidProcessText(opts: ProcessTextOptions): string | undefined {
  const read = opts.read ?? ((file: string) => readFileSync(file));
  const entries = (file: string): Uint8Array[] | undefined => {
    let bytes: Uint8Array;
    try {
      bytes = read(file);
    } catch {
      return undefined;
    }
    const out: Uint8Array[] = [];
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) {
        out.push(bytes.subarray(start, i));
        start = i + 1;
      }
    }
    if (start < bytes.length) out.push(bytes.subarray(start));
    return out;
  };

  const args = opts.args > 0 ? (entries('/proc/self/cmdline') ?? []).slice(-opts.args) : [];
  for (const [i, arg] of args.entries()) {
    const fault = utf8FaultOf(arg);
    if (fault) return `argument ${i + 1} is ${fault.message}: ${showBytes(arg)}`;
  }
  const prefixes = (typeof opts.envPrefix === 'string' ? [opts.envPrefix] : opts.envPrefix).map((p) => Buffer.from(p));
  for (const entry of entries('/proc/self/environ') ?? []) {
    if (!prefixes.some((prefix) => Buffer.from(entry.subarray(0, prefix.length)).equals(prefix))) continue;
    const eq = entry.indexOf(0x3d);
    const fault = utf8FaultOf(entry);
    if (fault) {
      const name = showBytes(eq < 0 ? entry : entry.subarray(0, eq));
      return `environment variable ${name} is ${fault.message}: ${showBytes(entry)}`;
    }
  }
  return undefined;
}
