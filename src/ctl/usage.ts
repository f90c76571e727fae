// Usage errors in flotctl's words rather than yargs': `unknown flag --bogus`
// for yargs' `Unknown argument: bogus`, `--output must be one of: table,
// json (got "yaml")` for `Invalid values: Argument: output, Given: ...`.
// (fleetctl's flags are all known: src/ctl/options.ts.) The runner (cli/flotctl/run.ts)
// sets yargs to English so these patterns hold whatever the locale.

/** The message for a flag flotctl does not know (given without dashes). */
export function unknownFlagMessage(name: string): string {
  return `unknown flag ${name.length === 1 ? '-' : '--'}${name}`;
}

/** Rewrites one of yargs' validation messages; args are the command line, to tell flags from words. */
export function usageMessage(yargsMessage: string, args: readonly string[]): string {
  const msg = yargsMessage.replace(/\s*\n\s*/g, ' ').trim();
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg);
  if (unknown) {
    const names = unknown[1]!.split(', ').map((n) => n.trim());
    const given = (n: string): boolean => args.some((a) => a === `--${n}` || a === `-${n}` || a.startsWith(`--${n}=`) || a.startsWith(`-${n}=`));
    const flags = names.filter(given);
    if (flags.length > 0) return flags.map(unknownFlagMessage).join('; ');
    return `unexpected argument${names.length > 1 ? 's' : ''} ${names.map((n) => JSON.stringify(n)).join(', ')}`;
  }
  const invalid = [...msg.matchAll(/Argument: ([\w-]+), Given: (.+?), Choices: ((?:"[^"]*"(?:, )?)+)/g)];
  if (invalid.length > 0) {
    return invalid
      .map(([, name, got, choices]) => {
        const list = [...choices!.matchAll(/"([^"]*)"/g)].map((c) => c[1]).join(', ');
        return `${name!.length === 1 ? '-' : '--'}${name} must be one of: ${list} (got ${got})`;
      })
      .join('; ');
  }
  const noValue = /^Not enough arguments following: ([\w-]+)$/.exec(msg);
  if (noValue) return `--${noValue[1]} needs a value`;
  return msg;
}
