// Command prefixes, as fleetctl accepted them: `flotctl list-m` runs
// list-machines when no other command starts with `list-m`.
import { UsageError } from './errors.js';
import { unknownFlagMessage } from './usage.js';

export interface CommandIndex {
  /** Every command name users may abbreviate. */
  visible: readonly string[];
  /** Commands matched only exactly (hidden helpers). */
  hidden: readonly string[];
  /** Global flags that take a value in the next argument. */
  valueFlags: ReadonlySet<string>;
  /**
   * Every flag name (without dashes) that may come before the command word;
   * another one there is refused, rather than its value taken for the
   * command (`--tunnel HOST list-units` is not `unknown command "HOST"`).
   */
  knownFlags?: ReadonlySet<string> | undefined;
}

/** Index of the first non-flag argument, skipping global flags and their values. */
export function commandPosition(args: readonly string[], valueFlags: ReadonlySet<string>): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return i + 1 < args.length ? i + 1 : -1;
    if (a.startsWith('-') && a !== '-') {
      const flag = a.replace(/^--?/, '');
      if (!flag.includes('=') && valueFlags.has(flag)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** Resolves a (possibly abbreviated) command name; throws UsageError when unknown or ambiguous. */
export function resolveCommandName(word: string, index: CommandIndex): string {
  if (index.visible.includes(word) || index.hidden.includes(word)) return word;
  const candidates = index.visible.filter((c) => c.startsWith(word));
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1) throw new UsageError(`ambiguous command "${word}": could be ${candidates.join(', ')}`);
  throw new UsageError(`unknown command "${word}"; see flotctl help`);
}

/** The arguments with the command word expanded; unchanged when there is none. */
export function expandCommand(args: readonly string[], index: CommandIndex): { args: string[]; command: string | undefined } {
  const at = commandPosition(args, index.valueFlags);
  if (index.knownFlags) {
    for (const a of at < 0 ? args : args.slice(0, at)) {
      if (a === '--') break;
      if (!a.startsWith('-') || a === '-') continue;
      const name = a.replace(/^--?/, '').replace(/=.*$/, '');
      if (!index.knownFlags.has(name)) throw new UsageError(`${unknownFlagMessage(name)}; see flotctl help`);
    }
  }
  if (at < 0) return { args: [...args], command: undefined };
  const command = resolveCommandName(args[at]!, index);
  const out = [...args];
  out[at] = command;
  return { args: out, command };
}
