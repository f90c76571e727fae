// Help as the build rendered it. flotctl's help is fixed text for a given
// command line once no FLOTCTL_* or FLEETCTL_* variable sets a default it
// shows, so scripts/bundle-flotctl.mjs runs each `help`, `help CMD`,
// `--help`, `-h`, `CMD --help` and `CMD -h` through the runner at build time
// and writes the answers beside the bundle (dist/cli/flotctl-help.json).
// The installed flotctl prints them without loading yargs; any other command
// line, or any such variable, goes through the runner as before.
import { readFileSync } from 'node:fs';

/** dist/cli/flotctl-help.json: each command line (arguments joined by spaces) to the index of its text. */
export interface HelpTable {
  keys: Record<string, number>;
  texts: string[];
}

/** The command lines whose help the build records, for these command names. */
export function helpCommandLines(names: readonly string[]): string[][] {
  return [['help'], ['--help'], ['-h'], ...names.flatMap((n) => [['help', n], [n, '--help'], [n, '-h']])];
}

/** The recorded help for these arguments, or undefined when they or the environment ask for more. */
export function cachedHelp(args: readonly string[], env: Readonly<Record<string, string | undefined>>, file: URL): string | undefined {
  if (args.length === 0 || args.length > 2 || !args.some((a) => a === 'help' || a === '--help' || a === '-h')) return undefined;
  if (Object.keys(env).some((k) => k.startsWith('FLOTCTL_') || k.startsWith('FLEETCTL_'))) return undefined;
  let table: HelpTable;
  try {
    table = JSON.parse(readFileSync(file, 'utf8')) as HelpTable;
  } catch {
    return undefined; // not built (tsx cli/flotctl.ts): the runner answers
  }
  const key = args.join(' ');
  const i = Object.hasOwn(table.keys, key) ? table.keys[key] : undefined;
  return i === undefined ? undefined : table.texts[i];
}
