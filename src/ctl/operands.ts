// `--` ends the options: `flotctl submit -- -lead.service` names the unit
// -lead.service. yargs fills a command's positionals only from the arguments
// before `--`, so those after it are handed to yargs as plain arguments
// marked with an invisible character (so that none reads as a flag), and
// the command handler (and UsageError, for yargs' messages) takes the mark
// off again.

const MARK = '\u2063';

/** The arguments with the first `--` after the command word (at `command`) removed and everything after it marked. */
export function markOperands(args: readonly string[], command: number): string[] {
  const cut = command < 0 ? -1 : args.indexOf('--', command + 1);
  if (cut < 0) return [...args];
  return [...args.slice(0, cut), ...args.slice(cut + 1).map((a) => MARK + a)];
}

/** A message with the marks taken off. */
export function unmarkText(text: string): string {
  return text.replaceAll(MARK, '');
}

/** Takes the mark off every string (and string in an array) of parsed arguments, in place. */
export function unmarkOperands(argv: Record<string, unknown>): void {
  const unmark = (v: unknown): unknown => (typeof v === 'string' && v.startsWith(MARK) ? v.slice(MARK.length) : v);
  for (const [k, v] of Object.entries(argv)) argv[k] = Array.isArray(v) ? v.map(unmark) : unmark(v);
}
